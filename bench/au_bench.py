#!/usr/bin/env python3
"""au_bench.py: accelerator utilization (AU) as MLPerf Storage measures it, in the DLIO way, for
ext4, Cairn through FUSE and Cairn through its native client, side by side in one run.

Emulated accelerators (threads) each take a batch, "compute" for the workload's published time
per batch (a sleep), and count the time they waited for data. AU = compute time / wall time,
averaged over the accelerators; the first batch of each accelerator is a warm-up step and is not
counted. For each system the count of accelerators grows by one until AU falls below 0.90; the report is the largest count that kept AU >= 0.90, and the
samples/s reached. Every run starts from a dropped page cache and reads files no earlier run of
the same system read in its epoch (each accelerator a disjoint shard of the data set, shuffled).

Readers, as DLIO's: for ext4 and FUSE, each accelerator keeps its next batches in flight on a
pool of --read-threads threads (POSIX open/read/close per sample), up to --prefetch batches
ahead; for the native client, each accelerator hands its whole order to cairn (Dataset.
begin_epoch) with the same number of threads and a budget of --prefetch batches.

Deviations from MLPerf Storage, said plainly: samples are one file each (not TFRecord files of
1,251 samples), the data set is not 5x RAM (the cache is dropped before each run instead), runs
are --steps batches per accelerator (not 500) after one uncounted warm-up batch, and
accelerators are threads of one process.

With --s3, the object store is a real S3 server (s3rver from tests/s3server, started on
127.0.0.1 by this script and stopped at the end): Cairn tiers to s3://au/tier (so the -cold runs
fetch from S3), and three systems read data that lives only in the bucket (s3://au/set, uploaded
with the Debian awscli): s3fs (s3fs-fuse, no local cache), and cairn-import-fuse /
cairn-import-native, a `cairn import` of the same objects whose cached copies are dropped
(`cairn tier release`) before every run.

Run as root (FUSE, cache drops), from the repository after the build:
    /usr/bin/python3 bench/au_bench.py --workload resnet50 --files 20000
Prints a table and writes WORKDIR/au.png (AU against accelerators) and au.json.
"""

import argparse
import concurrent.futures as cf
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time

WORKLOADS = {
    # sample bytes, batch, read threads, compute seconds per batch on an H100 (MLPerf Storage
    # configs/dlio/workload, see ../shared/notes/ai_loading.md)
    "resnet50": dict(sample=114660, batch=400, read_threads=8, compute=0.224),
    "unet3d": dict(sample=146600628, batch=7, read_threads=4, compute=0.323),
}


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")


def write_set(root, files, sample, seed):
    pool = os.urandom(sample * 4)
    rng = random.Random(seed)
    for i in range(files):
        d = os.path.join(root, f"d{i // 1000:03}")
        os.makedirs(d, exist_ok=True)
        start = rng.randrange(0, len(pool) - sample)
        with open(os.path.join(d, f"s{i:07}.bin"), "wb") as f:
            f.write(pool[start:start + sample])


class S3:
    """s3rver on 127.0.0.1 with the bucket 'au', and the environment its clients need."""

    def __init__(self, work, repo):
        script = os.path.join(repo, "tests", "s3server", "node_modules", "s3rver", "bin",
                              "s3rver.js")
        if not os.path.exists(script):
            sys.exit(f"au_bench: no s3rver at {script} (bash scripts/install-deps.sh)")
        for tool in ("/usr/bin/aws", "/usr/bin/s3fs"):
            if not os.access(tool, os.X_OK):
                sys.exit(f"au_bench: {tool} is missing (bash scripts/install-deps.sh)")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.dir = os.path.join(work, "s3rver")
        os.makedirs(self.dir)
        self.log = open(os.path.join(work, "s3rver.log"), "w")
        env = dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider")
        self.proc = subprocess.Popen(
            ["node", script, "-d", self.dir, "-a", "127.0.0.1", "-p", str(self.port),
             "--configure-bucket", "au", "--silent"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                  "ALL_PROXY", "AWS_PROFILE", "AWS_CA_BUNDLE"):
            os.environ.pop(k, None)
        os.environ.update(AWS_ENDPOINT_URL=self.endpoint, AWS_ACCESS_KEY_ID="S3RVER",
                          AWS_SECRET_ACCESS_KEY="S3RVER", AWS_REGION="us-east-1",
                          AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                          AWS_EC2_METADATA_DISABLED="true", AWS_PAGER="",
                          no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
        for _ in range(300):
            if self.proc.poll() is not None:
                sys.exit(f"au_bench: s3rver exited at start (log {self.log.name})")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("au_bench: s3rver did not listen within 30 s")
        self.mounts = []

    def upload(self, src, prefix):
        # --endpoint-url always: Debian's awscli ignores AWS_ENDPOINT_URL.
        subprocess.run(["/usr/bin/aws", "--endpoint-url", self.endpoint, "s3", "cp",
                        "--recursive", "--only-show-errors", src, f"s3://au/{prefix}/"],
                       check=True)

    def mount_s3fs(self, prefix, mnt, work):
        passwd = os.path.join(work, "s3fs-passwd")
        with open(passwd, "w") as f:
            f.write("S3RVER:S3RVER\n")
        os.chmod(passwd, 0o600)
        os.makedirs(mnt, exist_ok=True)
        subprocess.run(["/usr/bin/s3fs", f"au:/{prefix}", mnt, "-o",
                        f"url={self.endpoint},use_path_request_style,passwd_file={passwd}",
                        "-o", "endpoint=us-east-1,dbglevel=warn"], check=True)
        self.mounts.append(mnt)
        for _ in range(300):
            if os.path.ismount(mnt):
                return
            time.sleep(0.1)
        sys.exit(f"au_bench: s3fs did not mount {mnt}")

    def unmount(self):
        for mnt in self.mounts:
            if os.path.ismount(mnt):
                subprocess.run(["fusermount3", "-u", mnt], check=False)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def rel_paths(files):
    return [f"d{i // 1000:03}/s{i:07}.bin" for i in range(files)]


class Accelerator(threading.Thread):
    def __init__(self, batches, compute):
        super().__init__()
        self.batches, self.compute = batches, compute
        self.waited = self.computed = 0.0
        self.samples = 0
        self.error = None

    def run(self):
        try:
            for k, batch in enumerate(self.batches):
                t0 = time.monotonic()
                data = batch()  # blocks until the batch is read
                t1 = time.monotonic()
                time.sleep(self.compute)
                if os.environ.get("AU_DEBUG") and k == 0:
                    print(f"step 0 (warm-up): waited {t1 - t0:.3f} s", file=sys.stderr)
                if k == 0:
                    continue  # the warm-up step: it fills the pipeline and is not counted
                self.samples += len(data)
                if os.environ.get("AU_DEBUG"):
                    print(f"step {k}: waited {t1 - t0:.3f} s", file=sys.stderr)
                self.waited += t1 - t0
                self.computed += time.monotonic() - t1
        except Exception as e:  # reported, never hidden
            self.error = e


def posix_batches(root, order, batch, threads, prefetch, sample):
    pool = cf.ThreadPoolExecutor(threads)

    def read(rel):
        with open(os.path.join(root, rel), "rb", buffering=0) as f:
            data = f.read()
        if len(data) != sample:
            raise IOError(f"{rel}: {len(data)} bytes")
        return data

    groups = [order[i:i + batch] for i in range(0, len(order), batch)]
    pending = []

    def make(k):
        def take():
            while len(pending) < min(len(groups), k + 1 + prefetch):
                pending.append([pool.submit(read, r) for r in groups[len(pending)]])
            return [f.result() for f in pending[k]]
        return take
    return [make(k) for k in range(len(groups))], pool


def native_batches(ds, index, order, batch, threads, prefetch, sample):
    epoch = ds.begin_epoch([index[r] for r in order], prefetch * batch * sample, threads)
    groups = [order[i:i + batch] for i in range(0, len(order), batch)]

    def take():
        out = []
        for _ in range(batch):
            _, data = next(epoch)
            if len(data) != sample:
                raise IOError(f"{len(data)} bytes")
            out.append(data)
        return out
    return [take for _ in groups], epoch


def run(system, root, ds, paths, n_acc, w, steps, prefetch, seed, before=None):
    rng = random.Random(seed)
    shuffled = paths[:]
    rng.shuffle(shuffled)
    per = (steps + 1) * w["batch"]
    accs, closers = [], []
    index = {p: i for i, p in enumerate(ds.paths())} if ds is not None else None
    if before:
        before()
    drop_caches()
    for a in range(n_acc):
        order = shuffled[a * per:(a + 1) * per]
        if ds is None:
            batches, closer = posix_batches(root, order, w["batch"], w["read_threads"], prefetch,
                                            w["sample"])
            closers.append(closer.shutdown)
        else:
            batches, closer = native_batches(ds, index, order, w["batch"], w["read_threads"],
                                             prefetch, w["sample"])
            closers.append(closer.close)
        accs.append(Accelerator(batches, w["compute"]))
    t0 = time.monotonic()
    for a in accs:
        a.start()
    for a in accs:
        a.join()
    wall = time.monotonic() - t0
    for c in closers:
        c()
    errors = [a.error for a in accs if a.error]
    if errors:
        raise RuntimeError(f"{system}: {errors[0]}")
    au = sum(a.computed / (a.computed + a.waited) for a in accs) / n_acc
    samples = sum(a.samples for a in accs)
    counted = max(a.computed + a.waited for a in accs)  # the counted steps, the slowest one
    return dict(system=system, accelerators=n_acc, au=au, samples_per_s=samples / counted,
                wall_s=wall)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", choices=sorted(WORKLOADS), default="resnet50")
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--steps", type=int, default=8, help="counted batches per accelerator")
    ap.add_argument("--prefetch", type=int, default=2, help="batches read ahead")
    ap.add_argument("--max-accelerators", type=int, default=16)
    ap.add_argument("--workdir", default="/var/tmp/cairn-au-bench")
    ap.add_argument("--build", default="build")
    ap.add_argument("--systems", default=None,
                    help="comma-separated (default: ext4,cairn-fuse,cairn-native, and with --s3 "
                         "also s3fs,cairn-import-fuse,cairn-import-native)")
    ap.add_argument("--cold", action="store_true",
                    help="also run Cairn with every segment evicted to its object store before "
                         "each run (cairn-fuse-cold, cairn-native-cold)")
    ap.add_argument("--s3", action="store_true",
                    help="object store = s3rver on 127.0.0.1; adds s3fs, cairn-import-fuse and "
                         "cairn-import-native (data only in the bucket)")
    args = ap.parse_args()
    if args.files < 1 or args.steps < 1 or args.prefetch < 0 or args.max_accelerators < 1:
        ap.error("--files, --steps and --max-accelerators must be positive, --prefetch >= 0")
    s3_systems = ["s3fs", "cairn-import-fuse", "cairn-import-native"]
    known = {"ext4", "cairn-fuse", "cairn-native", *s3_systems}
    if args.systems is None:
        selected = ["ext4", "cairn-fuse", "cairn-native"] + (s3_systems if args.s3 else [])
    else:
        selected = args.systems.split(",")
    for name in selected:
        if name in s3_systems and not args.s3:
            ap.error(f"{name} needs --s3")
        if name not in known:
            ap.error(f"unknown system '{name}' (known: {', '.join(sorted(known))})")
    if os.geteuid() != 0:
        sys.exit("au_bench: run as root (it drops the page cache and mounts FUSE)")
    w = WORKLOADS[args.workload]
    build = os.path.abspath(args.build)
    sys.path.insert(0, os.path.join(build, "python"))
    import cairn  # noqa: E402
    cairn_bin = os.path.join(build, "src", "cairn")
    work = os.path.abspath(args.workdir)
    mnt = os.path.join(work, "mnt")
    if os.path.ismount(mnt):
        subprocess.run([cairn_bin, "unmount", mnt], check=False)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(mnt)
    results = []
    s3 = None
    try:
        store = []
        if args.s3:
            s3 = S3(work, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            store = ["--object-store", "s3://au/tier"]
        # No uploads to the object tier during the runs: they would compete for the disk.
        subprocess.run([cairn_bin, "format", os.path.join(work, "data"), "--tiering-delay", "1h"]
                       + store, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([cairn_bin, "mount", os.path.join(work, "data"), mnt,
                        "--metrics-address", ""], check=True, stdout=subprocess.DEVNULL)
        ext4 = os.path.join(work, "ext4")
        print(f"== writing {args.files} samples of {w['sample']} bytes to ext4 and Cairn",
              file=sys.stderr)
        write_set(ext4, args.files, w["sample"], 1)
        write_set(os.path.join(mnt, "set"), args.files, w["sample"], 1)
        paths = rel_paths(args.files)
        native = cairn.open_dataset(mnt, "set")
        systems = [("ext4", ext4, None), ("cairn-fuse", os.path.join(mnt, "set"), None),
                   ("cairn-native", None, native)]
        if args.cold:
            systems += [("cairn-fuse-cold", os.path.join(mnt, "set"), None),
                        ("cairn-native-cold", None, native)]
        if s3:
            print("== uploading the set to s3://au/set (aws s3 cp) and importing it",
                  file=sys.stderr)
            s3.upload(ext4, "set")
            t0 = time.monotonic()
            subprocess.run([cairn_bin, "import", "s3://au/set", os.path.join(mnt, "imported")],
                           check=True, stdout=subprocess.DEVNULL)
            print(f"cairn import: {time.monotonic() - t0:.1f} s", file=sys.stderr)
            s3.mount_s3fs("set", os.path.join(work, "s3fs"), work)
            imported = cairn.open_dataset(mnt, "imported")
            systems += [("s3fs", os.path.join(work, "s3fs"), None),
                        ("cairn-import-fuse", os.path.join(mnt, "imported"), None),
                        ("cairn-import-native", None, imported)]

        def evict(tree):
            def go():
                subprocess.run([cairn_bin, "tier", "flush", mnt], check=True,
                               stdout=subprocess.DEVNULL)
                subprocess.run([cairn_bin, "tier", "release", os.path.join(mnt, tree)],
                               check=True, stdout=subprocess.DEVNULL)
            return go
        for name, root, ds in systems:
            if name not in selected and not (args.cold and name.endswith("-cold")):
                continue
            before = None
            if name.endswith("-cold"):
                before = evict("set")
            elif name.startswith("cairn-import"):
                before = evict("imported")
            n = 1
            while n <= args.max_accelerators and n * (args.steps + 1) * w["batch"] <= args.files:
                r = run(name, root, ds, paths, n, w, args.steps, args.prefetch, 7 + n, before)
                results.append(r)
                print(f"{name:20} {n:3} accelerators: AU {r['au']:.3f}, "
                      f"{r['samples_per_s']:.0f} samples/s", file=sys.stderr)
                if r["au"] < 0.90:
                    break
                n += 1
    finally:
        if s3:
            s3.unmount()
        subprocess.run([cairn_bin, "unmount", mnt], check=False, stdout=subprocess.DEVNULL)
        if s3:
            s3.stop()  # after the mounts that read from it
    best = {}
    for r in results:
        if r["au"] >= 0.90 and r["accelerators"] >= best.get(r["system"], {}).get("accelerators", 0):
            best[r["system"]] = r
    print(f"\n{args.workload} (batch {w['batch']}, {w['sample']} B samples, "
          f"{w['compute']} s per batch), {args.steps} steps per accelerator")
    print(f"{'system':20} {'max acc (AU>=0.90)':>20} {'samples/s there':>16} {'vs ext4':>8}")
    base = best.get("ext4", {}).get("accelerators", 0)
    names = [n for n in ["ext4", "cairn-fuse", "cairn-native"] if n in selected]
    if args.cold:
        names += ["cairn-fuse-cold", "cairn-native-cold"]
    names += [n for n in s3_systems if n in selected]
    for name in names:
        b = best.get(name)
        acc = b["accelerators"] if b else 0
        print(f"{name:20} {acc:>20} {b['samples_per_s'] if b else 0:>16.0f} "
              f"{(acc / base) if base else float('nan'):>8.2f}")
    with open(os.path.join(work, "au.json"), "w") as f:
        json.dump(results, f, indent=1)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        for name in names:
            pts = [(r["accelerators"], r["au"]) for r in results if r["system"] == name]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
        ax.axhline(0.9, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel("emulated accelerators")
        ax.set_ylabel("AU")
        ax.set_title(f"{args.workload}: accelerator utilization")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(work, "au.png"), dpi=100)
        print(f"plot: {os.path.join(work, 'au.png')}")
    except ImportError:
        print("no matplotlib: no plot", file=sys.stderr)


if __name__ == "__main__":
    main()
