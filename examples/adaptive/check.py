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

from traces.format import Trace  # noqa: E402
from traces.schedule import parse_schedule  # noqa: E402


def expected_frames(plan: dict) -> Counter:
    source = plan["sources"][0]
    schedule = parse_schedule(source.get("schedule", {}))
    traces = [Trace.open(HERE / p) for p in source["paths"]]
    first = min(float(t.timestamps[0]) for t in traces if t.frame_count)
    return Counter((t.camera, i) for t in traces for i in range(t.frame_count)
                   if schedule.present(t.camera, float(t.timestamps[i]) - first))


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
              f"cost/h {a.get('from_cost_per_hour')} -> {a.get('expected_cost_per_hour')}, "
              f"accuracy {a.get('from_accuracy')} -> {a.get('expected_accuracy')}; now {a.get('summary')}")
    windows = report.get("timeline", [])
    slo = report.get("slo_ms")
    if windows and slo:
        over = [w["t_s"] for w in windows if any((v.get("p99") or 0) > slo for v in w["latency_ms"].values())]
        print(f"windows with a sink's p99 over the SLO {slo:g} ms: {len(over)} of {len(windows)}"
              f"{' (at ' + ', '.join(f'{t:.0f}' for t in over) + ' s)' if over else ''}")
    return 0 if lost == 0 and duplicated == 0 and unexpected == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
