"""The latency model of a plan, shared by the planners and the cost model.

One record's latency from its source to the sink is the sum along its path of
- transfer on every link it crosses: message size / bandwidth + round trip between the tiers
  (0 inside a tier unless the problem gives a round trip there);
- at every ML operator, on the worker that serves it: the batching wait (the batch's max wait),
  the queueing delay, and the service of its batch.

Arrivals (Problem.arrivals): the runtime's sources are periodic. A trace source sends one frame
per camera together every burst / rate seconds (the cameras are in step), a generator one record
every 1 / rate; the weighted partition deals each burst out in turn, so a worker planned at
utilisation rho gets floor or ceil of a = rho x period / ms records every period, all at once.
Each worker is then a FIFO batch server with batch arrivals (periodic_quantile): exact by
Lindley's recursion over enough periods, with each request taking the profiled ms plus the
runtime's per-record overhead (`latency_model.overhead_ms`), fixed or log-normally spread
(`latency_model.service_cv`, measured: CPU quotas make service times vary). A queue builds only
when a burst's work outlasts the period. Sources declared `"arrivals": "poisson"` keep the M/D/1
queue: Erlang's exact waiting-time distribution,
    P(W <= t) = (1 - rho) sum_{k=0}^{floor(t/D)} (rho (k - t/D))^k / k! exp(-rho (k - t/D)),
evaluated in high precision (mpmath), in units of the service time D; above 97 % load its
exponential tail rho exp(-2 (1 - rho) t / D) (heavy traffic), which the series would take long for.

Composition: an operator's completion time is the latest over the workers serving it of (its
inputs' completion + the slowest link from a tier the input uses into the worker's tier + the
worker's own latency at the percentile). The sink's completion bounds the percentile of the
end-to-end latency when per-hop delays are positively associated (a sum of per-hop quantiles is
then at least the quantile of the sum; with one ML operator, as in the traffic example, it is
exact up to the queue model). Planning charges each worker's queueing at the utilisation level
(from a finite grid) its rate is planned at; the prediction reported uses its actual rate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import mpmath
import numpy as np

from streamflow_planner.bursts import deal, service_draws
from streamflow_planner.problem import Arrivals, BatchSetting, Problem
from streamflow_planner.quota import QuotaCase, quota_quantile, quota_quantiles

TOL = 1e-9
POISSON = Arrivals("poisson")
HEAVY = 0.97   # above this load, P(W > t) = rho exp(-2 (1 - rho) t): within 2 % of Erlang's at 0.95


@lru_cache(maxsize=4096)
def md1_wait_quantile(rho: float, p: float) -> float:
    """The p-quantile of the M/D/1 waiting time (before service), in service times."""
    if rho <= 0 or p <= 1 - rho:
        return 0.0
    if rho >= 1:
        return math.inf
    if rho > HEAVY:   # the series needs ~rho t terms at ~t digits: the exponential tail instead
        return math.log(rho / (1 - p)) / (2 * (1 - rho))

    def cdf(t: float) -> float:
        with mpmath.workdps(int(30 + 1.2 * rho * t)):
            r, tt = mpmath.mpf(rho), mpmath.mpf(t)
            total = mpmath.mpf(0)
            for k in range(int(math.floor(t)) + 1):
                x = r * (k - tt)
                total += x ** k / mpmath.factorial(k) * mpmath.exp(-x)
            return float((1 - r) * total)

    hi = 1.0
    while cdf(hi) < p:
        hi *= 2
    lo = 0.0
    while hi - lo > 1e-4 * max(1.0, hi):
        mid = (lo + hi) / 2
        if cdf(mid) < p:
            lo = mid
        else:
            hi = mid
    return hi


@lru_cache(maxsize=65536)
def periodic_quantile(ms: float, size: int, rho: float, period_ms: float, p: float, cv: float = 0.0,
                      overhead_ms: float = 0.0, cpus: float | None = None, quota_period_ms: float = 100.0) -> float:
    """The p-quantile of a record's time at a worker fed periodic bursts (queueing + its batch's
    service), in ms: a FIFO batch server with batch arrivals, solved by Lindley's recursion.

    The worker gets a = rho x period / ms records per period (rho: its planned utilisation at
    `ms` per request), dealt evenly by the weighted round robin: floor((j+1) a) - floor(j a) in
    period j, all at the period's start. It serves them in batches of up to `size` formed within
    a burst, a batch taking the sum of its records' service times: each ms + overhead_ms (cv = 0)
    or log-normal with that mean and coefficient of variation `cv` (fixed draws). A batch leaves
    at max(previous departure, its arrival) + its service; every record of it then. With a CPU
    quota of `cpus` < 1 core the service runs on the quota's clock instead (quota.py)."""
    if cpus is not None and cpus < 1:
        return quota_quantile(QuotaCase(ms, size, rho, period_ms, p, cv, overhead_ms, cpus, quota_period_ms))
    mean = ms + overhead_ms
    if rho * mean / ms >= 1:
        return math.inf
    a = rho * period_ms / ms
    if a <= 0:
        return float(mean)
    wanted = 256 if cv <= 0 else 20000
    periods = int(min(200000, max(64, math.ceil(wanted / a), math.ceil(8 / (1 - rho * mean / ms)))))
    b = deal(a, periods, size)
    if b.records == 0:
        return float(mean)
    work = np.bincount(b.batch_of, weights=service_draws(mean, cv, b.records))
    arrive = period_ms * b.burst[b.new_batch]
    total = np.cumsum(work)
    leave = total + np.maximum.accumulate(arrive - (total - work))
    return float(np.quantile(leave[b.batch_of] - period_ms * b.burst, p, method="inverted_cdf"))


def _quota_case(problem: Problem, op: str, worker: int, ms_per_request: float, batch: BatchSetting,
                rho: float, percentile: float) -> QuotaCase | None:
    """The quota question op_worker_ms asks for a worker under a CPU quota (None: it asks none)."""
    model, host = problem.latency_model, problem.workers[worker]
    arrivals = problem.arrivals(op)
    if host.cpus is None or host.cpus >= 1 or arrivals.process != "periodic" or not math.isfinite(ms_per_request):
        return None
    return QuotaCase(round(ms_per_request, 6), batch.size, round(rho, 9), round(arrivals.period_ms, 6), percentile,
                     model.cv_of(host.name), model.overhead_ms, host.cpus, model.quota_period_ms)


def prefetch(problem: Problem) -> None:
    """Work out together the latency at every planning level of every worker under a CPU quota,
    which the planners then ask for one at a time (one case alone runs in plain Python)."""
    if problem.slo is None:
        return
    cases = [_quota_case(problem, op, w.index, float(problem.service_ms(op, k, bs)[w.index]), bs, u,
                         problem.slo.percentile)
             for op, spec in problem.operators.items() for k in spec.variants for bs in problem.batch_options(op)
             for w in problem.workers for u in problem.levels()]
    quota_quantiles([c for c in cases if c is not None])


def worker_ms(ms_per_request: float, batch: BatchSetting, rho: float, percentile: float,
              arrivals: Arrivals = POISSON, overhead_ms: float = 0.0, cv: float = 0.0,
              cpus: float | None = None, quota_period_ms: float = 100.0) -> float:
    """A record's latency at one worker: batching wait + queueing + its batch's service, each
    request taking the profiled ms plus the runtime's per-record overhead, under periodic bursts
    (with service spread `cv`, on a CPU quota's clock where the worker has one) or Poisson
    arrivals (M/D/1, deterministic service)."""
    if not math.isfinite(ms_per_request) or rho >= 1:
        return math.inf
    if arrivals.process == "periodic":
        at_worker = periodic_quantile(round(ms_per_request, 6), batch.size, round(rho, 9),
                                      round(arrivals.period_ms, 6), percentile, cv, overhead_ms,
                                      cpus, quota_period_ms)
    else:
        mean = ms_per_request + overhead_ms
        load = rho * mean / ms_per_request
        if load >= 1:
            return math.inf
        at_worker = (md1_wait_quantile(round(load, 9), percentile) + batch.size) * mean
    return batch.max_wait_ms + at_worker


def op_worker_ms(problem: Problem, op: str, worker: int, ms_per_request: float, batch: BatchSetting,
                 rho: float, percentile: float) -> float:
    """worker_ms with `op`'s arrival process and the problem's overhead and service spread, made
    monotone in the load: the most it gives at `rho` or at any planning level below it. The
    periodic quantile need not grow with every step of the load (the deal pattern changes), and
    a planner that charges a worker at a level above its load must never undercharge it."""
    model, host = problem.latency_model, problem.workers[worker]
    arrivals, cv = problem.arrivals(op), model.cv_of(host.name)
    return max(worker_ms(ms_per_request, batch, u, percentile, arrivals, model.overhead_ms, cv,
                         host.cpus, model.quota_period_ms)
               for u in [rho] + [u for u in problem.levels() if u < rho])


def transfer_ms(problem: Problem, tier_from: int, tier_to: int, size_kb: float) -> float:
    """Message size / bandwidth + round trip on the link between two tiers."""
    rtt = 0.0 if problem.rtt_ms is None else float(problem.rtt_ms[tier_from, tier_to])
    bandwidth = problem.link_bandwidth(tier_from, tier_to)
    if problem.bandwidth_kb_s is not None and tier_from == tier_to:
        bandwidth = float(problem.bandwidth_kb_s[tier_from, tier_to])
    return rtt + (size_kb / bandwidth * 1000.0 if math.isfinite(bandwidth) else 0.0)


def level_of(rho: float, levels: tuple[float, ...]) -> float | None:
    """The smallest planning level at or above a utilisation (None: above every level)."""
    for u in levels:
        if rho <= u * (1 + 1e-7) + TOL:
            return u
    return None


@dataclass
class PathLatency:
    """The percentile at the sink, the critical chain, and each worker's latency to its output."""

    ms: float
    path: list[str]
    per_worker: dict[str, dict[str, float]] = field(default_factory=dict)


def edge_size(problem: Problem, e, variants: dict[str, str]) -> float:
    ku = "default" if e.src in problem.sources else variants[e.src]
    return e.size(ku, variants[e.dst])


def path_latency(problem: Problem, variants: dict[str, str], batch: dict[str, BatchSetting],
                 loads: dict[str, dict[int, float]], percentile: float) -> PathLatency:
    """Completion times in topological order; `loads[op][worker index]` = utilisation charged."""
    done: dict[str, float] = {s: 0.0 for s in problem.sources}
    tiers_of: dict[str, set[int]] = {s: {src.tier} for s, src in problem.sources.items()}
    via: dict[str, list[str]] = {s: [s] for s in problem.sources}
    per_worker: dict[str, dict[str, float]] = {}
    for op in problem.operators:
        k, b = variants[op], batch[op]
        ms = problem.service_ms(op, k, b)
        best, best_path = -math.inf, [op]
        per_worker[op] = {}
        for w, rho in loads.get(op, {}).items():
            q = problem.workers[w].tier
            arrive, chain = -math.inf, []
            for e in problem.in_edges(op):
                size = edge_size(problem, e, variants)
                senders = [p for p in tiers_of.get(e.src, set()) if p <= q]
                if not senders:
                    continue
                t = done[e.src] + max(transfer_ms(problem, p, q, size) for p in senders)
                if t > arrive:
                    arrive, chain = t, via[e.src]
            total = max(arrive, 0.0) + op_worker_ms(problem, op, w, float(ms[w]), b, rho, percentile)
            name = problem.workers[w].name
            per_worker[op][name] = total
            if total > best:
                best, best_path = total, chain + [f"{op}@{name}"]
        done[op] = best
        tiers_of[op] = {problem.workers[w].tier for w in loads.get(op, {})}
        via[op] = best_path
    return PathLatency(done[problem.sink], via[problem.sink], per_worker)


def batch_combinations(problem: Problem) -> list[dict[str, BatchSetting]]:
    """Every choice of one batch setting per operator (the planners enumerate these outside)."""
    ops = list(problem.operators)
    out: list[dict[str, BatchSetting]] = [{}]
    for op in ops:
        out = [dict(c, **{op: bs}) for c in out for bs in problem.batch_options(op)]
    return out


def source_transfer_ms(problem: Problem, op: str, variant: str, tier: int) -> float:
    """The slowest transfer from op's sources into a worker on `tier` (0 without sources)."""
    return max([transfer_ms(problem, problem.sources[e.src].tier, tier, e.size("default", variant))
                for e in problem.in_edges(op) if e.src in problem.sources], default=0.0)


def at_setting(problem: Problem, batch: dict[str, BatchSetting], level: float, mask: bool = False) -> Problem:
    """The problem as a latency-blind planner sees it at fixed batch sizes, every worker planned
    to at most `level` of its capacity there, and no SLO (checked afterwards on the original).
    With `mask`, workers that alone (transfer from the sources + own latency at `level`) would
    exceed it are taken out (their latency set to nan)."""
    latency = {op: {k: problem.service_ms(op, k, batch[op]).copy() for k in spec.variants}
               for op, spec in problem.operators.items()}
    if mask and problem.slo is not None:
        for op, per in latency.items():
            for k, ms in per.items():
                for w in problem.workers:
                    alone = source_transfer_ms(problem, op, k, w.tier) + op_worker_ms(
                        problem, op, w.index, float(ms[w.index]), batch[op], level, problem.slo.percentile)
                    if not alone <= problem.slo.ms:
                        ms[w.index] = np.nan
    out = replace(problem, latency_ms=latency, utilization=level, slo=None, by_batch={})
    out.__dict__["_cache"] = problem.__dict__.setdefault("_cache", {})   # accuracy only
    return out
