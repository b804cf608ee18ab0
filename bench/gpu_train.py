#!/usr/bin/env python3
"""gpu_train.py: a real PyTorch training loop (ResNet-50, torchvision, bf16, channels_last) fed
by a DataLoader from a directory of samples, reporting samples/s and GPU utilization (nvidia-smi
sampled every 250 ms during the timed steps). Run it once per data source (a local disk
directory, a Cairn mount, ...) with the same settings; --generate writes the samples first.

Each sample is one file of 3x224x224 raw uint8 (150,528 bytes, the decoded-ImageNet size), so the
loop measures the data path, not a JPEG decoder. The page cache is dropped before the timed run
(cold epoch) unless --warm. Prints one JSON line.

    python3 bench/gpu_train.py --root /data/set --generate 20000
    python3 bench/gpu_train.py --root /mnt/cairn/set --steps 60 --label cairn-fuse
"""

import argparse
import json
import os
import subprocess
import threading
import time
from multiprocessing import Pool

import torch
import torch.utils.data as tud

SAMPLE = 3 * 224 * 224


def write_chunk(args):
    root, start, end = args
    pool = os.urandom(SAMPLE * 8)
    for i in range(start, end):
        d = os.path.join(root, f"d{i // 1000:03}")
        os.makedirs(d, exist_ok=True)
        off = (i * 7919) % (len(pool) - SAMPLE)
        with open(os.path.join(d, f"s{i:07}.bin"), "wb") as f:
            f.write(pool[off:off + SAMPLE])


class Files(tud.Dataset):
    def __init__(self, root):
        self.paths = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs)
        self.labels = [hash(p) % 1000 for p in self.paths]

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with open(self.paths[i], "rb", buffering=0) as f:
            data = f.read()
        x = torch.frombuffer(bytearray(data), dtype=torch.uint8).view(3, 224, 224)
        return x, self.labels[i]


def decode(view):
    """A native sample (a read-only memoryview) as the tensor the model takes, label 0."""
    return torch.frombuffer(bytearray(view), dtype=torch.uint8).view(3, 224, 224), 0


def gpu_sampler(stop, out):
    try:
        p = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu",
                              "--format=csv,noheader,nounits", "-lms", "250"],
                             stdout=subprocess.PIPE, text=True)
    except OSError:
        return
    for line in p.stdout:
        if stop.is_set():
            break
        try:
            out.append(float(line.strip()))
        except ValueError:
            pass
    p.terminate()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--generate", type=int, default=0, help="write this many samples first")
    ap.add_argument("--steps", type=int, default=60, help="timed steps (after 10 warm-up)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--label", default="")
    ap.add_argument("--warm", action="store_true")
    ap.add_argument("--native", action="store_true",
                    help="read through Cairn's native client (root must be in a Cairn mount)")
    ap.add_argument("--cairn-python", default="", help="where the cairn package is")
    args = ap.parse_args()
    if args.generate:
        n, k = args.generate, 32
        with Pool(16) as pool:
            pool.map(write_chunk, [(args.root, i * n // k, (i + 1) * n // k) for i in range(k)])
        os.sync()
    if args.steps == 0:
        return
    import torchvision
    dev = torch.device("cuda")
    model = torchvision.models.resnet50().to(dev, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1) * 255
    if args.native:
        if args.cairn_python:
            import sys
            sys.path.insert(0, args.cairn_python)
        import cairn
        ds = cairn.Dataset(args.root, transform=decode)
        sampler_ = cairn.Sampler(ds, num_replicas=1, rank=0, shuffle=True, seed=0)
    else:
        ds = Files(args.root)
        sampler_ = None
    if not args.warm:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3")
    loader = tud.DataLoader(ds, batch_size=args.batch, shuffle=sampler_ is None,
                            sampler=sampler_, num_workers=args.workers,
                            pin_memory=True, drop_last=True, prefetch_factor=4,
                            persistent_workers=True)
    util, stop = [], threading.Event()
    sampler = None
    seen, t0, step = 0, None, 0
    for x, y in loader:
        x = x.to(dev, non_blocking=True).float().sub_(mean).div_(std)
        x = x.contiguous(memory_format=torch.channels_last)
        y = y.to(dev, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step == 10:
            torch.cuda.synchronize()
            t0 = time.monotonic()
            sampler = threading.Thread(target=gpu_sampler, args=(stop, util), daemon=True)
            sampler.start()
        elif step > 10:
            seen += x.shape[0]
        if step == 10 + args.steps:
            break
    torch.cuda.synchronize()
    dt = time.monotonic() - t0
    stop.set()
    print(json.dumps({"label": args.label, "root": args.root, "samples": seen, "seconds": round(dt, 2),
                      "samples_per_s": round(seen / dt, 1),
                      "gpu_util_mean": round(sum(util) / len(util), 1) if util else None,
                      "gpu_util_samples": len(util), "batch": args.batch,
                      "workers": args.workers, "files": len(ds)}), flush=True)


if __name__ == "__main__":
    main()
