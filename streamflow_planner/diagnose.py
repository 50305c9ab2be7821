"""Name what binds when no plan exists: the accuracy floor, one operator's capacity, or the mix."""

from __future__ import annotations

from streamflow_planner.accuracy import all_combinations
from streamflow_planner.problem import Problem


def infeasibility(problem: Problem) -> str:
    """One line saying why the constraints cannot all be met."""
    combos = all_combinations(problem)
    best = max(combos, key=lambda c: c.accuracy)
    ok = [c for c in combos if c.accuracy >= problem.threshold - 1e-9]
    if not ok:
        return (f"no variant combination reaches accuracy {problem.threshold:g}; "
                f"best is {best.accuracy:g}")
    req = problem.required_rates()
    for op, spec in problem.operators.items():
        variants = {c.variants[op] for c in ok}
        cap, variant = max((float(problem.capacity(op, k).sum()), k) for k in variants)
        if cap < req[op] - 1e-9:
            return (f"{op} needs {req[op]:g}/s, all free workers together give {cap:.1f}/s "
                    f"(best variant {variant})")
    return ("no assignment of disjoint workers sustains every operator at its rate with "
            "forward-only traffic between tiers")


def fastest_path(problem: Problem, percentile: float = 0.99) -> tuple[float, dict[str, tuple[float, str]]]:
    """A lower bound on any plan's latency percentile: every operator on its fastest worker,
    variant (among those some accuracy-feasible combination uses), batch and planning level, with
    the cheapest way in; and that per operator (ms, what)."""
    from streamflow_planner.latency import op_worker_ms
    ok = [c for c in all_combinations(problem) if c.accuracy >= problem.threshold - 1e-9] or all_combinations(problem)
    fastest: dict[str, tuple[float, str]] = {}
    for op in problem.operators:
        best = (float("inf"), "")
        for k, bs, w, into, ms in _options(problem, op, ok):
            lat = into + min(op_worker_ms(problem, op, w.index, ms, bs, u, percentile) for u in problem.levels())
            if lat < best[0]:
                best = (lat, f"{op}: {k} batch {bs.size} on {w.name}")
        fastest[op] = best
    done: dict[str, float] = {}
    for op in problem.operators:
        done[op] = fastest[op][0] + max([done[e.src] for e in problem.in_edges(op) if e.src in done], default=0.0)
    return done[problem.sink], fastest


def _options(problem: Problem, op: str, ok: list):
    """(variant, batch, worker, quickest transfer in, ms per request) for every worker that can
    run one of op's accuracy-feasible variants."""
    for k in {c.variants[op] for c in ok}:
        for bs in problem.batch_options(op):
            ms = problem.service_ms(op, k, bs)
            for w in problem.workers:
                if ms[w.index] > 0:
                    into = max([_cheapest_in(problem, e, w.tier, k) for e in problem.in_edges(op)], default=0.0)
                    yield k, bs, w, into, float(ms[w.index])


def _cheapest_in(problem: Problem, e, tier: int, variant: str) -> float:
    """The quickest transfer into a worker on `tier` over edge e (from any tier that may send)."""
    from streamflow_planner.latency import transfer_ms
    if e.src in problem.sources:
        p = problem.sources[e.src].tier
        return transfer_ms(problem, p, tier, e.size("default", variant)) if p <= tier else float("inf")
    size = min(e.size(ku, variant) for ku in problem.operators[e.src].variants)
    return min(transfer_ms(problem, p, tier, size) for p in range(tier + 1))


def latency_infeasibility(problem: Problem) -> str:
    """Like `infeasibility`, for a problem with a latency SLO: the floor or rates if they already
    bind, else the SLO against the fastest possible path or one operator's capacity within it."""
    from streamflow_planner.latency import op_worker_ms
    slo = problem.slo
    assert slo is not None
    plain = infeasibility(problem)
    if not plain.startswith("no assignment"):
        return plain
    path, fastest = fastest_path(problem, slo.percentile)
    if path > slo.ms:
        where = "; ".join(f"{fastest[o][1]} {fastest[o][0]:.0f} ms" for o in problem.operators)
        return (f"the {slo.label} latency SLO of {slo.ms:g} ms is below the fastest possible path, "
                f"{path:.0f} ms ({where}, each worker at its best planning level)")
    ok = [c for c in all_combinations(problem) if c.accuracy >= problem.threshold - 1e-9]
    req = problem.required_rates()
    for op in problem.operators:
        budget = slo.ms - (path - fastest[op][0])    # what the other operators leave at best
        per_worker: dict[str, float] = {}
        for _k, bs, w, into, ms in _options(problem, op, ok):
            for u in problem.levels():
                if into + op_worker_ms(problem, op, w.index, ms, bs, u, slo.percentile) <= budget:
                    per_worker[w.name] = max(per_worker.get(w.name, 0.0), u * 1000.0 / ms)
        total = sum(per_worker.values())
        if total < req[op] - 1e-9:
            return (f"{op} needs {req[op]:g}/s within the {slo.label} latency SLO of {slo.ms:g} ms; the workers "
                    f"fast enough sustain {total:.1f}/s together at the utilisation that keeps them within it "
                    f"({', '.join(f'{n} {r:.1f}/s' for n, r in sorted(per_worker.items())) or 'none'})")
    return (f"no assignment of disjoint workers meets the {slo.label} latency SLO of {slo.ms:g} ms, the "
            f"accuracy floor and every operator's rate together")
