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
