#!/usr/bin/env bash
# gpu_run.sh: the GPU run of issue 11, one job on the device machine (run from the repository
# root there, with gpu-bundle.tar.xz from bench/gpu_bundle.sh carried): unpack the bundle, format
# and mount Cairn, write N samples to the local disk and through the mount, then train ResNet-50
# (bench/gpu_train.py) from each, cold, twice, printing one JSON line per run (also appended to
# $OUT/gpu.jsonl when OUT is set). N (default 20000) and STEPS (default 40) from the environment.
set -uo pipefail
W=/tmp/gpu; rm -rf $W; mkdir -p $W/b $W/mnt
tar xJf gpu-bundle.tar.xz -C $W/b
export LD_LIBRARY_PATH=$W/b/lib
C=$W/b/cairn
$C format $W/data --tiering-delay 1h >/dev/null && $C mount $W/data $W/mnt --metrics-address '' || { echo MOUNT-FAILED; cat $W/data/cairn.log | tail -20; }
N=${N:-20000}
python3 bench/gpu_train.py --root $W/local --generate $N --steps 0
python3 bench/gpu_train.py --root $W/mnt/set --generate $N --steps 0
du -sh $W/local; $C status $W/mnt | head -5
for r in 1 2; do
  python3 bench/gpu_train.py --root $W/local --steps ${STEPS:-40} --label local-disk 2>&1 | tail -1 | tee -a ${OUT:-/tmp}/gpu.jsonl
  python3 bench/gpu_train.py --root $W/mnt/set --steps ${STEPS:-40} --label cairn-fuse 2>&1 | tail -1 | tee -a ${OUT:-/tmp}/gpu.jsonl
  if [ -d $W/b/python/cairn ]; then
    python3 bench/gpu_train.py --root $W/mnt/set --steps ${STEPS:-40} --label cairn-native --native \
      --cairn-python $W/b/python 2>&1 | tail -1 | tee -a ${OUT:-/tmp}/gpu.jsonl
  fi
done
nproc; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
$C unmount $W/mnt
