"""The paper's baselines: placement-only systems that run the most accurate variants.

- `ff`  first fit: in topological order, each operator takes the cheapest free workers of any tier
        at or above its inputs' tiers until its rate is covered.
- `bf`  best fit: each operator stays on the current tier (its inputs' highest tier), taking the
        cheapest free workers there, and moves one tier up only when that tier runs out.
- `ptc` one cloud GPU worker per operator (more only if one cannot sustain the rate).
- `spc` Spark-style data parallelism on the cloud: every cloud GPU worker is used, each operator
        gets what it needs and the rest are dealt out round-robin, rates split by capacity.
- `pte` one edge GPU worker per operator (more only if one cannot sustain the rate).
Workers fill to capacity in the order taken; the last one takes the remainder. No routes are
written (product-of-rates routing); taking workers only at or above the inputs' tiers keeps every
plan free of backward traffic.
"""

from __future__ import annotations

from streamflow_planner.accuracy import most_accurate
from streamflow_planner.costmodel import Assignment
from streamflow_planner.diagnose import infeasibility
from streamflow_planner.errors import InfeasibleError
from streamflow_planner.problem import Problem


def is_gpu(problem: Problem, w: int) -> bool:
    """A worker is a GPU worker if its device or its name says so."""
    worker = problem.workers[w]
    text = f"{worker.device or ''} {worker.name}".lower()
    return "cuda" in text or "gpu" in text


def _fill(rate: float, workers: list[int], cap) -> list[tuple[int, float]] | None:
    out, got = [], 0.0
    for w in workers:
        if got >= rate - 1e-12:
            break
        take = min(float(cap[w]), rate - got)
        out.append((w, take))
        got += take
    return out if got >= rate - 1e-9 else None


def _input_tier(problem: Problem, op: str, tier_of: dict[str, int]) -> int:
    return max(tier_of.get(e.src, problem.sources[e.src].tier if e.src in problem.sources else 0)
               for e in problem.in_edges(op))


def _place(problem: Problem, name: str, choose) -> Assignment:
    best = most_accurate(problem)
    if best.accuracy < problem.threshold - 1e-9:
        raise InfeasibleError(infeasibility(problem))
    variants = best.variants
    rates = problem.required_rates()
    taken: set[int] = set()
    tier_of: dict[str, int] = {}
    placement: dict[str, dict[str, float]] = {}
    for op in problem.operators:
        cap = problem.capacity(op, variants[op])
        free = [w for w in range(len(problem.workers)) if w not in taken and cap[w] > 0]
        chosen = choose(op, rates[op], cap, free, _input_tier(problem, op, tier_of))
        if chosen is None:
            raise InfeasibleError(f"{name}: {op} needs {rates[op]:g}/s with {variants[op]}, "
                                  f"the workers {name} may use give less")
        taken.update(w for w, _ in chosen)
        tier_of[op] = max(problem.workers[w].tier for w, _ in chosen)
        placement[op] = {problem.workers[w].name: rate for w, rate in chosen}
    return Assignment(dict(variants), placement)


def first_fit(problem: Problem) -> Assignment:
    costs = problem.costs

    def choose(op, rate, cap, free, low):
        cands = sorted((w for w in free if problem.workers[w].tier >= low), key=lambda w: (costs[w], -cap[w], w))
        return _fill(rate, cands, cap)
    return _place(problem, "ff", choose)


def best_fit(problem: Problem) -> Assignment:
    costs = problem.costs

    def choose(op, rate, cap, free, low):
        cands = sorted((w for w in free if problem.workers[w].tier >= low),
                       key=lambda w: (problem.workers[w].tier, costs[w], -cap[w], w))
        return _fill(rate, cands, cap)
    return _place(problem, "bf", choose)


def _gpu_pool(problem: Problem, tier: int) -> list[int]:
    return [w for w in range(len(problem.workers)) if problem.workers[w].tier == tier and is_gpu(problem, w)]


def _fewest(problem: Problem, pool: set[int], name: str) -> Assignment:
    costs = problem.costs

    def choose(op, rate, cap, free, low):
        cands = [w for w in free if w in pool]
        single = sorted((w for w in cands if cap[w] >= rate), key=lambda w: (costs[w], w))
        if single:
            return [(single[0], rate)]
        return _fill(rate, sorted(cands, key=lambda w: (-cap[w], costs[w], w)), cap)
    return _place(problem, name, choose)


def pytorch_cloud(problem: Problem) -> Assignment:
    return _fewest(problem, set(_gpu_pool(problem, problem.num_tiers - 1)), "ptc")


def pytorch_edge(problem: Problem) -> Assignment:
    return _fewest(problem, set(_gpu_pool(problem, 0)), "pte")


def spark_cloud(problem: Problem) -> Assignment:
    pool = _gpu_pool(problem, problem.num_tiers - 1)
    base = _fewest(problem, set(pool), "spc")
    used = {w for pl in base.placement.values() for w in pl}
    idx = {w.name: w.index for w in problem.workers}
    spare = [w for w in pool if problem.workers[w].name not in used]
    ops = list(problem.operators)
    extra: dict[str, list[int]] = {o: [] for o in ops}
    runnable = {o: [w for w in spare if problem.capacity(o, base.variants[o])[w] > 0] for o in ops}
    i = 0
    while spare:
        o = ops[i % len(ops)]
        i += 1
        cands = [w for w in runnable[o] if w in spare]
        if cands:
            extra[o].append(cands[0])
            spare.remove(cands[0])
        elif not any(w in spare for o2 in ops for w in runnable[o2]):
            break
    rates = problem.required_rates()
    placement = {}
    for o in ops:
        members = [idx[n] for n in base.placement[o]] + extra[o]
        cap = problem.capacity(o, base.variants[o])
        total = sum(cap[w] for w in members)
        placement[o] = {problem.workers[w].name: float(rates[o] * cap[w] / total) for w in members}
    return Assignment(base.variants, placement)
