"""Run one algorithm by name, time it, and check its plan with the independent cost model."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from streamflow_planner.algorithms import baselines
from streamflow_planner.algorithms.bruteforce import solve_bruteforce
from streamflow_planner.algorithms.exact import solve_exact
from streamflow_planner.algorithms.jellybean import solve_jellybean
from streamflow_planner.costmodel import Assignment, Evaluation, evaluate
from streamflow_planner.errors import InfeasibleError, PlannerError
from streamflow_planner.latency import prefetch
from streamflow_planner.problem import Problem

ALGORITHMS = ("exact", "jellybean", "bruteforce", "ff", "bf", "ptc", "spc", "pte")


@dataclass
class PlanResult:
    """An algorithm's plan with its checked figures; `optimal`/`gap` say what was proven."""

    algorithm: str
    assignment: Assignment
    evaluation: Evaluation
    plan_time_s: float
    optimal: bool = False
    gap: float | None = None
    notes: list[str] = field(default_factory=list)


def plan(problem: Problem, algorithm: str, time_limit: float | None = 60.0) -> PlanResult:
    """Plan with `algorithm`; raises PlannerError subclasses for bad input or infeasibility."""
    if algorithm not in ALGORITHMS:
        raise PlannerError(f"unknown algorithm '{algorithm}' (choose from {', '.join(ALGORITHMS)})")
    start = time.perf_counter()
    optimal, gap, notes = False, None, []
    prefetch(problem)
    if algorithm == "exact":
        assignment, info = solve_exact(problem, time_limit)
    elif algorithm == "jellybean":
        assignment = solve_jellybean(problem)
    elif algorithm == "bruteforce":
        assignment = solve_bruteforce(problem)
        optimal, gap = True, 0.0
    else:
        solver = {"ff": baselines.first_fit, "bf": baselines.best_fit, "ptc": baselines.pytorch_cloud,
                  "spc": baselines.spark_cloud, "pte": baselines.pytorch_edge}[algorithm]
        assignment = solver(problem)
    elapsed = time.perf_counter() - start
    ev = evaluate(problem, assignment, predict_latency=True)
    over = [v for v in ev.violations if v.startswith("link ")]
    if over and algorithm not in ("exact", "bruteforce"):   # a heuristic that ignores bandwidth
        raise InfeasibleError(f"{algorithm}: its plan overloads a link: {over[0]}")
    if not ev.feasible:
        raise PlannerError(f"{algorithm} produced a plan the cost model rejects: {ev.violations[0]}")
    if algorithm == "exact":
        total = ev.total_cost
        bound = min(info.dual_bound, total)
        gap = max(0.0, (total - bound) / total) if total > 0 else 0.0
        optimal = info.status == 0 and info.potential_exact and gap <= 1e-6 and not info.conservative_bandwidth
        if info.conservative_bandwidth:
            notes.append("a join's traffic is bounded conservatively against a link's bandwidth: the plan "
                         "meets every limit, but a cheaper one may exist")
        if not info.potential_exact:
            notes.append("link prices are not per-tier potential differences: the MILP bound is a "
                         "lower bound on join traffic")
        if info.status != 0:
            notes.append("HiGHS stopped at the time limit before proving optimality")
    return PlanResult(algorithm, assignment, ev, elapsed, optimal, gap, notes)
