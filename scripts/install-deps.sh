#!/usr/bin/env bash
# Installs every Debian 12 package Cairn builds, tests and benchmarks with. Run as root.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (apt-get needs it)" >&2
  exit 1
fi
packages=(
  build-essential cmake ninja-build pkg-config git
  libfuse3-dev fuse3 librocksdb-dev liburing-dev libcurl4-openssl-dev libssl-dev libisal-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
  clang-format jq util-linux coreutils procps kmod
  awscli s3fs rclone iproute2 curl
  libpq-dev postgresql-15
  librados-dev ceph-mon ceph-osd ceph-mgr ceph-common
  python3-dev pybind11-dev python3-numpy python3-torch python3-matplotlib
)
# The S3 tests run s3rver on Node.js: Debian's nodejs and npm, unless a node is already installed.
if ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# s3rver, the S3 server of the tests, from tests/s3server/package-lock.json; only when missing or
# the lock file changed since the last install.
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
s3server_dir="$repo_root/tests/s3server"
if [ ! -d "$s3server_dir/node_modules" ] ||
  [ "$s3server_dir/package-lock.json" -nt "$s3server_dir/node_modules/.package-lock.json" ]; then
  echo "installing s3rver (npm ci in tests/s3server)"
  (cd "$s3server_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
# FUSE needs its device; load the module where the kernel has it as one.
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
if [ ! -e /dev/fuse ]; then
  echo "install-deps.sh: /dev/fuse is missing; Cairn needs FUSE" >&2
  exit 1
fi
