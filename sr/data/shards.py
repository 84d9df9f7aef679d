"""WebDataset shards: a byte-deterministic writer and a shuffled, worker- and rank-split streaming reader.

A sample is a group of tar members sharing a key (`<key>.hq.png`, `<key>.lq.png`, `<key>.json`, `<key>.x0.npy`, ...),
the WebDataset convention, so `webdataset.WebDataset` reads these shards too. Our own reader exists because training
needs a stream that is a pure function of (seed, epoch, rank, worker): that is what makes resume-after-kill give the
same weights as an uninterrupted run.
"""

from __future__ import annotations

import io
import json
import os
import random
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from sr.seeds import sample_seed

Sample = dict[str, Any]


# ---------------------------------------------------------------------------------------------------- encoding


def encode_png(image: torch.Tensor | np.ndarray) -> bytes:
    """uint8 HWC array, or a float CHW tensor in [0, 1], to PNG bytes; same pixels give the same bytes."""
    if isinstance(image, torch.Tensor):
        image = (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def encode_npy(array: torch.Tensor | np.ndarray) -> bytes:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def encode_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def decode_member(ext: str, data: bytes) -> Any:
    """PNG -> float tensor (C,H,W) in [-1, 1]; .npy -> tensor; .json -> object; anything else stays bytes."""
    if ext.endswith("png"):
        array = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(127.5).sub(1.0)
    if ext.endswith("npy"):
        return torch.from_numpy(np.load(io.BytesIO(data), allow_pickle=False))
    if ext.endswith("json"):
        return json.loads(data)
    return data


# ---------------------------------------------------------------------------------------------------- writing


def _tar_info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class ShardWriter:
    """Writes `<out_dir>/<prefix>-%06d.tar`, `max_count` samples each. Each shard appears by atomic rename when
    complete, so a killed writer leaves only whole shards (and a reader or a resumed run can trust every .tar)."""

    def __init__(self, out_dir: Path, prefix: str, max_count: int, start_index: int = 0):
        self.out_dir, self.prefix, self.max_count = Path(out_dir), prefix, max_count
        self.index = start_index
        self.count = 0
        self.written: list[Path] = []
        self._tmp: str | None = None
        self._tar: tarfile.TarFile | None = None
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def shard_path(self, index: int) -> Path:
        return self.out_dir / f"{self.prefix}-{index:06d}.tar"

    def write(self, key: str, members: dict[str, bytes]) -> None:
        if "." in key or "/" in key:
            raise ValueError(f"sample key {key!r} must not contain '.' or '/'")
        if self._tar is None:
            fd, self._tmp = tempfile.mkstemp(dir=self.out_dir, prefix=f".{self.prefix}-", suffix=".tar.part")
            os.close(fd)
            # GNU format: no pax headers, so no timestamps or user names leak into the bytes.
            self._tar = tarfile.open(self._tmp, "w", format=tarfile.GNU_FORMAT)  # noqa: SIM115 - open across writes
        for ext in sorted(members):
            data = members[ext]
            self._tar.addfile(_tar_info(f"{key}.{ext}", len(data)), io.BytesIO(data))
        self.count += 1
        if self.count == self.max_count:
            self._finish()

    def _finish(self) -> None:
        if self._tar is None:
            return
        self._tar.close()
        final = self.shard_path(self.index)
        os.chmod(self._tmp, 0o644)  # mkstemp makes 0600; shards are ordinary data files
        os.replace(self._tmp, final)
        self.written.append(final)
        self._tar, self._tmp = None, None
        self.index += 1
        self.count = 0

    def close(self) -> None:
        self._finish()

    def abort(self) -> None:
        if self._tar is not None:
            self._tar.close()
            Path(self._tmp).unlink(missing_ok=True)
            self._tar, self._tmp = None, None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# ---------------------------------------------------------------------------------------------------- reading


def shard_paths(shard_dir: Path, prefix: str) -> list[Path]:
    paths = sorted(Path(shard_dir).glob(f"{prefix}-[0-9][0-9][0-9][0-9][0-9][0-9].tar"))
    if not paths:
        raise FileNotFoundError(f"{shard_dir}: no shards named {prefix}-NNNNNN.tar")
    return paths


def iter_raw(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {ext: bytes}) for each sample of one shard, in file order, without decoding."""
    try:
        with tarfile.open(path, "r|") as tar:
            key, members = None, {}
            for info in tar:
                if not info.isfile():
                    continue
                base = info.name.rsplit("/", 1)[-1]
                member_key, _, ext = base.partition(".")
                if member_key != key and key is not None:
                    yield key, members
                    members = {}
                key = member_key
                members[ext] = tar.extractfile(info).read()
            if key is not None:
                yield key, members
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ValueError(f"{path}: unreadable shard ({exc})") from None


def decode_sample(key: str, members: dict[str, bytes]) -> Sample:
    sample: Sample = {"key": key}
    for ext, data in members.items():
        sample[ext.rsplit(".", 1)[0] if ext.endswith((".png", ".npy")) else ext] = decode_member(ext, data)
    return sample


def iter_samples(paths: Iterable[Path]) -> Iterator[Sample]:
    for path in paths:
        for key, members in iter_raw(path):
            yield decode_sample(key, members)


class ShardStream(IterableDataset):
    """An (optionally endless) shuffled stream of decoded samples.

    Each epoch shuffles the shard order with (seed, epoch); shards are then split across DataLoader workers (or,
    when there are fewer shards than workers, samples are split round-robin), and a shuffle buffer mixes samples
    within each worker. That stream does not depend on the number of processes: it is cut into global batches of
    `batch_size × world_size`, and process `rank` takes (and decodes) the rank-th `batch_size` of each. So N processes
    together see exactly the batches one process sees, each sample goes to exactly one process, and DDP training
    matches single-process training with the same global batch. `skip_batches` resumes a stream mid-way: the
    DataLoader takes whole batches from its workers in turn, so each worker skips exactly the batches it had produced
    before the interruption.
    """

    def __init__(
        self,
        paths: list[Path],
        seed: int,
        shuffle_buffer: int,
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        endless: bool = True,
        skip_batches: int = 0,
        transform: Callable[[Sample], Sample] | None = None,
    ):
        self.paths, self.seed, self.shuffle_buffer, self.batch_size = list(paths), seed, shuffle_buffer, batch_size
        self.rank, self.world_size, self.endless, self.skip_batches = rank, world_size, endless, skip_batches
        self.transform = transform

    def _raw_stream(self, worker: int, workers: int) -> Iterator[tuple[str, dict[str, bytes]]]:
        readers, me = workers, worker
        epoch = 0
        while True:
            order = list(self.paths)
            random.Random(sample_seed(self.seed, "shards", epoch)).shuffle(order)
            rng = random.Random(sample_seed(self.seed, "buffer", epoch, me))
            if len(order) >= readers:
                mine = ((k, m) for p in order[me::readers] for k, m in iter_raw(p))
            else:
                mine = (s for i, s in enumerate(r for p in order for r in iter_raw(p)) if i % readers == me)
            buffer: list[tuple[str, dict[str, bytes]]] = []
            for item in mine:
                buffer.append(item)
                if len(buffer) >= self.shuffle_buffer:
                    yield buffer.pop(rng.randrange(len(buffer)))
            rng.shuffle(buffer)
            yield from buffer
            epoch += 1
            if not self.endless:
                return

    def __iter__(self) -> Iterator[Sample]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        # The DataLoader always asks worker 0 first, so after k skipped batches worker w plays the part that
        # worker (w + k) % workers had in the uninterrupted run, minus the batches that part already produced.
        role = (worker + self.skip_batches) % workers
        global_batch = self.batch_size * self.world_size
        skip = max(0, -(-(self.skip_batches - role) // workers)) * global_batch
        for i, (key, members) in enumerate(self._raw_stream(role, workers)):
            if i < skip or (i % global_batch) // self.batch_size != self.rank:
                continue
            sample = decode_sample(key, members)
            yield self.transform(sample) if self.transform else sample


def collate(samples: list[Sample]) -> Sample:
    """Stack tensors of equal shape; keep everything else (keys, json) as lists."""
    batch: Sample = {}
    for name in samples[0]:
        values = [s[name] for s in samples]
        batch[name] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return batch


def make_loader(
    paths: list[Path],
    batch_size: int,
    seed: int,
    shuffle_buffer: int = 1000,
    num_workers: int = 1,
    rank: int = 0,
    world_size: int = 1,
    endless: bool = True,
    skip_batches: int = 0,
    transform: Callable[[Sample], Sample] | None = None,
) -> DataLoader:
    stream = ShardStream(
        paths, seed, shuffle_buffer, batch_size, rank, world_size, endless, skip_batches, transform
    )
    return DataLoader(
        stream,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate,
        persistent_workers=False,
        prefetch_factor=4 if num_workers else None,
        drop_last=True,
    )
