#!/usr/bin/env python3
"""index_bench.py: what it costs a training job to learn its dataset's files, side by side in one
run, each from dropped caches: walking the tree and stat'ing every file on ext4 (the same disk)
and through the Cairn mount, and the native client's index (one daemon call, cairn.open_dataset:
every file's path, size and extents with their checksums); then that index serialized, and a
dataset opened from those bytes (what each DataLoader worker does). Files of 6,000 bytes (above the inline size), 1,000 to a directory.

Run as root (FUSE mount, cache drops), with Debian's python3 after building Cairn:
    /usr/bin/python3 bench/index_bench.py --files 200000
"""
import argparse
import os
import subprocess
import sys
import time


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def generate(root, n):
    blob = os.urandom(6000)
    for d in range(0, n, 1000):
        dd = f"{root}/d{d // 1000:04d}"
        os.makedirs(dd, exist_ok=True)
        for i in range(min(1000, n - d)):
            with open(f"{dd}/f{i:04d}", "wb") as f:
                f.write(blob)


def walk(root):
    count = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                else:
                    os.stat(e.path)
                    count += 1
    return count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=200000)
    ap.add_argument("--workdir", default="/var/tmp/cairn-index-bench")
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("index_bench: run as root (FUSE mount, cache drops)")
    if a.files < 1:
        sys.exit("index_bench: --files must be at least 1")
    build = os.path.abspath(a.build)
    cairn_bin = f"{build}/src/cairn"
    sys.path.insert(0, f"{build}/python")
    import cairn
    w = a.workdir
    mnt = f"{w}/mnt"
    subprocess.run(["rm", "-rf", w], check=True)
    os.makedirs(f"{w}/ext4")
    os.makedirs(mnt)
    subprocess.run([cairn_bin, "format", f"{w}/data", "--tiering-delay", "1h"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([cairn_bin, "mount", f"{w}/data", mnt, "--metrics-address", ""], check=True,
                   stdout=subprocess.DEVNULL)
    try:
        print(f"== generating {a.files} files on ext4 and through the mount", file=sys.stderr)
        generate(f"{w}/ext4/set", a.files)
        generate(f"{mnt}/set", a.files)
        rows = {}
        for r in range(a.runs):
            for name, root in (("ext4 walk+stat", f"{w}/ext4/set"), ("Cairn FUSE walk+stat", f"{mnt}/set")):
                drop_caches()
                t = time.time()
                n = walk(root)
                rows.setdefault(name, []).append(time.time() - t)
                assert n == a.files, (name, n)
            drop_caches()
            t = time.time()
            ds = cairn.open_dataset(mnt, "set")
            t1 = time.time()
            blob = ds.serialize()
            t2 = time.time()
            copy = cairn.open_dataset(mnt, "set", blob)
            t3 = time.time()
            assert len(ds) == len(copy) == a.files
            rows.setdefault("Cairn native index", []).append(t1 - t)
            rows.setdefault("  serialize", []).append(t2 - t1)
            rows.setdefault("  open from serialized", []).append(t3 - t2)
            del ds, copy
        base = min(rows["ext4 walk+stat"])
        print(f"\n{a.files} files ({len(blob) / 1e6:.1f} MB serialized index), best of {a.runs}")
        print(f"{'':26} {'seconds':>8} {'files/s':>10} {'vs ext4':>8}")
        for name, ts in rows.items():
            best = min(ts)
            print(f"{name:26} {best:8.2f} {a.files / best:10.0f} {base / best:8.2f}")
    finally:
        subprocess.run([cairn_bin, "unmount", mnt], stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
