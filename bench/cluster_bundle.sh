#!/usr/bin/env bash
# cluster_bundle.sh: packs what a machine without a package registry (the lent 16-core device)
# needs to run bench/cluster_bench.sh: Cairn's binaries (cairn, cairn_bench, meta_bench,
# cairn-cephctl), the Ceph daemons and tools that a test cluster needs (ceph-mon, ceph-osd,
# monmaptool, ceph-authtool, rados, with the rados-classes and ceph plugin folders), PostgreSQL 15
# (postgres, initdb, pg_ctl, psql, createdb, its extension libraries and share folder), and every
# shared library they link but glibc's and the C++ runtime's. The Python `ceph` CLI and ceph-mgr
# stay behind: scripts/ceph-cluster.sh sends its few monitor commands with cairn-cephctl.
#
# Also perf (for instructions per FUSE request, bench/request_count.sh) and, where CAIRN_BEFORE
# names one, an older cairn binary as bin/cairn-before (a before/after comparison on the device).
#
# Out: cluster-bundle.tar.xz in the repository root (git-ignored; carry it). The tar holds
# root/ (files at their Debian paths, unpacked over / on the device: the Debian paths the
# binaries and scripts expect, none of which the device has) and lib/ (the libraries, for
# LD_LIBRARY_PATH). bench/cluster_device.sh unpacks and runs it.
# Usage: bash bench/cluster_bundle.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
b=cluster-bundle
rm -rf "$b" "$b.tar.xz"
mkdir -p "$b/root" "$b/lib" "$b/bin"
for f in src/cairn bench/cairn_bench bench/meta_bench tests/cairn-cephctl; do
  cp "$build/$f" "$b/bin/"
done
if [[ -n ${CAIRN_BEFORE:-} ]]; then cp "$CAIRN_BEFORE" "$b/bin/cairn-before"; fi
[[ -x /usr/bin/perf ]] && cp /usr/bin/perf "$b/bin/"
pg=/usr/lib/postgresql/15
files=(/usr/bin/ceph-mon /usr/bin/ceph-osd /usr/bin/monmaptool /usr/bin/ceph-authtool
  /usr/bin/rados "$pg/bin/postgres" "$pg/bin/initdb" "$pg/bin/pg_ctl" "$pg/bin/psql"
  "$pg/bin/createdb" /usr/bin/jq /usr/bin/fusermount3)
for f in "${files[@]}"; do
  mkdir -p "$b/root$(dirname "$f")"
  cp "$f" "$b/root$f"
done
# Plugins and extension libraries, at their paths.
for d in /usr/lib/x86_64-linux-gnu/ceph /usr/lib/x86_64-linux-gnu/rados-classes \
  /usr/share/postgresql/15; do
  mkdir -p "$b/root$(dirname "$d")"
  cp -a "$d" "$b/root$d"
done
mkdir -p "$b/root$pg/lib"
find "$pg/lib" -maxdepth 1 -name '*.so' ! -name 'llvmjit*' -exec cp {} "$b/root$pg/lib/" \;
strip --strip-unneeded "$b"/bin/* "$b/root/usr/bin/"* "$b/root$pg/bin/"* 2>/dev/null || true
find "$b/root" -name '*.so*' -type f -exec strip --strip-unneeded {} + 2>/dev/null || true
# Every shared library any of them links (the plugins too), but glibc's and the C++ runtime.
{
  find "$b/bin" "$b/root" -type f -perm -u+x
  find "$b/root" -name '*.so*' -type f
} | xargs ldd 2>/dev/null | awk '/=>/ && $3 ~ /^\// {print $3}' | sort -u |
  grep -v -E '/lib(c|m|pthread|dl|rt|gcc_s|stdc\+\+|resolv|util)\.so|ld-linux|/ceph/' |
  while read -r lib; do cp -L "$lib" "$b/lib/"; done
strip --strip-unneeded "$b"/lib/* 2>/dev/null || true
tar cf - -C "$b" . | xz -6 -T2 >"$b.tar.xz"
rm -rf "$b"
ls -la "$b.tar.xz"
