"""Cost of the cheapest plan against the latency SLO: plans a problem at a range of SLOs with
`exact` and `jellybean`, prints the table and plots docs/planner/cost_vs_slo.png.

    PYTHONPATH=. python tools/cost_vs_slo.py [PROBLEM.json ...] [--slos 300 500 ...] [--percentile p99]
                                            [-o docs/planner/cost_vs_slo.png]

Without problems: examples/traffic/problem.json and a generated vehicle-tracking problem (9
workers, 3 tiers). Infeasible SLOs are listed with the one line that names what binds.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from streamflow_planner.diagnose import fastest_path
from streamflow_planner.errors import InfeasibleError
from streamflow_planner.planning import plan
from streamflow_planner.problem import Problem, load_problem, parse_problem
from tools.gen_problems import generate_problem

REPO = Path(__file__).resolve().parents[1]
ALGOS = ("exact", "jellybean")


def default_problems() -> list[Problem]:
    traffic = load_problem(REPO / "examples" / "traffic" / "problem.json")
    vehicle = parse_problem(generate_problem("vehicle", 9, 3, seed=0), "vehicle_w9_t3_s0_c2.json")
    return [traffic, vehicle]


def slo_grid(problem: Problem, percentile: str, points: int = 14) -> list[float]:
    """From just under the fastest possible path to 12 times it, geometrically."""
    fastest = fastest_path(problem.with_overrides(slo_ms=1.0, percentile=percentile))[0]
    return [round(fastest * 0.95 * (12 / 0.95) ** (i / (points - 1)), 1) for i in range(points)]


def sweep(problem: Problem, slos: list[float], percentile: str) -> dict[str, list[tuple[float, float | None, str]]]:
    """algorithm -> [(slo, cost or None, note)]; the note names the plan or what binds."""
    out: dict[str, list] = {a: [] for a in ALGOS}
    for slo in tqdm(slos, desc=problem.name, unit="SLO"):
        p = problem.with_overrides(slo_ms=slo, percentile=percentile)
        for algo in ALGOS:
            try:
                r = plan(p, algo, time_limit=60)
                a = r.assignment
                note = "; ".join(f"{op}: {a.variants[op]} b{a.batch_of(p, op).size} on "
                                 + ",".join(a.placement[op]) for op in p.operators)
                out[algo].append((slo, r.evaluation.total_cost, note))
            except InfeasibleError as exc:
                out[algo].append((slo, None, str(exc)))
    return out


def plot(results: dict[str, dict], percentile: str, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(results), figsize=(6.2 * len(results), 4.3), squeeze=False)
    for ax, (name, per_algo) in zip(axes[0], results.items()):
        for algo, marker in zip(ALGOS, "os"):
            pts = [(s, c) for s, c, _ in per_algo[algo] if c is not None]
            if pts:
                ax.step([s for s, _ in pts], [c for _, c in pts], where="post", marker=marker, label=algo)
        lost = [s for s, c, _ in per_algo["exact"] if c is None]
        if lost:
            ax.axvspan(min(lost) * 0.98, max(lost), color="grey", alpha=0.15, label="no plan meets the SLO")
        ax.set_xscale("log")
        ax.set_xlabel(f"latency SLO ({percentile}, ms)")
        ax.set_ylabel("cost per hour")
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("problems", nargs="*")
    ap.add_argument("--slos", type=float, nargs="+", help="SLOs in ms (default: a grid per problem)")
    ap.add_argument("--percentile", default="p99", choices=("p95", "p99"))
    ap.add_argument("-o", "--output", default=str(REPO / "docs" / "planner" / "cost_vs_slo.png"))
    args = ap.parse_args(argv)
    problems = [load_problem(p) for p in args.problems] or default_problems()
    console = Console(width=180)
    results = {}
    for problem in problems:
        slos = args.slos or slo_grid(problem, args.percentile)
        results[problem.name] = per_algo = sweep(problem, slos, args.percentile)
        table = Table(title=f"{problem.name}: cost per hour against the {args.percentile} latency SLO")
        table.add_column("SLO ms", justify="right")
        for algo in ALGOS:
            table.add_column(algo, justify="right")
        table.add_column("exact plan, or what binds")
        for i, slo in enumerate(slos):
            cells = [f"{c:.4f}" if c is not None else "infeasible" for _, c, _ in (per_algo[a][i] for a in ALGOS)]
            table.add_row(f"{slo:g}", *cells, per_algo["exact"][i][2])
        console.print(table)
        costs = [c for _, c, _ in per_algo["exact"] if c is not None]
        if any(b > a + 1e-9 for a, b in zip(costs, costs[1:])):
            console.print("[red]exact's cost rose as the SLO loosened: a bug in the planner[/red]")
    console.print(f"plotted to {plot(results, args.percentile, Path(args.output))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
