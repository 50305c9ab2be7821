"""Profile -> plan -> run: the profiler measures real variants into a problem the planner takes
as is; the floor moves the variant choice; a planned plan runs with --local and its measured
accuracy is close to the planner's prediction."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TRAFFIC = REPO / "examples" / "traffic"
ENV = dict(os.environ, PYTHONPATH=str(REPO))


@pytest.fixture(autouse=True)
def _needs_clips() -> None:
    if not (REPO / "traces" / "clips" / "ngsim_cam1" / "ngsim_us101_cam1_640x480_3fps.mp4").resolve().exists():
        pytest.skip("the example traces link to ../shared/data, which is absent here")


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamflow.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def plan_for(problem: Path, out: Path, *extra: str) -> dict:
    result = cli("plan", str(problem), "--algo", "exact", "-o", str(out), *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


def test_the_accuracy_floor_moves_the_variant(tmp_path) -> None:
    problem = TRAFFIC / "problem.json"
    doc = json.loads(problem.read_text())
    acc = {v: s["samples"][0]["output_accuracy"]
           for v, s in doc["accuracy"]["per_operator_profiles"][0]["variants"].items()}
    lat = {v: min(w.values()) for v, w in doc["execution_latency_ms"]["detect"].items()}
    chosen = {}
    for floor in (50, 70, 80):
        plan = plan_for(problem, tmp_path / f"plan{floor}.json", "--accuracy", str(floor))
        chosen[floor] = plan["operators"][0]["variant"]
        assert acc[chosen[floor]] >= floor
    assert acc[chosen[50]] <= acc[chosen[70]] <= acc[chosen[80]]
    assert lat[chosen[50]] <= lat[chosen[70]] <= lat[chosen[80]], chosen  # cheaper below, dearer above
    assert chosen[50] != chosen[80]
    result = cli("plan", str(problem), "--algo", "exact", "--accuracy", "99")
    assert result.returncode == 3 and "accuracy 99" in result.stderr


def test_profile_plan_run_a_toy_workflow(tmp_path) -> None:
    """A three-variant workflow on two worker types: profiled, planned, run with --local. The YOLOX
    variant without a runtime is named after the fastest CPU runtime; the int8 one is calibrated
    on the source's traces; the filtered one receives smaller messages from the camera host."""
    clips = REPO / "traces" / "clips"
    workflow = {
        "name": "toy", "epoch": {"unit": "frame", "size": 4},
        "accuracy": {"threshold": 10.0, "classes": ["car", "truck", "bus"]},
        "sources": [{"name": "cams", "kind": "trace", "worker": "camera-hub", "encode": "jpeg",
                     "paths": [str(clips / "ngsim_cam1"), str(clips / "ngsim_cam2")], "stop": 12}],
        "operators": [
            {"name": "detect", "kind": "detect", "inputs": ["cams"], "variants": ["mog2", "yolox_nano@320", "yolox_nano@256:int8:ort+diff0.3"],
             "params": {"classes": ["car", "truck", "bus"], "agnostic_nms": True, "score_threshold": 0.01},
             "batch": {"max_size": 2, "max_wait_ms": 10}},
            {"name": "track", "kind": "track", "inputs": ["detect"], "placement": "with:detect",
             "params": {"min_hits": 1, "iou_threshold": 0.05, "min_score": 0.03}}],
        "sinks": [{"name": "detections", "from": "detect", "path": "out/det.jsonl", "worker": "with:detect",
                   "evaluate": {"task": "detection", "classes": ["car", "truck", "bus"]}}],
    }
    infra = {"tiers": ["edge", "cloud"],
             "workers": [{"name": "edge-1", "tier": "edge", "threads": 1, "cost_per_hour": 0.02},
                         {"name": "cloud-1", "tier": "cloud", "threads": 2, "cost_per_hour": 0.5}],
             "link_cost_per_gb": {"edge->cloud": 0.09}}
    (tmp_path / "workflow.json").write_text(json.dumps(workflow))
    (tmp_path / "infra.json").write_text(json.dumps(infra))
    result = cli("profile", str(tmp_path / "workflow.json"), "--infra", str(tmp_path / "infra.json"),
                 "-o", str(tmp_path / "problem.json"), "--frames", "6", "--timing-frames", "4", "--no-cache")
    assert result.returncode == 0, result.stderr
    problem = json.loads((tmp_path / "problem.json").read_text())
    latencies = problem["execution_latency_ms"]["detect"]
    fastest = [v for v in latencies if v.startswith("yolox_nano@320:")]
    assert set(latencies) == {"mog2", "yolox_nano@256:int8:ort+diff0.3", *fastest}
    assert len(fastest) == 1 and fastest[0].split(":")[1] in ("cv2", "ort", "ov")
    assert f"yolox_nano@320 -> {fastest[0]}" in result.stdout
    assert all(ms > 0 for per in latencies.values() for ms in per.values())
    rows = {r["to_variant"]: r["message_size_kb"] for r in problem["dataflow"]["edges"][0]["message_size_kb_by_variant"]}
    assert rows["default"] > 5  # JPEG frames
    assert rows["yolox_nano@256:int8:ort+diff0.3"] < rows["default"]  # the camera host dropped frames
    plan = plan_for(tmp_path / "problem.json", tmp_path / "plan.json")
    assert [o["name"] for o in plan["operators"]] == ["detect", "track"]
    result = cli("run", str(tmp_path / "plan.json"), "--local", "--speed", "0", "--quiet", timeout=180)
    assert result.returncode == 0, result.stderr
    assert "frames/s" in result.stdout and "ap50" in result.stdout
    report = json.loads((tmp_path / "out" / "toy-run.json").read_text())
    assert report["operators"]["detect"]["records"] == 24


def test_measured_accuracy_is_close_to_the_prediction(tmp_path) -> None:
    """The shipped traffic plan on the first 40 frames of each camera (the profile saw 24)."""
    plan = json.loads((TRAFFIC / "plan.json").read_text())
    source = plan["sources"][0]
    source["paths"] = [str((TRAFFIC / p).resolve()) for p in source["paths"]]
    source["stop"] = 40
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    result = cli("run", str(tmp_path / "plan.json"), "--local", "--speed", "0", "--quiet", timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "traffic-run.json").read_text())
    measured = report["accuracy"]["detections"]["ap50"]
    predicted = plan["expected"]["accuracy"] / 100
    assert abs(measured - predicted) <= 0.05, (measured, predicted)
