#!/usr/bin/env bash
# Cairn's main job on its embedded default: install, build, format a file system, mount it, put a
# generated training data set on it, show `cairn status`, tier it to the embedded object store
# (a local directory inside the data directory), read it back from there, snapshot it, push the
# snapshot, restore it as a second file system and compare the two, and run the core benchmark
# side by side with ext4 on the same disk. Run as root. CAIRN_FILES sets the data set size (default 20000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
# The cairn binary in /usr/local/bin and the Python package where /usr/bin/python3 finds it.
cmake --install build >/dev/null
files="${CAIRN_FILES:-20000}"
work="${CAIRN_WORKDIR:-/var/tmp/cairn-quickstart}"
if mountpoint -q "$work/mnt" 2>/dev/null; then build/src/cairn unmount "$work/mnt" || fusermount3 -uz "$work/mnt"; fi
rm -rf "$work"
mkdir -p "$work/mnt"
echo "== cairn format $work/data"
build/src/cairn format "$work/data"
echo "== cairn mount $work/data $work/mnt"
build/src/cairn mount "$work/data" "$work/mnt"
trap 'build/src/cairn unmount "$work/mnt" 2>/dev/null || fusermount3 -uz "$work/mnt" 2>/dev/null || true' EXIT
echo "== generating a sample training set of $files files"
build/bench/cairn_bench generate --root "$work/mnt/train" --files "$files"
echo "== cairn status $work/mnt"
build/src/cairn status "$work/mnt"
echo "== the training set through the native client: cairn.Dataset in a PyTorch DataLoader"
/usr/bin/python3 - "$work/mnt/train" <<'EOF'
import os, sys, time
import torch.utils.data as tud
import cairn
root = sys.argv[1]
ds = cairn.Dataset(root)
sampler = cairn.Sampler(ds, shuffle=True, seed=0)
loader = tud.DataLoader(ds, batch_size=64, sampler=sampler, num_workers=2, collate_fn=list)
sampler.set_epoch(0)
t0, n, nbytes = time.monotonic(), 0, 0
for batch in loader:
    n += len(batch)
    nbytes += sum(len(x) for x in batch)
dt = time.monotonic() - t0
same = all(bytes(ds[i]) == open(os.path.join(root, ds.paths[i]), "rb").read()
           for i in range(0, len(ds), max(1, len(ds) // 100)))
print(f"{n} files, {nbytes / 2**20:.0f} MiB in {dt:.2f} s ({n / dt:.0f} files/s), "
      f"shuffled, 2 workers; bytes equal to the mount's: {same}")
sys.exit(0 if same and n == len(ds) else 1)
EOF
echo "== cairn tier flush / release: everything to the object store, then off NVMe"
build/src/cairn tier flush "$work/mnt"
build/src/cairn tier release "$work/mnt"
build/src/cairn tier location "$work/mnt/train"
echo "== reading the training set back from the object store (cairn_bench run epoch)"
sync && echo 3 >/proc/sys/vm/drop_caches
build/bench/cairn_bench run --root "$work/mnt/train" --files "$files" --workloads epoch
build/src/cairn tier status "$work/mnt"
echo "== cairn snap create / push / restore: the data set as a second file system"
build/src/cairn snap create "$work/mnt" quickstart
build/src/cairn snap push "$work/mnt" quickstart
build/src/cairn snap list "file://$work/data/objects"
build/src/cairn snap restore "file://$work/data/objects" quickstart "$work/copy"
mkdir -p "$work/copy-mnt"
build/src/cairn mount "$work/copy" "$work/copy-mnt"
trap 'for m in "$work/copy-mnt" "$work/mnt"; do build/src/cairn unmount "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true; done' EXIT
diff -r "$work/mnt/.snapshots/quickstart/train" "$work/copy-mnt/train" && echo "restored copy is identical"
build/src/cairn unmount "$work/copy-mnt"
build/src/cairn unmount "$work/mnt"
trap - EXIT
echo "== cairn fsck $work/data"
build/src/cairn fsck "$work/data"
rm -rf "$work"
echo "== core benchmark: ext4 and Cairn side by side"
bash bench/core_bench.sh --files "$files" --checkpoint-size "${CAIRN_CHECKPOINT:-1GiB}" --build build
