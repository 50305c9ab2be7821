"""Periodic burst arrivals at one worker, as the latency model's servers see them: how many records
each burst brings, how they form batches, and what each record's service draws are."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SEED = 20261203      # common random numbers: the same service draws at every load, so levels compare


@dataclass
class Bursts:
    """`periods` bursts dealt evenly (a records per burst on average), batched within a burst."""

    burst: np.ndarray       # the burst of each record
    batch_of: np.ndarray    # the batch of each record
    new_batch: np.ndarray   # whether a record opens a batch

    @property
    def records(self) -> int:
        return len(self.burst)


def deal(a: float, periods: int, size: int) -> Bursts:
    """The weighted round robin's deal: floor((j+1) a) - floor(j a) records in burst j, served in
    batches of up to `size` formed within a burst."""
    count = np.diff(np.floor(np.arange(periods + 1) * a + 1e-9)).astype(np.int64)
    n = int(count.sum())
    burst = np.repeat(np.arange(periods), count)
    pos = np.arange(n) - np.repeat(np.cumsum(count) - count, count)
    new_batch = np.ones(n, dtype=bool)
    new_batch[1:] = (burst[1:] != burst[:-1]) | (pos[1:] % size == 0)
    return Bursts(burst, np.cumsum(new_batch) - 1, new_batch)


def service_draws(mean: float, cv: float, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """n service times of mean `mean`: fixed (cv = 0) or log-normal with coefficient of variation
    `cv`, drawn from `rng` (a generator seeded with SEED when none is given)."""
    if cv <= 0:
        return np.full(n, float(mean))
    sigma2 = math.log1p(cv * cv)
    rng = np.random.default_rng(SEED) if rng is None else rng
    return mean * rng.lognormal(-sigma2 / 2, math.sqrt(sigma2), n)
