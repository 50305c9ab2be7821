"""Name what binds when no plan exists: the accuracy floor, one operator's capacity, or the mix."""

from __future__ import annotations

from planner.accuracy import all_combinations
from planner.problem import Problem


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


def latency_infeasibility(problem: Problem) -> str:
    """Like `infeasibility`, for a problem with a latency SLO: the floor or rates if they already
    bind, else the SLO against the fastest possible path or one operator's capacity within it."""
    from planner.latency import transfer_ms, worker_ms
    slo = problem.slo
    assert slo is not None
    plain = infeasibility(problem)
    if not plain.startswith("no assignment"):
        return plain
    ok = [c for c in all_combinations(problem) if c.accuracy >= problem.threshold - 1e-9]
    lowest = problem.levels()[0]
    req = problem.required_rates()

    def options(op: str):
        """(latency alone incl. the cheapest way in, rate at the highest level within `budget`)."""
        for k in {c.variants[op] for c in ok}:
            for bs in problem.batch_options(op):
                ms = problem.service_ms(op, k, bs)
                for w in problem.workers:
                    if not ms[w.index] > 0:
                        continue
                    into = 0.0
                    for e in problem.in_edges(op):
                        src = [problem.sources[e.src].tier] if e.src in problem.sources else range(w.tier + 1)
                        size = e.size("default" if e.src in problem.sources else c_any(e.src), k)
                        into = max(into, min(transfer_ms(problem, p, w.tier, size) for p in src if p <= w.tier)
                                   if any(p <= w.tier for p in src) else float("inf"))
                    yield k, bs, w, into, float(ms[w.index])

    def c_any(op: str) -> str:
        return next(iter(ok)).variants[op]

    fastest: dict[str, tuple[float, str]] = {}
    for op in problem.operators:
        best = (float("inf"), "")
        for k, bs, w, into, ms in options(op):
            lat = into + worker_ms(ms, bs, lowest, slo.percentile)
            if lat < best[0]:
                best = (lat, f"{op}: {k} batch {bs.size} on {w.name}")
        fastest[op] = best
    pre: dict[str, float] = {}
    for op in problem.operators:
        pre[op] = max([pre[e.src] + fastest[e.src][0] for e in problem.in_edges(op) if e.src in problem.operators],
                      default=0.0)
    post: dict[str, float] = {}
    for op in reversed(list(problem.operators)):
        post[op] = max([post[e.dst] + fastest[e.dst][0] for e in problem.out_edges(op)], default=0.0)
    path = max(pre[o] + fastest[o][0] + post[o] for o in problem.operators)
    if path > slo.ms:
        where = "; ".join(f"{fastest[o][1]} {fastest[o][0]:.0f} ms" for o in problem.operators)
        return (f"the {slo.label} latency SLO of {slo.ms:g} ms is below the fastest possible path, "
                f"{path:.0f} ms ({where}, each worker nearly idle)")
    for op in problem.operators:
        budget = slo.ms - pre[op] - post[op]
        per_worker: dict[str, float] = {}
        for k, bs, w, into, ms in options(op):
            for u in problem.levels():
                if into + worker_ms(ms, bs, u, slo.percentile) <= budget:
                    per_worker[w.name] = max(per_worker.get(w.name, 0.0), u * 1000.0 / ms)
        total = sum(per_worker.values())
        if total < req[op] - 1e-9:
            return (f"{op} needs {req[op]:g}/s within the {slo.label} latency SLO of {slo.ms:g} ms; the workers "
                    f"fast enough sustain {total:.1f}/s together at the utilisation that keeps them within it "
                    f"({', '.join(f'{n} {r:.1f}/s' for n, r in sorted(per_worker.items())) or 'none'})")
    return (f"no assignment of disjoint workers meets the {slo.label} latency SLO of {slo.ms:g} ms, the "
            f"accuracy floor and every operator's rate together")
