"""The cairn Python package against a real Cairn mount (formatted and mounted by the test with
CAIRN_BIN, as root with /dev/fuse): every sample equals the file read through the mount, with
DataLoader workers too; cairn.Sampler gives DistributedSampler's indices and the prefetch
follows them; IterableDataset yields each file once per epoch per rank."""

import os
import shutil
import subprocess
import tempfile
import unittest

import torch
import torch.utils.data as tud

import cairn

CAIRN = os.environ.get("CAIRN_BIN", "cairn")


def collate(batch):
    return batch  # the raw bytes


@unittest.skipUnless(os.geteuid() == 0 and os.access("/dev/fuse", os.W_OK), "needs root and /dev/fuse")
class CairnPythonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="cairn-py-", dir="/var/tmp")
        cls.data = os.path.join(cls.tmp, "data")
        cls.mnt = os.path.join(cls.tmp, "mnt")
        os.mkdir(cls.mnt)
        subprocess.run([CAIRN, "format", cls.data], check=True, capture_output=True)
        subprocess.run([CAIRN, "mount", cls.data, cls.mnt, "--metrics-address", ""], check=True,
                       capture_output=True)
        cls.root = os.path.join(cls.mnt, "train")
        cls.content = {}
        gen = torch.Generator().manual_seed(1)
        for i in range(40):
            d = os.path.join(cls.root, f"c{i % 3}")
            os.makedirs(d, exist_ok=True)
            size = [0, 100, 4097, 30000, 200000][i % 5] + i
            data = bytes(torch.randint(0, 256, (size,), generator=gen, dtype=torch.uint8).tolist())
            path = os.path.join(d, f"s{i:03}.bin")
            with open(path, "wb") as f:
                f.write(data)
            cls.content[os.path.relpath(path, cls.root)] = data

    @classmethod
    def tearDownClass(cls):
        subprocess.run([CAIRN, "unmount", cls.mnt], check=False, capture_output=True)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def mount_bytes(self, rel):
        with open(os.path.join(self.root, rel), "rb") as f:
            return f.read()

    def test_map_style_reads_what_the_mount_reads(self):
        ds = cairn.Dataset(self.root)
        self.assertEqual(len(ds), len(self.content))
        self.assertEqual(sorted(ds.paths), sorted(self.content))
        for i, rel in enumerate(ds.paths):
            self.assertEqual(ds[i], self.mount_bytes(rel), rel)
            self.assertEqual(ds[i], self.content[rel], rel)
        batch = ds.__getitems__([3, 1, 3])
        self.assertEqual(batch, [self.content[ds.paths[j]] for j in (3, 1, 3)])
        self.assertIn("segment files in", ds.source)
        self.assertEqual(ds.stats()["mount_bytes"], 0)
        with self.assertRaises(OSError):
            cairn.Dataset(os.path.join(self.root, "missing"))
        with self.assertRaises(OSError):
            ds.read(len(ds))

    def test_sampler_matches_distributed_sampler_and_prefetch_follows_it(self):
        ds = cairn.Dataset(self.root, prefetch_bytes=64 << 10, prefetch_threads=3)
        for world in (1, 2):
            for rank in range(world):
                ours = cairn.Sampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=5)
                theirs = tud.DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True,
                                                seed=5)
                for epoch in (0, 1, 2):
                    ours.set_epoch(epoch)
                    theirs.set_epoch(epoch)
                    self.assertEqual(list(ours), list(theirs))
        # In this process (no workers): the batches come from the prefetched epoch, in order.
        sampler = cairn.Sampler(ds, num_replicas=1, rank=0, shuffle=True, seed=9)
        loader = tud.DataLoader(ds, batch_size=4, sampler=sampler, collate_fn=collate)
        for epoch in (0, 1):
            sampler.set_epoch(epoch)
            order = list(sampler)
            got = [b for batch in loader for b in batch]
            self.assertEqual(got, [self.content[ds.paths[i]] for i in order])
            plan, native, mine, pos = ds._epoch
            self.assertEqual(mine, order)
            self.assertEqual(pos, len(order))
            self.assertEqual(native.position, len(order))
            self.assertLessEqual(native.peak_bytes, (64 << 10) + max(map(len, self.content.values())))

    def test_workers_get_the_same_bytes(self):
        ds = cairn.Dataset(self.root)
        # Workers open the dataset from the parent's serialized index, not from the daemon.
        mount, rel = cairn.find_mount(self.root)
        copy = cairn.open_dataset(mount, rel, ds._index)
        self.assertEqual(copy.paths(), ds.paths)
        self.assertEqual(bytes(copy.read(0)), self.content[ds.paths[0]])
        with self.assertRaises(OSError):
            cairn.open_dataset(mount, rel, b"not an index")
        sampler = cairn.Sampler(ds, num_replicas=1, rank=0, shuffle=True, seed=2)
        for persistent in (False, True):
            loader = tud.DataLoader(ds, batch_size=3, sampler=sampler, num_workers=2,
                                    collate_fn=collate, persistent_workers=persistent)
            for epoch in (0, 1):
                sampler.set_epoch(epoch)
                order = list(sampler)
                got = [b for batch in loader for b in batch]
                self.assertEqual(got, [self.content[ds.paths[i]] for i in order])

    def test_a_pinned_run_reads_its_snapshot_and_reproduces(self):
        pinned = os.path.join(self.mnt, "pinned")
        os.mkdir(pinned)
        old = {}
        for i in range(12):
            data = os.urandom(1000 + 7000 * i)
            with open(os.path.join(pinned, f"f{i:02}"), "wb") as f:
                f.write(data)
            old[f"f{i:02}"] = data
        subprocess.run([CAIRN, "snap", "create", self.mnt, "run1"], check=True, capture_output=True)
        # The live tree moves on.
        with open(os.path.join(pinned, "f03"), "wb") as f:
            f.write(b"changed")
        os.unlink(os.path.join(pinned, "f05"))
        with open(os.path.join(pinned, "new"), "wb") as f:
            f.write(b"new")
        live = cairn.Dataset(pinned)
        self.assertIn("new", live.paths)
        ds = cairn.Dataset(pinned + "@run1")
        self.assertEqual(ds.snapshot, "run1")
        self.assertEqual(sorted(ds.paths), sorted(old))
        for i, p in enumerate(ds.paths):
            self.assertEqual(ds[i], old[p], p)
        sampler = cairn.Sampler(ds, num_replicas=1, rank=0, shuffle=True, seed=21)
        sampler.set_epoch(3)
        first = [bytes(ds[i]) for i in sampler]
        record = ds.record(sampler)
        again, again_sampler = cairn.Dataset.reproduce(record)
        again_sampler.set_epoch(3)
        self.assertEqual([bytes(again[i]) for i in again_sampler], first)
        # The live tree changed: a record of it no longer reproduces.
        live_record = live.record()
        with open(os.path.join(pinned, "f00"), "ab") as f:
            f.write(b"more")
        with self.assertRaises(OSError):
            cairn.Dataset.reproduce(live_record)
        with self.assertRaises(OSError):
            cairn.Dataset(pinned + "@nosuchsnapshot")
        subprocess.run([CAIRN, "snap", "delete", self.mnt, "run1"], check=True, capture_output=True)

    def test_iterable_yields_each_file_once_per_epoch(self):
        want = sorted(self.content.values())
        seen_orders = []
        for workers in (0, 2):
            ds = cairn.IterableDataset(self.root, shuffle=True, seed=4)
            loader = tud.DataLoader(ds, batch_size=None, num_workers=workers)
            for epoch in (0, 1):
                ds.set_epoch(epoch)
                got = [bytes(x) for x in loader]
                self.assertEqual(sorted(got), want)
                seen_orders.append(got)
        self.assertNotEqual(seen_orders[0], seen_orders[1])  # another epoch, another order
        # Two ranks split the files.
        parts = []
        for rank in (0, 1):
            ds = cairn.IterableDataset(self.root, shuffle=True, seed=4, rank=rank, world_size=2)
            parts.extend(bytes(x) for x in tud.DataLoader(ds, batch_size=None))
        self.assertEqual(sorted(parts), want)


if __name__ == "__main__":
    unittest.main()
