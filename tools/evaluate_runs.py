"""Plans measured, not modelled: plan the traffic example with every algorithm, run each feasible
plan for real on the emulated testbed at the recorded pace, and put the planner's prediction next
to what the run measured (root; brings its own testbed up and always takes it down).

    heavy python tools/evaluate_runs.py [--infra examples/traffic/infra.json]
        [--problem examples/traffic/problem.json] [--accuracy A] [--seconds S] [--out docs/testbed]

Per plan: cost per hour predicted (the planner's cost model) and measured (the hourly price of the
workers used + the bytes the run moved between tiers, priced per GB as infra.json says),
accuracy predicted and measured (AP50 of the detections against ground truth; vehicle-count error
of the tracks), throughput required (the plan's rate: every camera at its recorded rate), offered
(frames / recorded duration: the clips differ in length, so the replay's mean pace is lower) and
achieved (frames / run time), latency camera -> detections p50/p99. A plan meets the floors when
measured AP50 >= the accuracy floor and it kept up with the recording (achieved >= 95 % of
offered). Writes OUT/evaluation.md, OUT/evaluation.png and OUT/results.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tqdm import tqdm  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamflow_planner.errors import PlannerError  # noqa: E402
from streamflow_planner.planfile import to_plan, write_plan  # noqa: E402
from streamflow_planner.planning import plan as make_plan  # noqa: E402
from streamflow_planner.problem import load_problem  # noqa: E402
from streamflow.testbed import Testbed  # noqa: E402
from streamflow.testbed.infra import load_infra  # noqa: E402
from tools.testbed_runs import RunFailed, network_cost_per_hour, run_plan  # noqa: E402

ALGOS = ("exact", "jellybean", "ff", "bf", "ptc", "spc", "pte")
KEEP_UP = 0.95


def absolute_sources(plan: dict[str, Any], base: Path, seconds: float | None) -> dict[str, Any]:
    """Source paths made absolute (the plan is written elsewhere); optionally a prefix of S seconds."""
    for s in plan["sources"]:
        for key in ("path", "paths"):
            if key in s:
                s[key] = ([str((base / p).resolve()) for p in s[key]] if isinstance(s[key], list)
                          else str((base / s[key]).resolve()))
        if seconds is not None:
            s["stop"] = max(1, round(seconds * s["rate_per_s"] / len(s.get("paths", [0]))))
    return plan


def offered_rate(plan: dict[str, Any], seconds: float | None) -> tuple[int, float]:
    """(frames, frames per second) the replay offers: all cameras start together."""
    from streamflow_traces.format import Trace
    frames, duration = 0, 0.0
    for s in plan["sources"]:
        for p in s.get("paths", [s.get("path")]):
            t = Trace.open(p)
            n = t.frame_count if s.get("stop") is None else min(t.frame_count, s["stop"])
            frames += n
            duration = max(duration, float(t.timestamps[n - 1] - t.timestamps[0]) if n else 0.0)
    return frames, frames / duration if duration else 0.0


def measure(algo: str, plan: dict[str, Any], report: dict[str, Any], infra, offered: float) -> dict[str, Any]:
    expected = plan["expected"]
    network, moved = network_cost_per_hour(report, infra)
    detections = report.get("accuracy", {}).get("detections", {})
    tracks = report.get("accuracy", {}).get("tracks", {})
    latency = report["operators"].get("detections", {}).get("record_latency_ms", {})
    achieved = report["totals"]["throughput_per_s"] or 0.0
    return {
        "algorithm": algo, "status": report["status"],
        "variant": {o["name"]: o.get("variant") for o in plan["operators"] if o.get("variant")},
        "placement": {o["name"]: {p["worker"]: round(p["share"], 3) for p in o["placement"]}
                      for o in plan["operators"] if o.get("variant")},
        "others_on": sorted({p["worker"] for o in plan["operators"] if not o.get("variant") for p in o["placement"]}),
        "predicted": {"cost_per_hour": expected["cost_per_hour"], "compute": expected["compute_cost_per_hour"],
                      "network": expected["communication_cost_per_hour"], "accuracy": expected["accuracy"],
                      "throughput_per_s": expected["throughput_per_s"]},
        "measured": {"cost_per_hour": report["cost"]["workers_per_hour"] + network,
                     "compute": report["cost"]["workers_per_hour"], "network": network, "bytes_between_tiers": moved,
                     "ap50": detections.get("ap50"), "count_error_per_frame": tracks.get("count_mae_per_frame"),
                     "throughput_per_s": achieved, "offered_per_s": offered,
                     "latency_p50_ms": latency.get("p50"), "latency_p99_ms": latency.get("p99"),
                     "duration_s": report["duration_s"],
                     "shares_within_10pct": all(s["within"] for s in report.get("shares", {}).values())},
    }


def meets_floors(row: dict[str, Any], floor: float) -> bool:
    m = row.get("measured")
    return bool(m) and m["ap50"] is not None and 100 * m["ap50"] >= floor and \
        m["throughput_per_s"] >= KEEP_UP * m["offered_per_s"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--infra", default=str(REPO / "examples/traffic/infra.json"))
    ap.add_argument("--problem", default=str(REPO / "examples/traffic/problem.json"))
    ap.add_argument("--algos", default=",".join(ALGOS))
    ap.add_argument("--accuracy", type=float, default=None, help="accuracy floor (default: the problem's)")
    ap.add_argument("--utilization", type=float, default=None,
                    help="plan workers to at most this share of their profiled capacity (default 1)")
    ap.add_argument("--seconds", type=float, default=None, help="run only the first S seconds of the traces")
    ap.add_argument("--out", default=str(REPO / "docs/testbed"))
    ap.add_argument("--name", default="evaluation", help="file name stem under --out")
    ap.add_argument("--state", default="/run/streamflow-testbed-evaluate", help="the testbed's state directory")
    ap.add_argument("--render", action="store_true", help="only re-render OUT/NAME.md and .png from OUT/NAME.json")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.render:
        results = json.loads((out / f"{args.name}.json").read_text())
        plot(results["rows"], out / f"{args.name}.png", results["accuracy_floor"])
        (out / f"{args.name}.md").write_text(markdown(results, args.name) + "\n")
        print(markdown(results, args.name))
        return 0
    work = REPO / "runs" / "evaluate" / args.name
    work.mkdir(parents=True, exist_ok=True)
    infra = load_infra(args.infra)
    problem = load_problem(args.problem).with_overrides(accuracy=args.accuracy, utilization=args.utilization)
    base = Path(args.problem).resolve().parent
    rows: list[dict[str, Any]] = []
    plans: dict[str, dict[str, Any]] = {}
    for algo in args.algos.split(","):
        try:
            result = make_plan(problem, algo)
        except PlannerError as exc:
            rows.append({"algorithm": algo, "status": "infeasible", "reason": str(exc)})
            continue
        doc = absolute_sources(to_plan(problem, result), base, args.seconds)
        doc["name"] = f"traffic-{algo}"
        write_plan(doc, work / algo / "plan.json")
        plans[algo] = doc
    started = time.time()
    with Testbed(args.infra, args.state, progress=lambda m: tqdm.write(f"testbed: {m}")) as state:
        bar = tqdm(list(plans), desc="runs on the testbed", unit="run")
        for algo in bar:
            bar.set_postfix_str(algo)
            doc = plans[algo]
            frames, offered = offered_rate(doc, args.seconds)
            try:
                report = run_plan(work / algo / "plan.json", work / algo / "report.json", state=state.dir)
            except RunFailed as exc:
                rows.append({"algorithm": algo, "status": "failed", "reason": str(exc)})
                continue
            rows.append(measure(algo, doc, report, infra, offered))
            tqdm.write(f"{algo}: {summary_line(rows[-1])}")
    rows.sort(key=lambda r: args.algos.split(",").index(r["algorithm"]))
    floor = problem.threshold
    out.mkdir(parents=True, exist_ok=True)
    results = {"infra": str(Path(args.infra).resolve().relative_to(REPO)), "problem": str(Path(args.problem).resolve()
               .relative_to(REPO)), "accuracy_floor": floor, "seconds": args.seconds, "keep_up": KEEP_UP,
               "date": time.strftime("%Y-%m-%d"), "wall_s": round(time.time() - started), "rows": rows}
    (out / f"{args.name}.json").write_text(json.dumps(results, indent=1) + "\n")
    plot(rows, out / f"{args.name}.png", floor)
    (out / f"{args.name}.md").write_text(markdown(results, args.name) + "\n")
    print(markdown(results, args.name))
    return 0


def summary_line(row: dict[str, Any]) -> str:
    m, p = row["measured"], row["predicted"]
    return (f"cost {p['cost_per_hour']:.4f} -> {m['cost_per_hour']:.4f}/h, AP50 {m['ap50']}, "
            f"{m['throughput_per_s']:.2f}/{m['offered_per_s']:.2f} frames/s, p99 {m['latency_p99_ms']} ms")


def _fmt(v: Any, spec: str = ".4f") -> str:
    return "–" if v is None else format(v, spec)


def markdown(results: dict[str, Any], name: str) -> str:
    rows, floor = results["rows"], results["accuracy_floor"]
    prefix = f"the first {results['seconds']:g} s of" if results.get("seconds") else "all of"
    use = results.get("utilization", 1.0)
    headroom = "" if use == 1 else f", each worker planned to at most {use:.0%} of its profiled capacity"
    lines = [
        f"# Plans measured on the testbed ({name})",
        "",
        f"`{results['problem']}` planned by every algorithm at an AP50 floor of {floor:g} %{headroom}; each "
        f"feasible plan "
        f"run for real on the testbed of `{results['infra']}` (one network namespace and CPU quota per host, "
        f"shaped links between tiers), replaying {prefix} the four NGSIM cameras at their recorded pace, one "
        f"run after another on long-lived workers ({results['date']}, {results['wall_s']} s in all; "
        f"`python tools/evaluate_runs.py`, figures in `{name}.json`, plot `{name}.png`).",
        "",
        "- cost/h predicted: the planner's cost model (workers + modelled traffic); measured: the hourly price of "
        "every worker the run used + the bytes it moved between tiers (the run report's `links_bytes`) at "
        "infra.json's price per GB for that direction, per hour of run time;",
        "- AP50 of the detections sink against the ground truth of every replayed frame; count error: mean absolute "
        "error of the tracked vehicle count per frame;",
        "- frames/s: required by the plan (every camera at its recorded rate), offered by the replay (frames / "
        "recorded duration; the clips differ in length, so it is lower), achieved (frames / run time);",
        "- latency from the camera to the detections sink per frame; `others on`: where the tracker, counts, "
        "cross-camera join and sinks ran (beside the largest share of detect, as the plan writer places them);",
        f"- meets floors: measured AP50 >= {floor:g} % and achieved >= {results['keep_up']:.0%} of offered.",
        "",
        "| plan | detect: variant, workers (planned frames/s) | others on | cost/h predicted | cost/h measured "
        "(workers + network) | AP50 predicted | AP50 measured | count error /frame | frames/s required / offered "
        "/ achieved | latency p50 / p99 ms | meets floors |", "|---" * 11 + "|"]
    for r in rows:
        if "measured" not in r:
            lines.append(f"| {r['algorithm']} | {r['status']}: {r['reason']} |" + " |" * 9)
            continue
        p, m = r["predicted"], r["measured"]
        where = "; ".join(f"{r['variant'][op]} on " + ", ".join(f"{w} ({s:.2f})" for w, s in pl.items())
                          for op, pl in r["placement"].items())
        lines.append(
            f"| {r['algorithm']} | {where} | {', '.join(r.get('others_on', []))} | {p['cost_per_hour']:.4f} | {m['cost_per_hour']:.4f} "
            f"({m['compute']:.2f} + {m['network']:.4f}) | {p['accuracy'] / 100:.3f} | {_fmt(m['ap50'], '.3f')} "
            f"| {_fmt(m['count_error_per_frame'], '.2f')} | {p['throughput_per_s']:.2f} / {m['offered_per_s']:.2f} / "
            f"{m['throughput_per_s']:.2f} | {_fmt(m['latency_p50_ms'], ',.0f')} / {_fmt(m['latency_p99_ms'], ',.0f')} "
            f"| {'yes' if meets_floors(r, floor) else 'no'} |")
    lines += ["", verdict(rows, floor)]
    return "\n".join(lines)


def verdict(rows: list[dict[str, Any]], floor: float) -> str:
    """One sentence: is the exact plan the cheapest, measured, among the plans that meet both floors?"""
    ok = [r for r in rows if meets_floors(r, floor)]
    exact = next((r for r in rows if r["algorithm"] == "exact"), None)
    if exact is None or "measured" not in exact:
        return "The exact plan did not run, so there is no measured comparison."
    if not ok:
        return "No plan met both floors on the testbed (see the table)."
    cheapest = min(ok, key=lambda r: r["measured"]["cost_per_hour"])
    if exact not in ok:
        return (f"The exact plan did not meet both floors on the testbed; the cheapest plan that did is "
                f"{cheapest['algorithm']} at {cheapest['measured']['cost_per_hour']:.4f}/h.")
    ties = [r["algorithm"] for r in ok if abs(r["measured"]["cost_per_hour"] - exact["measured"]["cost_per_hour"])
            <= 0.005 * exact["measured"]["cost_per_hour"] and r is not exact]
    if cheapest is exact or ties and cheapest["algorithm"] in ties:
        return (f"Measured, the exact plan is the cheapest of the plans that meet both floors "
                f"({exact['measured']['cost_per_hour']:.4f}/h" + (f"; {', '.join(ties)} chose a plan that costs "
                                                                  f"the same within 0.5 %" if ties else "") + ").")
    return (f"Measured, {cheapest['algorithm']} ({cheapest['measured']['cost_per_hour']:.4f}/h) is cheaper than the "
            f"exact plan ({exact['measured']['cost_per_hour']:.4f}/h) among the plans that meet both floors.")


def plot(rows: list[dict[str, Any]], path: Path, floor: float) -> None:
    """Four panels per plan: cost, AP50, throughput, latency; predicted or required next to measured."""
    ran = [r for r in rows if "measured" in r]
    if not ran:
        return
    x = list(range(len(ran)))
    w = 0.38
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    panels = [
        ("cost per hour", "cost_per_hour", "cost_per_hour", "predicted", "measured", None, False),
        ("AP50 (detections)", "accuracy", "ap50", "predicted", "measured", floor / 100, False),
        ("frames/s", "throughput_per_s", "throughput_per_s", "required (plan)", "achieved", "offered", False),
        ("latency camera -> detections, ms", None, None, "p50", "p99", None, True),
    ]
    for ax, (title, pk, mk, left, right, line, log) in zip(axes, panels):
        if pk is None:
            a = [r["measured"]["latency_p50_ms"] or 0 for r in ran]
            b = [r["measured"]["latency_p99_ms"] or 0 for r in ran]
        else:
            scale = 0.01 if pk == "accuracy" else 1.0
            a = [r["predicted"][pk] * scale for r in ran]
            b = [r["measured"][mk] or 0 for r in ran]
        ax.bar([i - w / 2 for i in x], a, w, label=left)
        bars = ax.bar([i + w / 2 for i in x], b, w, label=right)
        ax.bar_label(bars, fmt="%.3g", fontsize=7)
        if line == "offered":
            ax.axhline(ran[0]["measured"]["offered_per_s"], color="grey", linestyle="--", linewidth=1,
                       label="offered (replay)")
        elif line is not None:
            ax.axhline(line, color="grey", linestyle="--", linewidth=1, label="floor")
        if log:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xticks(x)
        ax.set_xticklabels([r["algorithm"] for r in ran])
        ax.legend(fontsize=7, loc="lower right" if not log else "upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
