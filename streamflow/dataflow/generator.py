"""A seeded synthetic source: records with declared random fields at a nominal rate.

Record i carries `seq` and `ts` (= i / rate_per_s seconds) plus the declared fields; replayed at
`speed` times real time (0 = as fast as possible), so examples exercise real pacing and epochs.
"""
from __future__ import annotations

import math
import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from streamflow.errors import PlanError

FIELD_KINDS = ("int", "uniform", "normal", "choice", "const")


def field_sampler(spec: Any, path: str) -> Callable[[np.random.Generator, int], list[Any]]:
    """`{"int": [lo, hi]}`, `{"uniform": [lo, hi]}`, `{"normal": [mean, sd]}`, `{"choice": [...]}`
    or `{"const": v}` -> a function drawing n values."""
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in FIELD_KINDS:
        raise PlanError(f"{path}: expected one of {', '.join(FIELD_KINDS)} as the only key, got {spec!r}")
    kind, arg = next(iter(spec.items()))
    if kind == "const":
        return lambda rng, n: [arg] * n
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            raise PlanError(f"{path}.choice: expected a non-empty list")
        return lambda rng, n: [arg[i] for i in rng.integers(0, len(arg), n)]
    if not (isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, (int, float)) for a in arg)):
        raise PlanError(f"{path}.{kind}: expected [a, b]")
    lo, hi = arg
    if kind == "int":
        return lambda rng, n: rng.integers(int(lo), int(hi), n, endpoint=True).tolist()
    if kind == "uniform":
        return lambda rng, n: np.round(rng.uniform(lo, hi, n), 3).tolist()
    return lambda rng, n: np.round(rng.normal(lo, hi, n), 3).tolist()


class GeneratorSpec:
    """Validated generator parameters."""

    def __init__(self, params: dict[str, Any], path: str) -> None:
        def number(key: str, default: float, minimum: float) -> float:
            v = params.get(key, default)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < minimum:
                raise PlanError(f"{path}.{key}: expected a number >= {minimum}, got {v!r}")
            return v
        self.count = int(number("count", 1000, 0))
        self.rate_per_s = float(number("rate_per_s", 100.0, 1e-9))
        self.speed = float(number("speed", 1.0, 0))
        self.batch_size = int(number("batch_size", 100, 1))
        self.seed = int(number("seed", 0, 0))
        fields = params.get("fields", {})
        if not isinstance(fields, dict):
            raise PlanError(f"{path}.fields: expected an object of field -> distribution")
        self.fields = {name: field_sampler(spec, f"{path}.fields.{name}") for name, spec in fields.items()}


async def generate(spec: GeneratorSpec, epoch_of: Callable[[int, float], int], instance: int = 0,
                   instances: int = 1, origin: float | None = None, first_epoch: int = 0
                   ) -> AsyncIterator[tuple[int, list[dict[str, Any]]]]:
    """(epoch, batch) pairs of this instance's share: blocks b of `batch_size` records with
    b % instances == instance. Each block draws from its own seeded stream, so the records are
    the same however many instances share the work, and a run resuming at `first_epoch` skips
    the blocks before it without drawing them. Record i is due ts / speed after `origin`
    (time.time() when the sources started; now when None)."""
    start = time.time() if origin is None else origin
    for lo in range(instance * spec.batch_size, spec.count, instances * spec.batch_size):
        hi = min(lo + spec.batch_size, spec.count) - 1
        if first_epoch and epoch_of(hi, hi / spec.rate_per_s) < first_epoch:
            continue
        block = lo // spec.batch_size
        rng = np.random.default_rng([spec.seed, block])
        seqs = range(lo, min(lo + spec.batch_size, spec.count))
        columns = {name: draw(rng, len(seqs)) for name, draw in spec.fields.items()}
        records = []
        for j, i in enumerate(seqs):
            record = {"seq": i, "ts": i / spec.rate_per_s}
            for name, values in columns.items():
                record[name] = values[j]
            records.append(record)
        if spec.speed > 0:
            due = start + records[-1]["ts"] / spec.speed
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
        epoch = epoch_of(records[0]["seq"], records[0]["ts"])
        batch: list[dict[str, Any]] = []
        for record in records:
            e = epoch_of(record["seq"], record["ts"])
            if e != epoch and batch:
                yield epoch, batch
                batch = []
            epoch = e
            batch.append(record)
        if batch:
            yield epoch, batch
