"""Plan time per algorithm for 9, 30, 100 and 1000 workers (prints; asserts nothing).

Targets from issue 4: exact < 1 s at 30 workers and < 60 s at 1000 workers with 10 operators
(vehicle tracking with 4 cameras), jellybean < 1 s at 1000 workers. Rates grow with the
infrastructure so large instances use many workers. `--heterogeneous` gives every worker its own
price and speed (no two interchangeable), the hard case for the MILP; HiGHS's proven gap is shown.

    PYTHONPATH=. python tools/bench_planner.py [--sizes 9 30 100 1000] [--time-limit 60] [--slo-factor F]
                                                [--arrivals periodic|poisson]

With `--slo-factor F` every instance also gets a p99 latency SLO of F x its fastest possible
path (streamflow_planner/diagnose.py), planned with batch sizes, utilisation levels and link delays;
`--arrivals poisson` declares the sources Poisson (M/D/1 queues) instead of periodic.
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from streamflow_planner.diagnose import fastest_path
from streamflow_planner.errors import PlannerError
from streamflow_planner.groups import build_groups
from streamflow_planner.planning import plan
from streamflow_planner.problem import parse_problem
from tools.gen_problems import generate_problem

ALGOS = ("exact", "jellybean", "ff", "bf", "ptc", "spc")


def instances(sizes: list[int], heterogeneous: bool):
    for n in sizes:
        yield f"vqa n={n}", generate_problem("vqa", n, 3 if n >= 9 else 2, seed=0, rate=3.0 * n,
                                             heterogeneous=heterogeneous)
        yield f"vehicle(4 cams, 10 ops) n={n}", generate_problem("vehicle", n, 3 if n >= 9 else 2, seed=0,
                                                                  rate=max(2.0, n / 4.0), cameras=4,
                                                                  heterogeneous=heterogeneous)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[9, 30, 100, 1000])
    p.add_argument("--time-limit", type=float, default=60.0)
    p.add_argument("--heterogeneous", action="store_true")
    p.add_argument("--algos", nargs="+", default=list(ALGOS))
    p.add_argument("--slo-factor", type=float, help="also plan under a p99 SLO of this many times the fastest path")
    p.add_argument("--arrivals", choices=("periodic", "poisson"), default="periodic",
                   help="the sources' arrival process under an SLO (default periodic, as the runtime's sources)")
    args = p.parse_args(argv)
    console = Console(width=160)
    table = Table(title="plan time (s) and cost (/h) per algorithm"
                  + (" — heterogeneous workers" if args.heterogeneous else ""))
    table.add_column("instance")
    table.add_column("types")
    for a in args.algos:
        table.add_column(a, justify="right")
    table.add_column("exact gap", justify="right")
    for name, doc in instances(args.sizes, args.heterogeneous):
        for node in doc["dataflow"]["operators"]:
            if node.get("kind") == "source":
                node["arrivals"] = args.arrivals
        problem = parse_problem(doc)
        if args.slo_factor:
            fastest = fastest_path(problem.with_overrides(slo_ms=1.0))[0]
            problem = problem.with_overrides(slo_ms=round(args.slo_factor * fastest, 1))
            name += f", SLO {problem.slo.ms:g} ms, {args.arrivals}"
        types = build_groups(problem).num_types
        row, gap = [name, str(types)], "-"
        for algo in args.algos:
            start = time.perf_counter()
            try:
                r = plan(problem, algo, args.time_limit)
                cell = f"{r.plan_time_s:.3f} s / {r.evaluation.total_cost:.2f}"
                if algo == "exact":
                    gap = f"{(r.gap or 0.0) * 100:.3f} %" + ("" if r.optimal else " (not proven)")
            except PlannerError as exc:
                cell = f"{time.perf_counter() - start:.3f} s / n.a. ({type(exc).__name__})"
            row.append(cell)
        row.append(gap)
        table.add_row(*row)
        console.print(f"done: {name}")
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
