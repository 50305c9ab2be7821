"""A worker under a CPU quota (Linux CFS bandwidth control: a container's CPU limit, a Kubernetes
`limits.cpu`, a testbed host's `cpus`): what a request's service time is when the quota, not
the core, is what makes the worker slow.

The quota gives the worker Q = cpus x P of CPU time in every period of P wall ms (100 ms by
default, `cpu.cfs_period_us`). It runs at the core's full speed while it has budget left in the
period and is throttled to the period's end once the budget is spent; unused budget does not
carry over. A profile timed back to back under the quota measures the sustained rate,
`ms` per request = CPU work / cpus, so a request's CPU work at full speed is ms x cpus. A
worker that is mostly idle finishes a request well inside one period's budget at full speed
(ms x cpus of wall time); a busy one, or a request bigger than the budget, waits out the rest
of a period for every budget it spends. Where the request starts within the period decides
which: the periods are not aligned with the sources' clock, so the model pools `LANES`
independent runs of the server, each with its own offset of the period grid against the
arrivals and its own service draws.

The server is the one of `latency.periodic_quantile` (FIFO batches of periodic bursts, bursts.py)
on this clock, for a worker with a quota below one core: a batch starts at max(its arrival, the
previous batch's departure) and departs when its CPU work is done. That recursion runs batch by
batch, so a planner that needs many cases asks for them together (`quota_quantiles`), which steps
every lane of every case at once with numpy; one case alone runs in plain Python. Both do the
same floating-point operations in the same order, so they give the same numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from streamflow_planner.bursts import SEED, deal, service_draws

LANES = 32            # independent runs pooled per case, each at its own offset of the period grid
EPS = 1e-9
CHUNK = 4096          # lanes stepped together (bounds the memory of the vectorised recursion)
LONG = 1500           # batches beyond which a lane is stepped alone


def quota_records(cv: float) -> int:
    """Records simulated per case: 12000 with a service spread (the tail needs them), 2000
    without one (only the phase varies then)."""
    return 12000 if cv > 0 else 2000


@dataclass(frozen=True)
class QuotaCase:
    """One worker's p-quantile question: profile `ms` per request (sustained under the quota),
    batch `size`, utilisation `rho`, bursts every `period_ms`, service spread and overhead, and
    the quota (`cpus` cores in every `quota_period_ms`)."""

    ms: float
    size: int
    rho: float
    period_ms: float
    p: float
    cv: float
    overhead_ms: float
    cpus: float
    quota_period_ms: float

    @property
    def load(self) -> float:
        return self.rho * (self.ms + self.overhead_ms) / self.ms

    @property
    def budget_ms(self) -> float:
        return self.cpus * self.quota_period_ms


@dataclass
class _Lanes:
    """A case's runs: every lane shares the bursts; work[j] is lane j's CPU ms per batch."""

    arrive: np.ndarray          # batch arrival times (ms), the same in every lane
    work: list[np.ndarray]
    batch_of: np.ndarray        # each record's batch
    arrived: np.ndarray         # each record's arrival time (ms)


def _lanes(case: QuotaCase) -> _Lanes | float:
    """The lanes of a case, or its answer when there is nothing to simulate (an overloaded
    worker: inf; no load: one request's CPU work). Each lane runs at
    least 64 bursts and 8 / (1 - load) of them (to forget its empty start); as many lanes as
    share quota_records() that way, at most LANES and at least one (a worker with that many
    records per burst spends many quota periods on each, and its phase matters little)."""
    if case.load >= 1:
        return math.inf
    mean = case.ms + case.overhead_ms
    a = case.rho * case.period_ms / case.ms
    if a <= 0:
        return mean * case.cpus
    wanted = quota_records(case.cv)
    least = max(64, math.ceil(8 / (1 - case.load)))
    count = max(1, min(LANES, int(wanted // (a * least))))
    periods = int(min(200000, max(least, math.ceil(wanted / count / a))))
    b = deal(a, periods, case.size)
    if b.records == 0:
        return mean * case.cpus
    rng = np.random.default_rng(SEED)
    work = [np.bincount(b.batch_of, weights=service_draws(mean, case.cv, b.records, rng)) * case.cpus
            for _ in range(count)]
    return _Lanes(case.period_ms * b.burst[b.new_batch], work, b.batch_of, case.period_ms * b.burst)


def _offset(case: QuotaCase, lane: int, lanes: int) -> float:
    return case.quota_period_ms * lane / lanes


def _quantile(case: QuotaCase, lanes: _Lanes, leave: list[np.ndarray]) -> float:
    times = np.concatenate([d[lanes.batch_of] - lanes.arrived for d in leave])
    return float(np.quantile(times, case.p, method="inverted_cdf"))


def quota_departures(arrive: list[float], work: list[float], budget_ms: float, period_ms: float,
                     offset_ms: float) -> list[float]:
    """Departure of each batch (arrival times ascending, CPU work in ms at full speed) at a
    single-threaded worker given `budget_ms` of CPU in every period [offset + k P, offset + (k+1) P).

    A batch starting at t in period k with `left` budget runs min(left, period end - t) there;
    what remains, r, takes whole budgets from the next periods' starts: it ends m = ceil(r / Q) - 1
    periods after the next one begins, r - m Q into it."""
    out: list[float] = []
    free = -math.inf          # when the worker finished its previous batch
    period = -math.inf        # index of the period whose budget `left` is
    left = 0.0
    floor, ceil = math.floor, math.ceil
    for a, w in zip(arrive, work):
        t = a if a > free else free
        k = floor((t - offset_ms) / period_ms)
        if k != period:
            period, left = k, budget_ms
        end = offset_ms + (period + 1) * period_ms
        first = max(0.0, min(left, end - t))
        rest = w - first
        if rest <= EPS:
            t += w
            left -= w
        else:
            m = ceil(rest / budget_ms - EPS) - 1
            period += 1 + m
            rest -= m * budget_ms
            t = offset_ms + period * period_ms + rest
            left = budget_ms - rest
        free = t
        out.append(t)
    return out


def _departures_together(arrive: np.ndarray, work: np.ndarray, budget: np.ndarray, period_ms: np.ndarray,
                         offset: np.ndarray) -> np.ndarray:
    """quota_departures for many lanes at once: row i is one lane (arrive -inf and work 0 pad
    a short lane; such steps leave its state as it was)."""
    lanes, steps = arrive.shape
    out = np.empty((lanes, steps))
    free = np.full(lanes, -np.inf)
    period = np.full(lanes, -np.inf)
    left = np.zeros(lanes)
    for j in range(steps):
        w = work[:, j]
        t = np.maximum(arrive[:, j], free)
        k = np.floor((t - offset) / period_ms)
        left = np.where(k != period, budget, left)
        period = k
        end = offset + (period + 1) * period_ms
        first = np.maximum(0.0, np.minimum(left, end - t))
        rest = w - first
        fits = rest <= EPS
        m = np.ceil(rest / budget - EPS) - 1
        later = period + 1 + m
        rest = rest - m * budget
        free = np.where(fits, t + w, offset + later * period_ms + rest)
        left = np.where(fits, left - w, budget - rest)
        period = np.where(fits, period, later)
        out[:, j] = free
    return out


_answers: dict[QuotaCase, float] = {}
MAX_ANSWERS = 200_000   # a long-running controller re-plans with new measured times: forget, do not grow


def _one_lane(case: QuotaCase, lanes: _Lanes, j: int) -> np.ndarray:
    return np.asarray(quota_departures(lanes.arrive.tolist(), lanes.work[j].tolist(), case.budget_ms,
                                       case.quota_period_ms, _offset(case, j, len(lanes.work))))


def quota_quantile(case: QuotaCase) -> float:
    """The p-quantile of a record's time at the worker (queueing + its batch's service), in ms."""
    if len(_answers) > MAX_ANSWERS:
        _answers.clear()
    if case not in _answers:
        lanes = _lanes(case)
        _answers[case] = lanes if isinstance(lanes, float) else _quantile(
            case, lanes, [_one_lane(case, lanes, j) for j in range(len(lanes.work))])
    return _answers[case]


def quota_quantiles(cases: list[QuotaCase]) -> list[float]:
    """quota_quantile of many cases, the recursion stepped for all their lanes together."""
    if len(_answers) > MAX_ANSWERS:
        _answers.clear()
    todo: dict[QuotaCase, _Lanes] = {}
    for case in set(cases) - set(_answers):
        lanes = _lanes(case)
        if isinstance(lanes, _Lanes):
            todo[case] = lanes
        else:
            _answers[case] = lanes
    rows = sorted(((len(lanes.arrive), case, j) for case, lanes in todo.items() for j in range(len(lanes.work))),
                  key=lambda r: r[0])
    leave: dict[QuotaCase, list[np.ndarray]] = {case: [np.empty(0)] * len(lanes.work) for case, lanes in todo.items()}
    short = [r for r in rows if r[0] <= LONG]
    for n, case, j in rows[len(short):]:         # a long lane alone: plain Python steps it faster
        leave[case][j] = _one_lane(case, todo[case], j)
    for first in range(0, len(short), CHUNK):
        chunk = short[first:first + CHUNK]
        steps = chunk[-1][0]
        arrive = np.full((len(chunk), steps), -np.inf)
        work = np.zeros((len(chunk), steps))
        for i, (n, case, j) in enumerate(chunk):
            arrive[i, :n] = todo[case].arrive
            work[i, :n] = todo[case].work[j]
        out = _departures_together(arrive, work, np.array([c.budget_ms for _n, c, _j in chunk]),
                                   np.array([c.quota_period_ms for _n, c, _j in chunk]),
                                   np.array([_offset(c, j, len(todo[c].work)) for _n, c, j in chunk]))
        for i, (n, case, j) in enumerate(chunk):
            leave[case][j] = out[i, :n]
    for case, lanes in todo.items():
        _answers[case] = _quantile(case, lanes, leave[case])
    return [_answers[c] for c in cases]
