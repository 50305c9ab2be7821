"""Acceptance on JellyBean's own problem: exact <= 7.5088 == bruteforce, jellybean reproduces 7.5088."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from streamflow_planner.cli import main
from streamflow_planner.planning import plan
from streamflow_planner.problem import load_problem
from planner_instances import REPO, VQA_MEDIUM

pytestmark = pytest.mark.skipif(not VQA_MEDIUM.exists(), reason=f"shared data absent: {VQA_MEDIUM}")
JELLYBEAN_COST = 7.5088


@pytest.fixture(scope="module")
def problem():
    return load_problem(VQA_MEDIUM)


def test_jellybean_reproduces_the_published_plan(problem):
    r = plan(problem, "jellybean")
    assert r.assignment.variants["ExtractImageFeature"] == "resnet18"
    assert r.assignment.variants["SpeechRecognition"] == "wav2vec2-large-960h-lv60-self"
    assert r.evaluation.compute_cost == pytest.approx(6.242)
    assert r.evaluation.communication_cost == pytest.approx(1.2668, abs=5e-5)
    assert round(r.evaluation.total_cost, 4) == JELLYBEAN_COST
    assert r.evaluation.accuracy == 56.59


def test_exact_is_optimal_and_matches_bruteforce(problem):
    exact = plan(problem, "exact")
    brute = plan(problem, "bruteforce")
    assert exact.optimal and exact.gap == pytest.approx(0.0, abs=1e-9)
    assert exact.evaluation.total_cost <= JELLYBEAN_COST
    assert exact.evaluation.total_cost == pytest.approx(brute.evaluation.total_cost, rel=1e-9)
    assert exact.evaluation.accuracy >= 56.0


def test_cli_plan_then_independent_evaluate(tmp_path, capsys):
    out = tmp_path / "plan.json"
    assert main([str(VQA_MEDIUM), "--algo", "exact", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["version"] == 1 and doc["expected"]["optimal"] is True
    assert doc["expected"]["cost_per_hour"] <= JELLYBEAN_COST
    names = {w["name"] for w in doc["workers"]}
    for op in doc["operators"]:
        assert op["kind"] == "model"
        assert all(pl["worker"] in names for pl in op["placement"])
        assert sum(pl["share"] for pl in op["placement"]) == pytest.approx(40.0)
    assert {s["worker"] for s in doc["sources"]} == {"ReadImage-host", "ReadSpeech-host"}
    assert all(w["tier"] in ("edge", "cloud") for w in doc["workers"])
    assert next(w for w in doc["workers"] if w["name"].startswith("workflow-compute-gpu"))["device"] == "cuda:0"
    capsys.readouterr()
    assert main(["--evaluate", str(out), str(VQA_MEDIUM)]) == 0
    printed = capsys.readouterr().out
    assert f"{doc['expected']['cost_per_hour']:.4f}" in printed


def test_cli_exit_statuses(tmp_path, capsys):
    assert main([str(VQA_MEDIUM), "--accuracy", "60"]) == 3
    assert capsys.readouterr().err.strip() == "error: no variant combination reaches accuracy 60; best is 58.33"
    assert main([str(VQA_MEDIUM), "--throughput", "200"]) == 3
    assert "SpeechRecognition needs 200/s" in capsys.readouterr().err
    bad = tmp_path / "p.json"
    doc = json.loads(VQA_MEDIUM.read_text())
    del doc["execution_latency_ms"]["ExtractImageFeature"]["resnet18"]["workflow-compute-cpu-3"]
    bad.write_text(json.dumps(doc))
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: p.json: execution_latency_ms.ExtractImageFeature.resnet18: missing worker 'workflow-compute-cpu-3'"
    plan_path = tmp_path / "plan.json"
    assert main([str(VQA_MEDIUM), "--algo", "jellybean", "-o", str(plan_path)]) == 0
    tampered = json.loads(plan_path.read_text())
    tampered["operators"][0]["placement"][0]["share"] += 5.0
    plan_path.write_text(json.dumps(tampered))
    capsys.readouterr()
    assert main(["--evaluate", str(plan_path), str(VQA_MEDIUM)]) == 3
    assert capsys.readouterr().err.startswith("error: plan violates the problem: ExtractImageFeature: ")


def test_python_dash_m_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "streamflow_planner.cli", str(VQA_MEDIUM), "--algo", "jellybean"],
                          cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    assert "7.5088" in proc.stdout
    assert json.loads((tmp_path / "plan.json").read_text())["expected"]["cost_per_hour"] == pytest.approx(7.5088, abs=1e-4)
