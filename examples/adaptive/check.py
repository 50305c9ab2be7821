"""Check an adaptive run: every frame the cameras sent is in the detections sink exactly once.

    python examples/adaptive/check.py [examples/adaptive/out/adaptive-run.json]

Expected frames: those of the plan's trace source that its schedule lets through (cameras 3
and 4 only while they are on). Prints lost and duplicated (camera, frame index) pairs, and each
adaptation with the cost per hour and accuracy before and after.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from streamflow_traces.format import Trace  # noqa: E402
from streamflow_traces.schedule import parse_schedule  # noqa: E402


def expected_frames(plan: dict) -> Counter:
    source = plan["sources"][0]
    schedule = parse_schedule(source.get("schedule", {}))
    traces = [Trace.open(HERE / p) for p in source["paths"]]
    first = min(float(t.timestamps[0]) for t in traces if t.frame_count)
    return Counter((t.camera, i) for t in traces for i in range(t.frame_count)
                   if schedule.present(t.camera, float(t.timestamps[i]) - first))


def print_reaction(report: dict, plan: dict, windows: list[dict], slo: float | None) -> None:
    """The acceptance figures: the first adaptation after the load step (seconds since the sources
    started: the schedule's stream seconds on the replay's clock, to the new plan active), p99 in
    the windows after it, and the return to the cheaper configuration after the load drops."""
    raw = plan["sources"][0].get("schedule", {})
    schedule = parse_schedule(raw)
    cameras = raw.get("cameras", {})
    starts = [schedule.due(c["start_s"]) for c in cameras.values() if "start_s" in c]
    stops = [schedule.due(c["stop_s"]) for c in cameras.values() if "stop_s" in c]
    done = [a for a in report.get("adaptations", []) if "at_s" in a and "refused" not in a]
    base_cost = plan.get("expected", {}).get("cost_per_hour")
    if starts:
        step = min(starts)
        up = next((a for a in done if a["at_s"] >= step), None)
        if up is None:
            print(f"no adaptation after the load step at {step:g} s")
        else:
            active = up["at_s"] + (up.get("switch_s") or 0)
            after = [w for w in windows if w["t_s"] - w.get("span_s", 0) >= up["t_s"] + (up.get("switch_s") or 0)]
            worst = max(((v.get("p99") or 0) for w in after for v in w["latency_ms"].values()), default=None)
            print(f"load step at {step:g} s: first adaptation at {up['at_s']:.1f} s, new plan active "
                  f"{active - step:.1f} s after the step ({'within' if active - step <= 10 else 'NOT within'} 10 s); "
                  f"p99 in the {len(after)} windows after it: worst {worst:.0f} ms"
                  + (f" ({'at most' if worst <= slo else 'OVER'} the SLO {slo:g} ms)" if slo and worst is not None else ""))
    if stops and base_cost is not None:
        drop = max(stops)
        back = next((a for a in done if a["at_s"] >= drop
                     and (a.get("expected_cost_per_hour") or 1e9) <= base_cost + 1e-9), None)
        if back is None:
            print(f"load drop at {drop:g} s: no return to a configuration at {base_cost}/h or less")
        else:
            active = back["at_s"] + (back.get("switch_s") or 0)
            print(f"load drop at {drop:g} s: back to {back.get('expected_cost_per_hour')}/h at {back['at_s']:.1f} s, "
                  f"active {active - drop:.1f} s after the drop ({'within' if active - drop <= 30 else 'NOT within'} 30 s)")



def _fmt(value: float | None, digits: int) -> str:
    """A cost or accuracy as people read it ('-' when the report has none)."""
    return "-" if value is None else f"{value:.{digits}f}"

def main() -> int:
    report_path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "out" / "adaptive-run.json"
    report = json.loads(report_path.read_text())
    plan = json.loads((HERE / "plan.json").read_text())
    sink = next(s for s in plan["sinks"] if s["name"] == "detections")
    got = Counter()
    for line in (HERE / sink["path"]).read_text().splitlines():
        r = json.loads(line)
        got[(r["camera"], r["index"])] += 1
    want = expected_frames(plan)
    lost = sum((want - got).values())
    duplicated = sum(n - 1 for n in got.values() if n > 1)
    unexpected = sum(n for k, n in got.items() if k not in want)
    print(f"frames expected {sum(want.values())}, in the detections sink {sum(got.values())}: "
          f"lost = {lost}, duplicated = {duplicated}, unexpected = {unexpected}")
    for a in report.get("adaptations", []):
        print(f"adaptation at {a['at_s']:.1f} s (epoch {a.get('epoch')}): {a.get('reason')}; "
              f"cost/h {_fmt(a.get('from_cost_per_hour'), 3)} -> {_fmt(a.get('expected_cost_per_hour'), 3)}, "
              f"accuracy {_fmt(a.get('from_accuracy'), 2)} -> {_fmt(a.get('expected_accuracy'), 2)}; "
              f"now {a.get('summary')}")
    windows = report.get("timeline", [])
    slo = report.get("slo_ms")
    if windows and slo:
        over = [w["t_s"] for w in windows if any((v.get("p99") or 0) > slo for v in w["latency_ms"].values())]
        print(f"windows with a sink's p99 over the SLO {slo:g} ms: {len(over)} of {len(windows)}"
              f"{' (at ' + ', '.join(f'{t:.0f}' for t in over) + ' s)' if over else ''}")
    print_reaction(report, plan, windows, slo)
    return 0 if lost == 0 and duplicated == 0 and unexpected == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
