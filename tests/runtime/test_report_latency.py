"""The run report's per-sink latency: p50/p95/p99, the share within the plan's SLO and the
planner's prediction next to the sink of its sink operator."""
from __future__ import annotations

import json
from pathlib import Path

from streamflow.cluster.report import sink_latency
from streamflow.plan import parse_plan

REPO = Path(__file__).resolve().parents[2]
PLAN = REPO / "examples" / "traffic" / "plan-slo-2000.json"


def test_sink_latency_against_the_slo_and_the_prediction():
    plan = parse_plan(json.loads(PLAN.read_text()), str(PLAN))
    samples = {"detections": [100.0] * 90 + [1500.0] * 8 + [2500.0] * 2, "tracks": [2100.0] * 10,
               "detect": [5.0]}    # an operator, not a sink: left out
    out = sink_latency(plan, samples)
    assert set(out) == {"detections", "tracks"}
    det = out["detections"]
    assert det["records"] == 100 and det["p50"] == 100.0 and det["p95"] == 1500.0
    assert det["slo_ms"] == 2000.0 and det["within_slo"] == 0.98
    assert det["predicted"] == {"p99": plan.expected["latency"]["predicted_ms"]}
    assert out["tracks"]["within_slo"] == 0.0 and "predicted" not in out["tracks"]   # not the sink operator
