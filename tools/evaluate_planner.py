"""Evaluate every planning algorithm: total cost per infrastructure size and workflow, and cost
versus required throughput; writes a markdown table, JSON results and PNG plots.

    PYTHONPATH=. python tools/evaluate_planner.py [--out docs/planner] [--time-limit 60]

Instances: JellyBean's vqa_medium (when ../shared/data is present) and the generated suite of
tools/gen_problems.py (VQA and vehicle tracking, 5/9/15/30 workers, 2 and 3 tiers). Brute force
(the paper's LB) runs where it is tractable (up to 9 workers). An algorithm that finds no plan
shows "infeasible" (e.g. PTe on infrastructures without edge GPUs strong enough).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from streamflow_planner.errors import PlannerError  # noqa: E402
from streamflow_planner.planning import plan  # noqa: E402
from streamflow_planner.problem import Problem, load_problem, parse_problem  # noqa: E402
from tools.gen_problems import SUITE_SIZES, generate_problem  # noqa: E402

ORDER = ("ff", "bf", "ptc", "spc", "pte", "jellybean", "exact", "bruteforce")
LABEL = {"ff": "FF", "bf": "BF", "ptc": "PTc", "spc": "SPc", "pte": "PTe", "jellybean": "JellyBean",
         "exact": "exact", "bruteforce": "LB (brute force)"}
BASELINES = ("ff", "bf", "ptc", "spc", "pte", "jellybean")
VQA_MEDIUM = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "planner" / "vqa_medium.json"
SWEEP = {"vqa": np.arange(5, 85, 5), "vehicle": np.arange(2, 26, 2)}


def suite() -> list[tuple[str, str, int, int, Problem]]:
    """(workflow, label, workers, tiers, problem) for every evaluated instance."""
    out = []
    if VQA_MEDIUM.exists():
        out.append(("vqa", "vqa_medium (JellyBean)", 9, 2, load_problem(VQA_MEDIUM)))
    for workflow in ("vqa", "vehicle"):
        for n in SUITE_SIZES:
            for tiers in (2, 3):
                if tiers == 3 and n < 9:
                    continue
                doc = generate_problem(workflow, n, tiers, seed=0)
                out.append((workflow, f"{workflow} {n}w/{tiers}t", n, tiers, parse_problem(doc)))
    return out


def run(problem: Problem, n: int, time_limit: float) -> dict[str, dict]:
    res = {}
    for algo in ORDER:
        if algo == "bruteforce" and n > 9:
            continue
        try:
            r = plan(problem, algo, time_limit)
            res[algo] = {"cost": r.evaluation.total_cost, "compute": r.evaluation.compute_cost,
                         "communication": r.evaluation.communication_cost, "accuracy": r.evaluation.accuracy,
                         "time_s": r.plan_time_s, "optimal": r.optimal, "gap": r.gap}
        except PlannerError as exc:
            res[algo] = {"cost": None, "why": str(exc)}
    return res


def cost_table(rows: list[tuple[str, dict]]) -> str:
    head = "| instance | " + " | ".join(LABEL[a] for a in ORDER) + " |"
    lines = [head, "|" + "---|" * (len(ORDER) + 1)]
    for label, res in rows:
        cells = []
        for a in ORDER:
            r = res.get(a)
            cells.append("–" if r is None else ("infeasible" if r["cost"] is None else f"{r['cost']:.4f}"))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def savings_table(rows: list[tuple[str, dict]]) -> str:
    lines = ["| instance | " + " | ".join(f"vs {LABEL[a]}" for a in BASELINES) + " |",
             "|" + "---|" * (len(BASELINES) + 1)]
    for label, res in rows:
        best = res["exact"]["cost"]
        cells = []
        for a in BASELINES:
            c = res[a]["cost"]
            cells.append("n/a" if c is None or best is None else f"{max(0.0, (c - best) / c * 100):.1f} %")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_sizes(rows, workflow: str, path: Path) -> None:
    sel = [(label, res) for (wf, label), res in rows if wf == workflow]
    algos = [a for a in ORDER if any(a in res for _, res in sel)]
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(sel)), 4.5))
    width = 0.8 / len(algos)
    x = np.arange(len(sel))
    for i, a in enumerate(algos):
        vals = [res[a]["cost"] if a in res else -1.0 for _, res in sel]   # -1: not run
        ys = [v if v is not None and v > 0 else 0 for v in vals]
        bars = ax.bar(x + i * width, ys, width, label=LABEL[a])
        for b, v in zip(bars, vals):
            if v is None:
                ax.text(b.get_x() + b.get_width() / 2, 0.11, "×", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x + 0.4 - width / 2)
    ax.set_xticklabels([label for label, _ in sel], rotation=20, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.1)
    ax.set_ylabel("total cost per hour (log scale)")
    ax.set_title(f"{workflow}: total cost per algorithm (× = no feasible plan)")
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sweep(problem: Problem, workflow: str, time_limit: float) -> dict[str, list]:
    out: dict[str, list] = {a: [] for a in ORDER if a != "bruteforce"}
    for t in tqdm(SWEEP[workflow], desc=f"{workflow} throughput sweep", leave=False):
        p = problem.with_overrides(throughput=float(t))
        for a in out:
            try:
                out[a].append(plan(p, a, time_limit).evaluation.total_cost)
            except PlannerError:
                out[a].append(None)
    return out


def plot_sweep(workflow: str, label: str, data: dict[str, list], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = SWEEP[workflow]
    for a, ys in data.items():
        pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", ms=3, label=LABEL[a])
    ax.set_xlabel("required throughput at the sink (requests/s)")
    ax.set_ylabel("total cost per hour")
    ax.set_title(f"{label}: cost vs required throughput")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/planner", help="output folder for evaluation.md, results.json, PNGs")
    p.add_argument("--time-limit", type=float, default=60.0)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    instances = suite()
    rows: list[tuple[tuple[str, str], dict]] = []
    for workflow, label, n, tiers, problem in tqdm(instances, desc="instances"):
        rows.append(((workflow, label), run(problem, n, args.time_limit)))
    flat = [(label, res) for (_, label), res in rows]
    sweeps = {}
    for workflow, n, tiers in (("vqa", 30, 3), ("vehicle", 30, 3)):
        problem = next(pr for wf, _, nn, tt, pr in instances if wf == workflow and nn == n and tt == tiers)
        label = f"{workflow} {n}w/{tiers}t"
        sweeps[label] = sweep(problem, workflow, args.time_limit)
        plot_sweep(workflow, label, sweeps[label], out / f"cost_vs_throughput_{workflow}.png")
    for workflow in ("vqa", "vehicle"):
        plot_sizes(rows, workflow, out / f"cost_by_size_{workflow}.png")
    md = ["# Planner evaluation", "",
          "Total cost per hour (compute + communication) of each algorithm's plan, recomputed by the",
          "independent cost model. `nw/tt` = n workers in t tiers; `–` = not run (brute force above 9",
          "workers); `infeasible` = the algorithm finds no plan meeting rate, accuracy and the",
          "no-backward-traffic rule.", "", cost_table(flat), "",
          "## What exact saves", "", "(baseline − exact) / baseline:", "", savings_table(flat), "",
          "## Cost vs required throughput", ""]
    for label, data in sweeps.items():
        wf = label.split()[0]
        md.append(f"{label}: throughput " + ", ".join(f"{x:g}" for x in SWEEP[wf]) + " requests/s")
        md.append("")
        md.append("| algorithm | " + " | ".join(f"{x:g}" for x in SWEEP[wf]) + " |")
        md.append("|" + "---|" * (len(SWEEP[wf]) + 1))
        for a, ys in data.items():
            md.append(f"| {LABEL[a]} | " + " | ".join("–" if y is None else f"{y:.2f}" for y in ys) + " |")
        md.append("")
    md += ["Plots: `cost_by_size_vqa.png`, `cost_by_size_vehicle.png`, `cost_vs_throughput_vqa.png`,",
           "`cost_vs_throughput_vehicle.png`."]
    (out / "evaluation.md").write_text("\n".join(md) + "\n")
    (out / "results.json").write_text(json.dumps({"instances": {label: res for label, res in flat},
                                                  "sweeps": {k: {a: v for a, v in d.items()} for k, d in sweeps.items()}},
                                                 indent=1) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
