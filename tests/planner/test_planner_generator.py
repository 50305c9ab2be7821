"""The problem generator: reproducible, valid, and plans into runnable-looking plans."""

from __future__ import annotations

import pytest

from streamflow_planner.planfile import to_plan
from streamflow_planner.planning import plan
from streamflow_planner.problem import parse_problem
from tools.gen_problems import generate_problem


def test_same_seed_same_problem_other_seed_other_problem():
    assert generate_problem("vqa", 9, 2, seed=3) == generate_problem("vqa", 9, 2, seed=3)
    assert generate_problem("vqa", 9, 2, seed=3) != generate_problem("vqa", 9, 2, seed=4)


@pytest.mark.parametrize("workflow, workers, tiers", [("vqa", 5, 2), ("vqa", 15, 3), ("vehicle", 9, 3), ("vehicle", 30, 2)])
def test_generated_problems_load_with_the_requested_shape(workflow, workers, tiers):
    p = parse_problem(generate_problem(workflow, workers, tiers, seed=0))
    assert len(p.workers) == workers
    assert sorted({w.tier for w in p.workers}) == list(range(tiers))
    if workflow == "vehicle":
        assert list(p.operators) == ["detect1", "reid1", "detect2", "reid2", "match", "track"]
        assert p.is_join("match") and not p.is_join("reid1")


def test_vehicle_plan_carries_runtime_kinds_and_routes():
    p = parse_problem(generate_problem("vehicle", 9, 3, seed=0))
    doc = to_plan(p, plan(p, "exact"))
    kinds = {op["name"]: op["kind"] for op in doc["operators"]}
    assert kinds == {"detect1": "detect", "reid1": "embed", "detect2": "detect", "reid2": "embed",
                     "match": "join", "track": "track"}
    detect = next(op for op in doc["operators"] if op["name"] == "detect1")
    assert detect["variant"].startswith("yolox_nano@") and detect["params"]["keep_frame"] is True
    reid = next(op for op in doc["operators"] if op["name"] == "reid1")
    assert "routes" in reid["inputs"][0]
    match = next(op for op in doc["operators"] if op["name"] == "match")
    assert all("routes" not in inp for inp in match["inputs"])
    assert doc["sources"][0]["kind"] == "trace" and doc["sources"][0]["path"] == "../../traces/clips/ngsim_cam1"


@pytest.mark.parametrize("name", ["vqa_w9_t2_s0.json", "vehicle_w9_t3_s0_c2.json"])
def test_shipped_examples_are_current_and_plan(name):
    import json
    from pathlib import Path
    path = Path(__file__).resolve().parents[2] / "examples" / "planner" / name
    doc = json.loads(path.read_text())
    stem = path.stem.split("_")
    kw = {"cameras": int(stem[4][1:])} if stem[0] == "vehicle" else {}
    assert doc == generate_problem(stem[0], int(stem[1][1:]), int(stem[2][1:]), int(stem[3][1:]), **kw)
    result = plan(parse_problem(doc), "exact")
    assert result.optimal and result.evaluation.feasible
