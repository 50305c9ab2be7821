"""Loader and validator: every error names the JSON path; units and derived rates."""

from __future__ import annotations

import copy
import json

import pytest

from streamflow_planner.errors import ProblemError
from streamflow_planner.problem import load_problem, parse_problem
from planner_instances import VQA_MEDIUM
from tools.gen_problems import generate_problem

needs_shared = pytest.mark.skipif(not VQA_MEDIUM.exists(), reason=f"shared data absent: {VQA_MEDIUM}")


@pytest.fixture(scope="module")
def vqa_doc():
    return generate_problem("vqa", 5, 2, seed=1)


def _error(doc) -> str:
    with pytest.raises(ProblemError) as info:
        parse_problem(doc, "problem.json")
    return str(info.value)


@needs_shared
def test_loads_vqa_medium():
    p = load_problem(VQA_MEDIUM)
    assert list(p.operators) == ["ExtractImageFeature", "SpeechRecognition", "VQA"]
    assert p.sink == "VQA" and p.threshold == 56.0 and p.scale == 0.1
    assert p.required_rates()["VQA"] == 40.0
    assert [w.tier for w in p.workers].count(1) == 4
    cap = p.capacity("ExtractImageFeature", "resnet18")
    assert cap[0] == pytest.approx(1000 / 135.08435991666667)
    # 1 KB/s from a tier-0 to a tier-1 worker: 1.0 per GB x 0.1 x 3600/1024^2 per hour
    assert p.link_cost_per_kb_s(0, 5) == pytest.approx(0.1 * 3600 / 1024 / 1024)
    assert p.link_cost_per_kb_s(5, 0) == float("inf")
    assert p.link_cost_per_kb_s(5, 6) == 0.0
    assert p.is_join("VQA") and not p.is_join("ExtractImageFeature")


def test_missing_worker_in_latency_names_the_path(vqa_doc):
    doc = copy.deepcopy(vqa_doc)
    w = doc["workers"][0]["name"]
    del doc["execution_latency_ms"]["ExtractImageFeature"]["resnet18"][w]
    assert _error(doc) == f"problem.json: execution_latency_ms.ExtractImageFeature.resnet18: missing worker '{w}'"


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["workers"][1].update(tier=-1), "problem.json: workers[1].tier: tier must be >= 0, got -1"),
    (lambda d: d["workers"][0].pop("cost_per_hour"), "problem.json: workers[0].cost_per_hour: missing field"),
    (lambda d: d["workers"][0].update(cost_per_hour="cheap"), "problem.json: workers[0].cost_per_hour: expected a number, got str"),
    (lambda d: d["dataflow"]["operators"][1].update(input_operators=["Nope"]),
     "problem.json: dataflow.operators[1].input_operators[0]: no such operator 'Nope'"),
    (lambda d: d["dataflow"]["edges"][0].update(to="Nope"), "problem.json: dataflow.edges[0].to: no such ML operator 'Nope'"),
    (lambda d: d["accuracy"].pop("threshold"), "problem.json: accuracy.threshold: missing field"),
    (lambda d: d["links"].update(comm_cost_scaling_factor=-1), "problem.json: links.comm_cost_scaling_factor: must be >= 0, got -1.0"),
    (lambda d: d["execution_latency_ms"]["VQA"]["default"].update({d["workers"][0]["name"]: 0}),
     None),
])
def test_errors_name_the_json_path(vqa_doc, mutate, expected):
    doc = copy.deepcopy(vqa_doc)
    mutate(doc)
    msg = _error(doc)
    if expected is None:
        assert msg.startswith(f"problem.json: execution_latency_ms.VQA.default.{vqa_doc['workers'][0]['name']}: latency must be > 0")
    else:
        assert msg == expected


def test_cycle_is_rejected(vqa_doc):
    doc = copy.deepcopy(vqa_doc)
    ops = doc["dataflow"]["operators"]
    ops[1]["input_operators"] = ["ReadImage", "VQA"]
    doc["dataflow"]["edges"].append({"from": "VQA", "to": "ExtractImageFeature",
                                     "message_size_kb_by_variant": [{"from_variant": "default", "to_variant": "default", "message_size_kb": 1}]})
    assert "cycle" in _error(doc)


def test_not_json_and_missing_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ProblemError, match="bad.json: not JSON"):
        load_problem(bad)
    with pytest.raises(ProblemError, match="cannot read"):
        load_problem(tmp_path / "absent.json")


def test_overrides_scale_sources_and_floor(vqa_doc):
    p = parse_problem(vqa_doc)
    q = p.with_overrides(accuracy=57.0, throughput=12.0)
    assert q.threshold == 57.0 and q.required_rates()["VQA"] == pytest.approx(12.0)
    assert p.required_rates()["VQA"] == 30.0


def test_tier_matrix_and_explicit_pairs(vqa_doc):
    doc = copy.deepcopy(vqa_doc)
    a, b = doc["workers"][0]["name"], doc["workers"][-1]["name"]
    doc["links"]["worker_to_worker_cost_per_gb"] = [{"from_worker": a, "to_worker": b, "cost_per_gb": 7.0}]
    p = parse_problem(json.loads(json.dumps(doc)))
    assert p.worker_price[0, len(p.workers) - 1] == 7.0
    assert p.worker_price[1, len(p.workers) - 1] == 1.0
