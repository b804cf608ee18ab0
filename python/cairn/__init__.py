"""Cairn's native data path for Python and PyTorch.

    import cairn
    ds = cairn.Dataset("/mnt/train/imagenet")          # map-style: len, [i], batched reads
    loader = torch.utils.data.DataLoader(ds, batch_size=256, num_workers=8,
                                         sampler=cairn.Sampler(ds, shuffle=True, seed=0))
    for epoch in range(10):
        loader.sampler.set_epoch(epoch)                # the next epoch's order goes to Cairn
        for batch in loader: ...

Files are read by libcairn straight from Cairn's segments (every chunk checked), not through the
kernel. A sample is a read-only memoryview of the buffer it was read into (no copy): bytes(x)
copies it; io.BytesIO(x), numpy.frombuffer(x) and torch.frombuffer(x) take it as it is. In a
DataLoader worker, an untransformed sample is bytes (a memoryview does not pickle). With cairn.Sampler, each DataLoader worker knows the order of the batches it will be
asked for and reads them ahead, in that order, within a memory budget (shuffle-aware prefetch).
cairn.IterableDataset does the same without a sampler: it shuffles by seed and epoch and shards
by rank and worker.

Snapshot-pinned runs: cairn.Dataset("/mnt/train/imagenet@before-cleanup") reads the tree as the
snapshot holds it (cairn snap create /mnt/train before-cleanup), whatever the live tree does
since. ds.record(sampler) says what the run read (snapshot, files, seed, ...);
cairn.Dataset.reproduce(record) gives a dataset and sampler that yield the same samples in the
same order.
"""

import hashlib
import multiprocessing
import os

from ._cairn import Dataset as NativeDataset  # noqa: F401
from ._cairn import Epoch, open_dataset  # noqa: F401

try:
    import torch
    import torch.utils.data as _tud

    _MapBase = _tud.Dataset
    _IterBase = _tud.IterableDataset
    _SamplerBase = _tud.DistributedSampler
except ImportError:  # the native path works without torch
    torch = None
    _MapBase = object
    _IterBase = object
    _SamplerBase = object

__all__ = ["Dataset", "IterableDataset", "Sampler", "find_mount", "open_dataset"]


def find_mount(path):
    """The mount point that holds path, and path relative to it."""
    path = os.path.realpath(path)
    mount = path
    while not os.path.ismount(mount):
        mount = os.path.dirname(mount)
    rel = os.path.relpath(path, mount)
    return mount, "" if rel == "." else rel


def _split_snapshot(root):
    """'DIR@SNAPSHOT' -> (DIR, SNAPSHOT); a path that exists as written has no snapshot."""
    if "@" in os.path.basename(root) and not os.path.exists(root):
        path, name = root.rsplit("@", 1)
        return path, name
    return root, None


def _sample(view, transform):
    """What a dataset hands out: transform(view), or the view itself; in a DataLoader worker,
    bytes (a memoryview cannot be pickled back to the main process)."""
    if transform is not None:
        return transform(view)
    if torch is not None and _tud.get_worker_info() is not None:
        return bytes(view)
    return view


def _permutation(n, seed, epoch, shuffle):
    """DistributedSampler's order of range(n) for (seed, epoch)."""
    if not shuffle:
        return list(range(n))
    g = torch.Generator()
    g.manual_seed(seed + epoch)
    return torch.randperm(n, generator=g).tolist()


class Dataset(_MapBase):
    """Map-style dataset over every regular file under root (a directory in a Cairn mount).

    dataset[i] is file i's bytes as a memoryview (or transform(view)); files are in the order of
    paths (directory by directory, names sorted). The native handle is opened lazily in each
    process, so the dataset pickles and survives DataLoader's fork.
    """

    def __init__(self, root, transform=None, prefetch_bytes=256 << 20, prefetch_threads=8):
        self.root = root
        self.transform = transform
        self.prefetch_bytes = prefetch_bytes
        self.prefetch_threads = prefetch_threads
        path, self.snapshot = _split_snapshot(root)
        self._mount, self._dir = find_mount(path)
        if self.snapshot is not None:
            self._dir = "/".join(x for x in (".snapshots", self.snapshot, self._dir) if x)
        self._pid = None
        self._native = None
        self.paths = self._handle().paths()
        # The index once, for every process: DataLoader's workers open the dataset from it
        # instead of each having the daemon walk the tree again.
        self._index = self._native.serialize()
        # The order a cairn.Sampler will ask for (shared with the workers, also persistent ones).
        self._plan = multiprocessing.Array("q", 6, lock=False)  # epoch, seed, shuffle, rank, world, drop_last
        self._plan[0] = -1
        self._epoch = None  # per process: (plan, the Epoch, the positions it covers)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_native"] = None
        state["_pid"] = None
        state["_epoch"] = None
        return state

    def _handle(self):
        if self._pid != os.getpid():
            self._native = open_dataset(self._mount, self._dir, getattr(self, "_index", None))
            self._pid = os.getpid()
            self._epoch = None
        return self._native

    def __len__(self):
        return len(self.paths)

    def _out(self, data):
        return _sample(data, self.transform)

    def __getitem__(self, index):
        return self.__getitems__([index])[0]

    def __getitems__(self, indices):
        """One batch: served from the prefetched epoch when it asks in the planned order, else
        read as one native batch."""
        indices = [int(i) for i in indices]
        got = self._from_epoch(indices)
        if got is None:
            got = self._handle().read_many(indices)
        return [self._out(d) for d in got]

    def read(self, index):
        """The bytes of file index, without the transform."""
        return self._handle().read(int(index))

    @property
    def source(self):
        """Where this process reads file bytes from: segment files, a cluster's RADOS pool, or
        the mount (and why)."""
        return self._handle().source

    def stats(self):
        """This process's read counters (bytes direct, inline, through the mount; hydrations)."""
        return self._handle().stats()

    def record(self, sampler=None):
        """What a run over this dataset reads: enough for reproduce() to read it again."""
        rec = {"root": self.root, "snapshot": self.snapshot, "files": len(self),
               "tree_sha256": self._digest()}
        if sampler is not None:
            rec.update(seed=sampler.seed, shuffle=bool(sampler.shuffle),
                       num_replicas=sampler.num_replicas, rank=sampler.rank,
                       drop_last=bool(sampler.drop_last))
        return rec

    def _digest(self):
        """SHA-256 over every file's path and size, in dataset order."""
        native = self._handle()
        h = hashlib.sha256()
        for i, p in enumerate(self.paths):
            h.update(f"{p}\t{native.size(i)}\n".encode())
        return h.hexdigest()

    @classmethod
    def reproduce(cls, record, **kwargs):
        """(dataset, sampler) that read what the recorded run read, in the same order per epoch.
        OSError when the tree is not the recorded one (a run on the live tree that changed
        since, or a snapshot deleted and taken again under its name)."""
        ds = cls(record["root"], **kwargs)
        if len(ds) != record["files"] or ds._digest() != record["tree_sha256"]:
            raise OSError(f"{record['root']} does not hold the recorded files any more")
        sampler = None
        if "seed" in record:
            sampler = Sampler(ds, num_replicas=record["num_replicas"], rank=record["rank"],
                              shuffle=record["shuffle"], seed=record["seed"],
                              drop_last=record["drop_last"])
        return ds, sampler

    # Shuffle-aware prefetch: the plan (set by cairn.Sampler.set_epoch) gives this rank's order;
    # a DataLoader hands batch k to worker k % num_workers, so each worker reads its own batches
    # ahead in the order it will be asked for them.
    def _from_epoch(self, indices):
        plan = tuple(self._plan)
        if plan[0] < 0 or torch is None:
            return None
        if self._epoch is None or self._epoch[0] != plan:
            self._epoch = None
            order = _rank_order(len(self), *plan)
            info = _tud.get_worker_info()
            worker, workers = (info.id, info.num_workers) if info else (0, 1)
            batch = len(indices)
            mine = []
            for start in range(worker * batch, len(order), batch * workers):
                mine.extend(order[start:start + batch])
            if mine[:batch] != indices:
                return None  # not the batches the plan expects: read directly
            native = self._handle().begin_epoch(mine, self.prefetch_bytes, self.prefetch_threads)
            self._epoch = (plan, native, mine, 0)
        plan_, native, mine, pos = self._epoch
        if mine[pos:pos + len(indices)] != indices:
            native.close()
            self._epoch = (plan_, native, [], 0)  # off the plan for this epoch
            return None
        out = []
        for want in indices:
            index, data = next(native)
            if index != want:  # libcairn hands out the order it was given; never expected
                raise RuntimeError(f"cairn prefetch handed out file {index} where {want} was due")
            out.append(data)
        self._epoch = (plan_, native, mine, pos + len(indices))
        return out


def _rank_order(n, epoch, seed, shuffle, rank, world, drop_last):
    """torch.utils.data.DistributedSampler's indices for one rank."""
    order = _permutation(n, seed, epoch, bool(shuffle))
    if drop_last and n % world != 0:
        total = (n // world) * world
        order = order[:total]
    else:
        total = -(-n // world) * world
        pad = total - len(order)
        if pad > 0:
            order += (order * (pad // len(order) + 1))[:pad]
    return order[rank:total:world]


class Sampler(_SamplerBase):
    """torch.utils.data.DistributedSampler (the same indices, bit for bit) that also tells its
    cairn.Dataset the order of each epoch, so that the workers read it ahead."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None:
            num_replicas = torch.distributed.get_world_size() if _dist_ready() else 1
        if rank is None:
            rank = torch.distributed.get_rank() if _dist_ready() else 0
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle,
                         seed=seed, drop_last=drop_last)
        self.set_epoch(0)

    def set_epoch(self, epoch):
        super().set_epoch(epoch)
        plan = self.dataset._plan
        plan[1], plan[2], plan[3] = self.seed, int(self.shuffle), self.rank
        plan[4], plan[5] = self.num_replicas, int(self.drop_last)
        plan[0] = epoch


def _dist_ready():
    return torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized()


class IterableDataset(_IterBase):
    """Every file under root once per epoch, shuffled by (seed, epoch), split across ranks and
    DataLoader workers, read ahead in exactly the order it is yielded. Yields transform(bytes).
    Call set_epoch(e) before each epoch (the epoch is shared with persistent workers)."""

    def __init__(self, root, transform=None, shuffle=True, seed=0, rank=None, world_size=None,
                 prefetch_bytes=256 << 20, prefetch_threads=8):
        self.root = root
        self.transform = transform
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank if rank is not None else (torch.distributed.get_rank() if _dist_ready() else 0)
        self.world_size = world_size if world_size is not None else (
            torch.distributed.get_world_size() if _dist_ready() else 1)
        self.prefetch_bytes = prefetch_bytes
        self.prefetch_threads = prefetch_threads
        self._mount, self._dir = find_mount(root)
        native = open_dataset(self._mount, self._dir)
        self._count = len(native)
        self._index = native.serialize()  # the workers open it from this, not from the daemon
        self._shared_epoch = multiprocessing.Value("q", 0, lock=False)

    def set_epoch(self, epoch):
        self._shared_epoch.value = epoch

    def __len__(self):
        return len(_rank_order(self._count, 0, self.seed, False, self.rank, self.world_size, False))

    def order(self, epoch=None):
        """The indices this rank and worker yield in epoch (default: the current one)."""
        epoch = self._shared_epoch.value if epoch is None else epoch
        order = _rank_order(self._count, epoch, self.seed, self.shuffle, self.rank,
                            self.world_size, False)
        info = _tud.get_worker_info() if torch is not None else None
        if info:
            order = order[info.id::info.num_workers]
        return order

    def __iter__(self):
        native = open_dataset(self._mount, self._dir, self._index)
        epoch = native.begin_epoch(self.order(), self.prefetch_bytes, self.prefetch_threads)
        try:
            for _, data in epoch:
                yield _sample(data, self.transform)
        finally:
            epoch.close()
