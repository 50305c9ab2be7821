"""ML operators in the dataflow: a trace replayed through detect and track gives what a bare loop
over the same detector gives; bad traces, videos and model files are plan errors (exit 2)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from streamflow.dataflow.worker import Worker
from streamflow.errors import PlanError
from streamflow.plan import build_graph, parse_plan

REPO = Path(__file__).resolve().parents[2]
CAM1 = REPO / "traces" / "clips" / "ngsim_cam1"
PETS = REPO / "traces" / "clips" / "pets09"


@pytest.fixture(autouse=True)
def _needs_clips() -> None:
    if not (CAM1 / "meta.json").exists() or not (CAM1 / "ngsim_us101_cam1_640x480_3fps.mp4").resolve().exists():
        pytest.skip("the example traces link to ../shared/data, which is absent here")


def detect_plan(tmp: Path, trace: Path = CAM1, variant: str = "yolox_nano@320", stop: int = 9, **detect) -> dict:
    params = {"classes": ["car", "truck", "bus"], "agnostic_nms": True, "score_threshold": 0.01, **detect}
    return {"version": 1, "name": "ml", "epoch": {"unit": "frame", "size": 3},
            "workers": [{"name": "edge-0", "tier": "edge"}],
            "sources": [{"name": "cam", "kind": "trace", "path": str(trace), "stop": stop, "speed": 0,
                         "worker": "edge-0"}],
            "operators": [
                {"name": "detect", "kind": "detect", "variant": variant, "params": params, "inputs": ["cam"],
                 "placement": [{"worker": "edge-0"}], "batch": {"max_size": 4, "max_wait_ms": 5}},
                {"name": "track", "kind": "track", "params": {"iou_threshold": 0.05, "min_hits": 1, "min_score": 0.03},
                 "inputs": ["detect"], "placement": [{"worker": "edge-0"}]}],
            "sinks": [{"name": "det", "from": "detect", "path": str(tmp / "det.jsonl")},
                      {"name": "trk", "from": "track", "path": str(tmp / "trk.jsonl")},
                      {"name": "done", "from": "track", "port": 1, "path": str(tmp / "done.jsonl")}]}


def run_in_process(plan: dict) -> None:
    graph, _ = build_graph(parse_plan(plan))
    Worker(graph).run()


def rows(path: Path) -> list[dict]:
    return sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda r: r["index"])


def test_dataflow_detections_equal_a_bare_loop(tmp_path) -> None:
    from streamflow_traces.replay import FrameReader
    from streamflow_workers.variants import build_detector
    run_in_process(detect_plan(tmp_path))
    got = rows(tmp_path / "det.jsonl")
    assert [r["index"] for r in got] == list(range(9))
    detector = build_detector("yolox_nano@320", "opencv", "cpu", classes=[2, 5, 7], agnostic_nms=True,
                              score_threshold=0.01)
    for r, frame in zip(got, FrameReader(str(CAM1), stop=9)):
        want = detector.detect([frame.image])[0]
        np.testing.assert_allclose(np.asarray(r["boxes"]).reshape(-1, 6), want, rtol=1e-4, atol=1e-3)
    tracks = rows(tmp_path / "trk.jsonl")
    assert len(tracks) == 9 and sum(len(t["tracks"]) for t in tracks) > 0
    finished = [json.loads(line) for line in (tmp_path / "done.jsonl").read_text().splitlines()]
    assert finished and all(f["last_frame"] >= f["first_frame"] for f in finished)


def test_frame_sampling_runs_the_model_on_every_kth_frame(tmp_path) -> None:
    run_in_process(detect_plan(tmp_path, variant="yolox_nano@320/3"))
    got = rows(tmp_path / "det.jsonl")
    assert [r["boxes"] is None for r in got] == [i % 3 != 0 for i in range(9)]
    assert len(rows(tmp_path / "trk.jsonl")) == 9


def test_torch_runtime_gives_the_same_detections(tmp_path) -> None:
    (tmp_path / "cv").mkdir()
    (tmp_path / "pt").mkdir()
    run_in_process(detect_plan(tmp_path / "cv", stop=3))
    run_in_process(detect_plan(tmp_path / "pt", stop=3, runtime="torch"))
    for a, b in zip(rows(tmp_path / "cv" / "det.jsonl"), rows(tmp_path / "pt" / "det.jsonl")):
        a, b = np.asarray(a["boxes"]), np.asarray(b["boxes"])
        assert abs(len(a) - len(b)) <= 1
        n = min(len(a), len(b))
        np.testing.assert_allclose(a[:n, :4], b[:n, :4], atol=1.0)


def _validate(tmp_path: Path, plan: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return subprocess.run([sys.executable, "-m", "streamflow.cli", "run", str(path), "--local"],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))


def test_missing_trace_is_one_line_exit_2(tmp_path) -> None:
    plan = detect_plan(tmp_path, trace=tmp_path / "nowhere")
    result = _validate(tmp_path, plan)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "sources[0].path" in result.stderr and "nowhere" in result.stderr


def test_corrupt_video_is_one_line_exit_2(tmp_path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(CAM1, broken, symlinks=False)
    video = broken / "ngsim_us101_cam1_640x480_3fps.mp4"
    video.unlink()
    video.write_bytes(b"\x00not a video" * 1000)
    result = _validate(tmp_path, detect_plan(tmp_path, trace=broken))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "sources[0].path" in result.stderr


def test_model_that_fails_to_load_is_one_line_exit_2(tmp_path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage" * 100)
    result = _validate(tmp_path, detect_plan(tmp_path, model=str(bad)))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "operators[0]" in result.stderr and "bad.onnx" in result.stderr


def test_unknown_variant_names_the_known_ones(tmp_path) -> None:
    with pytest.raises(PlanError, match=r"operators\[0\].variant: unknown variant 'yolox_nano@333'"):
        build_graph(parse_plan(detect_plan(tmp_path, variant="yolox_nano@333")))


def test_region_and_appearance_params(tmp_path) -> None:
    left_half = [[0, 0], [320, 0], [320, 480], [0, 480]]
    run_in_process(detect_plan(tmp_path, stop=3, region=left_half, appearance="histogram"))
    got = rows(tmp_path / "det.jsonl")
    boxes = np.concatenate([np.asarray(r["boxes"]).reshape(-1, 6) for r in got])
    assert len(boxes) and ((boxes[:, 0] + boxes[:, 2]) / 2 <= 320).all()
    for r in got:
        emb = np.asarray(r["embeddings"])
        assert emb.shape == (len(r["boxes"]), 56) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)


def test_preloading_a_plan_loads_its_detector_for_the_deployment_that_follows(tmp_path) -> None:
    """Load-then-switch (streamflow/cluster/preload.py): the detector a worker will run is in the
    process's LOADED table before the deployment, and on_start then takes that object."""
    from streamflow.cluster.preload import warm_plan
    from streamflow_workers.operators import detect as detect_module
    raw = detect_plan(tmp_path, variant="yolox_nano@256")
    before = set(detect_module.LOADED)
    assert warm_plan(raw, "plan.json", ".", None, ["other-worker"]) == []  # nothing placed there
    assert warm_plan(raw, "plan.json", ".", None, ["edge-0"]) == ["detect"]
    new = [k for k in detect_module.LOADED if k not in before]
    assert len(new) == 1 and new[0][0] == "yolox_nano@256"
    graph, _ = build_graph(parse_plan(raw))
    op = next(s for s in graph.operators if s.name == "detect").factory()
    op.load("cpu")
    assert op.detector is detect_module.LOADED[new[0]]


def test_a_spare_on_standby_loads_the_running_plans_detector_on_its_own_device(tmp_path) -> None:
    """Warm standby (streamflow/cluster/preload.py): a worker the plan does not place anything on
    loads every operator with a variant as if placed on it, on the device it registered with."""
    from streamflow.cluster.preload import warm_plan
    from streamflow_workers.operators import detect as detect_module
    raw = detect_plan(tmp_path, variant="yolox_nano@160")
    before = set(detect_module.LOADED)
    spare = {"name": "edge-9", "tier": "edge", "device": "cpu", "cost_per_hour": 0.02, "threads": 1}
    assert warm_plan(raw, "plan.json", ".", None, [], standby=spare) == ["detect"]
    new = [k for k in detect_module.LOADED if k not in before]
    assert len(new) == 1 and new[0][0] == "yolox_nano@160" and new[0][2] == "cpu" and new[0] in detect_module.PRELOADED
    assert [w["name"] for w in raw["workers"]] == ["edge-0"]  # the plan document is not changed
    detect_module.unload_unused()
    assert new[0] in detect_module.LOADED  # kept for the scale-up that may come
    detect_module.PRELOADED.discard(new[0])
    detect_module.unload_unused()


def test_after_a_switch_the_old_detector_is_unloaded_and_a_preloaded_one_kept(tmp_path) -> None:
    """Load beside, switch, unload the old: starting the new instance drops the model no started
    instance uses (the old generation has closed), never one preloaded for a switch to come."""
    from types import SimpleNamespace

    from streamflow.cluster.preload import warm_plan
    from streamflow_workers.operators import detect as detect_module

    def instance(variant: str):
        raw = detect_plan(tmp_path, variant=variant)
        graph, _ = build_graph(parse_plan(raw))
        op = next(s for s in graph.operators if s.name == "detect").factory()
        op.ctx = SimpleNamespace(worker_name="edge-0")
        return op, raw
    old, _ = instance("yolox_nano@224")
    old.on_start()
    new, new_raw = instance("yolox_nano@192")
    warm_plan(new_raw, "plan.json", ".", None, ["edge-0"])
    detect_module.unload_unused()  # the old one runs, the new one is preloaded: both stay
    assert old.key in detect_module.LOADED and new._key("cpu") in detect_module.LOADED
    old.on_close()
    new.on_start()
    assert old.key not in detect_module.LOADED and new.key in detect_module.LOADED
    assert new.key not in detect_module.PRELOADED
    new.on_close()
