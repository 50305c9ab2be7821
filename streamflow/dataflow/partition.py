"""Edge partitioning: which downstream instance receives each batch (or record) of a stream."""
from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Push = Callable[[int, Any], None]


def stable_hash(key: Any) -> int:
    """A hash that is the same in every process (Python salts str hashes per process)."""
    if isinstance(key, str):
        return zlib.crc32(key.encode())
    if isinstance(key, (bytes, bytearray)):
        return zlib.crc32(key)
    if isinstance(key, tuple):
        h = 0x345678
        for item in key:
            h = (h * 1000003) ^ stable_hash(item)
        return h & 0xFFFFFFFF
    if isinstance(key, (np.integer, np.floating)):
        return hash(key.item())
    return hash(key)


def forward(targets: Sequence[Push]) -> Push:
    """One target: hand the batch over as is."""
    (target,) = targets
    return target


def broadcast(targets: Sequence[Push]) -> Push:
    """Every target receives every batch (batches are shared, treat them as immutable)."""
    if len(targets) == 1:
        return targets[0]

    def push(epoch: int, batch: Any) -> None:
        for target in targets:
            target(epoch, batch)
    return push


def weighted(targets: Sequence[Push], weights: Sequence[float]) -> Push:
    """Whole batches go round-robin in proportion to `weights` (smooth weighted round-robin)."""
    if len(targets) == 1:
        return targets[0]
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("weighted partition needs a positive total weight")
    share = [w / total for w in weights]
    credit = [0.0] * len(targets)

    def push(epoch: int, batch: Any) -> None:
        best = 0
        for i, s in enumerate(share):
            credit[i] += s
            if credit[i] > credit[best]:
                best = i
        credit[best] -= 1.0
        targets[best](epoch, batch)
    return push


def hashed(targets: Sequence[Push], key: Callable[[Any], Any]) -> Push:
    """Records go to target stable_hash(key(record)) % n, so equal keys meet on one instance."""
    n = len(targets)
    if n == 1:
        return targets[0]

    def push(epoch: int, batch: Any) -> None:
        buckets: list[list[Any]] = [[] for _ in range(n)]
        for record in batch:
            buckets[stable_hash(key(record)) % n].append(record)
        for target, bucket in zip(targets, buckets):
            if bucket:
                target(epoch, bucket)
    return push
