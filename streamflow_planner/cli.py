"""`streamflow plan`: plan a problem with one algorithm, print it, write plan.json; or re-cost a plan.

    streamflow plan PROBLEM.json --algo exact [-o plan.json] [--accuracy A] [--throughput T] [--time-limit S]
                                 [--slo-ms L [--slo-percentile p95|p99]]
    streamflow plan --evaluate plan.json PROBLEM.json

Exit status 0 on success, 2 on bad input, 3 on infeasible constraints (one line each).
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from streamflow_planner.costmodel import Evaluation, evaluate
from streamflow_planner.errors import PlannerError
from streamflow_planner.planfile import read_plan, to_plan, write_plan
from streamflow_planner.planning import ALGORITHMS, PlanResult, plan
from streamflow_planner.problem import Problem, load_problem


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise PlannerError(f"{message} (see streamflow plan --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="streamflow plan", description="Joint model selection and worker assignment.")
    p.add_argument("problem", help="problem JSON (format of shared/data/planner/vqa_medium.json)")
    p.add_argument("--algo", default="exact", choices=ALGORITHMS, help="planning algorithm (default exact)")
    p.add_argument("-o", "--output", default="plan.json",
                   help="write the plan here (runtime format; default plan.json)")
    p.add_argument("--accuracy", type=float, help="override the end-to-end accuracy floor")
    p.add_argument("--throughput", type=float, help="required sink throughput (requests/s); scales sources")
    p.add_argument("--utilization", type=float,
                   help="plan each worker to at most this share of its profiled capacity (default 1: all of it)")
    p.add_argument("--slo-ms", type=float,
                   help="latency SLO in ms from source to sink (replaces the problem's latency_slo_ms)")
    p.add_argument("--slo-percentile", choices=("p95", "p99"),
                   help="the percentile the SLO bounds (default: the problem's, else p99)")
    p.add_argument("--time-limit", type=float, default=60.0, help="MILP time limit in seconds (exact)")
    p.add_argument("--evaluate", metavar="PLAN", help="recompute the cost of PLAN against PROBLEM")
    return p


def main(argv: list[str] | None = None) -> int:
    console = Console()
    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
        if args.time_limit is not None and not args.time_limit > 0:
            raise PlannerError(f"--time-limit must be positive, got {args.time_limit}")
        problem = load_problem(args.problem).with_overrides(args.accuracy, args.throughput, args.utilization,
                                                            args.slo_ms, args.slo_percentile)
        if args.evaluate:
            return _evaluate(console, problem, args.evaluate)
        result = plan(problem, args.algo, args.time_limit)
        _print_result(console, problem, result)
        if args.output:
            write_plan(to_plan(problem, result), args.output)
            console.print(f"plan written to {args.output}")
        return 0
    except PlannerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status if exc.exit_status != 1 else 2


def _evaluate(console: Console, problem: Problem, path: str) -> int:
    assignment = read_plan(path, problem)
    ev = evaluate(problem, assignment, predict_latency=True)
    table = _figures(ev, "recomputed", problem)
    console.print(table)
    if not ev.feasible:
        print(f"error: plan violates the problem: {ev.violations[0]}"
              + (f" (and {len(ev.violations) - 1} more)" if len(ev.violations) > 1 else ""), file=sys.stderr)
        return 3
    return 0


def _figures(ev: Evaluation, title: str, problem: Problem) -> Table:
    t = Table(title=title, show_header=False)
    label = problem.slo.label if problem.slo else "p99"
    slo = problem.slo.ms if problem.slo else 0.0
    t.add_row("compute cost / h", f"{ev.compute_cost:.4f}")
    t.add_row("communication cost / h", f"{ev.communication_cost:.4f}")
    t.add_row("total cost / h", f"{ev.total_cost:.4f}")
    t.add_row("accuracy", f"{ev.accuracy:.4f}")
    t.add_row("throughput / s", f"{ev.throughput:.4f}")
    if ev.latency is not None and ev.latency.ms < float("inf"):
        t.add_row(f"latency {label} predicted", f"{ev.latency.ms:.1f} ms ({' -> '.join(ev.latency.path)})")
    if ev.latency_bound is not None:
        t.add_row(f"latency {label} planned bound", f"{ev.latency_bound.ms:.1f} ms (SLO {slo:g} ms)")
    return t


def _print_result(console: Console, problem: Problem, r: PlanResult) -> None:
    a, ev = r.assignment, r.evaluation
    t = Table(title=f"{problem.name}: {r.algorithm}")
    t.add_column("operator")
    t.add_column("variant")
    t.add_column("batch")
    t.add_column("workers (tier, rate/s)")
    for op in problem.operators:
        ws = ", ".join(f"{w} ({problem.tier_names[problem.worker(w).tier]}, {x:.2f})"
                       for w, x in a.placement[op].items())
        bs = a.batch_of(problem, op)
        t.add_row(op, a.variants[op], f"{bs.size} (wait {bs.max_wait_ms:g} ms)", ws)
    console.print(t)
    f = _figures(ev, "figures", problem)
    f.add_row("plan time", f"{r.plan_time_s:.3f} s")
    if r.algorithm in ("exact", "bruteforce"):
        f.add_row("proven optimal", "yes" if r.optimal else "no")
        f.add_row("gap", f"{(r.gap or 0.0) * 100:.4f} %")
    for note in r.notes:
        f.add_row("note", note)
    console.print(f)


if __name__ == "__main__":
    sys.exit(main())
