"""Edge partitioning: which downstream instance receives each batch (or record) of a stream."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from streamflow.records.keys import check_keys, key_hash

Push = Callable[[int, Any], None]


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


def hashed(targets: Sequence[Push], key: Callable[[Any], Any], where: str = "hash partition",
           check_one: bool = True) -> Push:
    """Records go to target key_hash(key(record)) % n, so equal keys meet on one instance in
    every process. With `check_one`, keys are checked with one instance too, so a key refused
    across processes is refused in one (`where` names the keyed operator in the error)."""
    n = len(targets)
    if n == 1 and not check_one:
        return targets[0]
    if n == 1:
        target = targets[0]

        def push_one(epoch: int, batch: Any) -> None:
            check_keys(list(map(key, batch)), where)
            target(epoch, batch)
        return push_one

    def push(epoch: int, batch: Any) -> None:
        keys = list(map(key, batch))
        check_keys(keys, where)
        buckets: list[list[Any]] = [[] for _ in range(n)]
        for record, k in zip(batch, keys):
            buckets[key_hash(k) % n].append(record)
        for target, bucket in zip(targets, buckets):
            if bucket:
                target(epoch, bucket)
    return push
