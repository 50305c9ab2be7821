"""Latency SLOs: the periodic-burst and M/D/1 quantiles, the problem fields, exact == brute force
under an SLO, the CLI's exit status and the plan's batch settings."""

from __future__ import annotations

import copy
import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamflow_planner.algorithms.exact import least_cover
from streamflow_planner.costmodel import Assignment, evaluate
from streamflow_planner.errors import InfeasibleError, ProblemError
from streamflow_planner.latency import md1_wait_quantile, op_worker_ms, path_latency, periodic_quantile
from streamflow_planner.planfile import to_plan
from streamflow_planner.planning import plan
from streamflow_planner.problem import Arrivals, BatchSetting, parse_problem
from planner_instances import REPO, small_problems

SETTINGS = settings(max_examples=int(__import__("os").environ.get("PLANNER_EXAMPLES", "20")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _lindley(rho: float, n: int = 200_000, seed: int = 1) -> np.ndarray:
    """Waiting times of an M/D/1 queue (service 1) by Lindley's recursion."""
    gaps = np.random.default_rng(seed).exponential(1 / rho, n)
    w = np.zeros(n)
    for i in range(1, n):
        w[i] = max(0.0, w[i - 1] + 1.0 - gaps[i])
    return w


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_md1_quantile_matches_a_simulated_queue(rho):
    sim = _lindley(rho)
    for p in (0.95, 0.99):
        assert md1_wait_quantile(rho, p) == pytest.approx(np.quantile(sim, p), rel=0.06)


def test_md1_quantile_is_zero_below_the_idle_probability_and_grows_with_load():
    assert md1_wait_quantile(0.01, 0.95) == 0.0   # 99 % of arrivals find the server idle
    values = [md1_wait_quantile(r, 0.99) for r in (0.1, 0.3, 0.5, 0.7, 0.9, 0.95)]
    assert values == sorted(values) and values[-1] > 40


def _burst_server(ms: list[float], size: int, counts: list[int], period: float) -> list[float]:
    """Record by record: bursts of counts[j] at j x period, FIFO batches of up to `size` formed
    within a burst, a batch taking the sum of its records' service; each record's time in system."""
    free, out, i = 0.0, [], 0
    for j, c in enumerate(counts):
        for first in range(0, c, size):
            k = min(size, c - first)
            free = max(free, j * period) + sum(ms[i:i + k])
            i += k
            out += [free - j * period] * k
    return out


@pytest.mark.parametrize("ms,size,rho", [(30.0, 1, 0.36), (30.0, 1, 0.9), (80.0, 2, 0.7), (120.0, 4, 0.95),
                                         (400.0, 1, 0.5)])
def test_periodic_quantile_matches_a_record_by_record_queue(ms, size, rho):
    period = 1000 * 4 / 12.0
    a = rho * period / ms
    counts = [int(np.floor((j + 1) * a + 1e-9) - np.floor(j * a + 1e-9)) for j in range(4000)]
    sim = _burst_server([ms] * sum(counts), size, counts, period)
    for p in (0.5, 0.95, 0.99):
        assert periodic_quantile(ms, size, rho, period, p) == pytest.approx(np.quantile(sim, p, method="inverted_cdf"))


def test_periodic_quantile_with_spread_service_matches_an_independent_simulation():
    period, ms, cv = 1000 * 4 / 12.0, 60.0, 0.4
    sigma2 = np.log1p(cv * cv)
    draws = list(ms * np.random.default_rng(7).lognormal(-sigma2 / 2, np.sqrt(sigma2), 200_000))
    counts = [2, 3] * 40_000                     # a = 2.5 records per period, rho = 0.45
    sim = _burst_server(draws, 1, counts, period)
    got = periodic_quantile(ms, 1, 2.5 * ms / period, period, 0.99, cv)
    assert got == pytest.approx(np.quantile(sim, 0.99), rel=0.05)
    assert got > periodic_quantile(ms, 1, 2.5 * ms / period, period, 0.99)   # spread adds to the tail


def test_periodic_bursts_queue_far_less_than_poisson():
    """Four cameras in step, two workers at 70 %: each gets two frames per period and never waits
    for the previous period's, so p99 is two service times; M/D/1 would say about eight."""
    period, ms = 1000 * 4 / 12.0, 116.5
    rho = 6.0 * ms / 1000
    assert periodic_quantile(ms, 1, rho, period, 0.99) == pytest.approx(2 * ms)
    assert (md1_wait_quantile(round(rho, 9), 0.99) + 1) * ms > 3.5 * periodic_quantile(ms, 1, rho, period, 0.99)


def test_arrivals_come_from_the_sources():
    doc = _doc()
    cam = doc["dataflow"]["operators"][0]
    del cam["arrivals"]                                                           # periodic by default
    assert parse_problem(doc).arrivals("det") == Arrivals("periodic", 250.0)
    cam["runtime"] = {"kind": "trace", "params": {"paths": ["a", "b", "c", "d"]}}
    assert parse_problem(doc).arrivals("det") == Arrivals("periodic", 1000.0)     # one frame per camera
    cam["burst"] = 2
    assert parse_problem(doc).arrivals("det") == Arrivals("periodic", 500.0)
    assert parse_problem(doc).with_overrides(throughput=8.0).arrivals("det") == Arrivals("periodic", 250.0)
    cam["arrivals"] = "poisson"
    assert parse_problem(doc).arrivals("det") == Arrivals("poisson")
    for key, value, msg in (("arrivals", "bursty", "dataflow.operators\\[0\\].arrivals: expected one of periodic, poisson"),
                            ("burst", 0, "dataflow.operators\\[0\\].burst: must be an integer >= 1")):
        bad = copy.deepcopy(doc)
        bad["dataflow"]["operators"][0][key] = value
        with pytest.raises(ProblemError, match=msg):
            parse_problem(bad)
    bad = copy.deepcopy(doc)
    bad["latency_model"] = {"service_cv": -1}
    with pytest.raises(ProblemError, match="latency_model.service_cv: must be >= 0"):
        parse_problem(bad)


def _doc(seed: int = 0) -> dict:
    """One Poisson source on the edge, one operator with a fast cloud and a slow cheap edge variant."""
    return {
        "problem": "tiny",
        "workers": [{"name": "e1", "tier": 0, "cost_per_hour": 0.1}, {"name": "e2", "tier": 0, "cost_per_hour": 0.1},
                    {"name": "c1", "tier": 1, "cost_per_hour": 1.0}],
        "dataflow": {"operators": [{"name": "cam", "kind": "source", "injection_rate_per_s": 4.0, "arrivals": "poisson"},
                                   {"name": "det", "kind": "ml_operator", "input_operators": ["cam"],
                                    "variants": ["small"]}],
                     "edges": [{"from": "cam", "to": "det", "message_size_kb_by_variant": [
                         {"from_variant": "default", "to_variant": "default", "message_size_kb": 64.0}]}]},
        "execution_latency_ms": {"det": {"small": {"e1": 200.0, "e2": 200.0, "c1": 40.0}}},
        "execution_latency_ms_by_batch": {"det": {"small": {"e1": {"1": 200.0, "4": 150.0},
                                                            "e2": {"1": 200.0, "4": 150.0},
                                                            "c1": {"1": 40.0, "4": 20.0}}}},
        "links": {"tier_cost_per_gb": [[0.0, 0.1], [9.0, 0.0]], "tier_bandwidth_mbps": [[None, 40.0], [40.0, None]],
                  "tier_rtt_ms": [[0.0, 30.0], [30.0, 0.0]]},
        "accuracy": {"threshold": 0.0, "per_operator_profiles": [
            {"operator": "det", "variants": {"small": {"samples": [{"output_accuracy": 50.0}]}}}]},
    }


def test_problem_fields_and_overrides():
    doc = _doc()
    doc["latency_slo_ms"] = 900
    doc["latency_slo_percentile"] = "p95"
    p = parse_problem(doc)
    assert p.slo.ms == 900 and p.slo.percentile == 0.95
    assert p.batch_options("det") == [BatchSetting(1, 0.0), BatchSetting(4, 0.0)]
    assert p.service_ms("det", "small", BatchSetting(4, 0.0))[2] == 20.0
    q = p.with_overrides(slo_ms=300)
    assert q.slo.ms == 300 and q.slo.percentile == 0.95 and p.slo.ms == 900
    for key, value, msg in (("latency_slo_percentile", "p90", "latency_slo_percentile: expected one of p95, p99"),
                            ("latency_slo_ms", -1, "latency_slo_ms: must be > 0")):
        bad = copy.deepcopy(doc)
        bad[key] = value
        with pytest.raises(ProblemError, match=msg):
            parse_problem(bad)
    bad = copy.deepcopy(doc)
    bad["execution_latency_ms_by_batch"]["det"]["small"]["x9"] = {"1": 3.0}
    with pytest.raises(ProblemError, match=r"execution_latency_ms_by_batch.det.small.x9: no such worker 'x9'"):
        parse_problem(bad)


def test_the_slo_moves_the_plan_to_faster_workers_and_costs_more():
    loose = plan(parse_problem(_doc()).with_overrides(slo_ms=5000), "exact")
    tight = plan(parse_problem(_doc()).with_overrides(slo_ms=300), "exact")
    assert set(loose.assignment.placement["det"]) <= {"e1", "e2"}
    assert "c1" in tight.assignment.placement["det"]
    assert tight.evaluation.total_cost > loose.evaluation.total_cost
    assert tight.evaluation.latency_bound.ms <= 300 + 1e-6
    doc = to_plan(parse_problem(_doc()).with_overrides(slo_ms=300), tight)
    det = next(o for o in doc["operators"] if o["name"] == "det")
    assert det["batch"] == tight.assignment.batch["det"].as_plan()
    assert doc["expected"]["latency"]["slo_ms"] == 300
    assert doc["expected"]["latency"]["predicted_ms"] <= 300
    with pytest.raises(InfeasibleError, match="below the fastest possible path"):
        plan(parse_problem(_doc()).with_overrides(slo_ms=60), "exact")


def test_the_cost_model_rejects_a_plan_above_the_slo():
    p = parse_problem(_doc()).with_overrides(slo_ms=400)
    a = Assignment({"det": "small"}, {"det": {"e1": 2.0, "e2": 2.0}}, batch={"det": BatchSetting(1, 0.0)})
    ev = evaluate(p, a)
    assert any(v.startswith("latency p99") and "above the SLO 400 ms" in v for v in ev.violations)
    # the same plan's latency by hand: e1 at rho 0.4, charged at level 0.4, batch 1, 200 ms service
    by_hand = path_latency(p, {"det": "small"}, {"det": BatchSetting(1, 0.0)}, {"det": {0: 0.4, 1: 0.4}}, 0.99)
    assert by_hand.ms == pytest.approx((md1_wait_quantile(0.4, 0.99) + 1) * 200.0)
    assert ev.latency_bound.ms == pytest.approx(by_hand.ms)


@SETTINGS
@given(small_problems(max_workers=5, slo=True))
def test_exact_equals_bruteforce_under_a_latency_slo(doc):
    problem = parse_problem(doc)
    found = {}
    for algo in ("bruteforce", "exact", "jellybean"):
        try:
            found[algo] = plan(problem, algo, time_limit=30)
        except InfeasibleError:
            found[algo] = None
    brute, exact, jelly = found["bruteforce"], found["exact"], found["jellybean"]
    assert (brute is None) == (exact is None)
    if exact is not None:
        assert exact.evaluation.total_cost == pytest.approx(brute.evaluation.total_cost, rel=1e-6, abs=1e-9)
        assert exact.evaluation.latency_bound.ms <= problem.slo.ms * (1 + 1e-6)
        assert jelly is None or jelly.evaluation.total_cost >= exact.evaluation.total_cost - 1e-6


@SETTINGS
@given(small_problems(max_workers=5, slo=True, twins=True))
def test_exact_equals_bruteforce_under_a_latency_slo_with_price_ladders(doc):
    """The level staircase on worker types that mix prices (one budget per operator without delays)."""
    problem = parse_problem(doc)
    found = {}
    for algo in ("bruteforce", "exact"):
        try:
            found[algo] = plan(problem, algo, time_limit=30)
        except InfeasibleError:
            found[algo] = None
    assert (found["bruteforce"] is None) == (found["exact"] is None)
    if found["exact"] is not None:
        assert found["exact"].evaluation.total_cost == pytest.approx(found["bruteforce"].evaluation.total_cost,
                                                                     rel=1e-6, abs=1e-9)


@SETTINGS
@given(small_problems(max_workers=6, slo=True))
def test_a_tighter_slo_never_costs_less(doc):
    costs = []
    for slo in (5000.0, 1500.0, 600.0):
        try:
            costs.append(plan(parse_problem(doc).with_overrides(slo_ms=slo), "exact", 30).evaluation.total_cost)
        except InfeasibleError:
            break
    assert costs == sorted(costs) or np.allclose(costs, sorted(costs))


def test_cli_exit_3_names_what_binds(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(_doc()))
    run = subprocess.run([sys.executable, "-m", "streamflow_planner.cli", str(path), "--slo-ms", "60", "-o",
                          str(tmp_path / "plan.json")], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 3
    assert run.stderr.strip().splitlines() == [
        run.stderr.strip()] and run.stderr.startswith("error: the p99 latency SLO of 60 ms is below the fastest")
    run = subprocess.run([sys.executable, "-m", "streamflow_planner.cli", str(path), "--slo-ms", "400", "--slo-percentile",
                          "p95", "-o", str(tmp_path / "plan.json")], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    written = json.loads((tmp_path / "plan.json").read_text())
    assert written["expected"]["latency"]["percentile"] == "p95"
    assert written["operators"][0]["batch"]["max_size"] in (1, 4)


def test_charged_latency_never_falls_as_the_load_rises():
    """Planners charge a worker at a level above its load; the charge must not undercut it."""
    doc = _doc()
    del doc["dataflow"]["operators"][0]["arrivals"]
    doc["dataflow"]["operators"][0]["burst"] = 3
    doc["latency_model"] = {"utilization_levels": [u / 20 for u in range(1, 20)], "service_cv": 0.2}
    p = parse_problem(doc)
    for w in range(3):
        ms = float(p.service_ms("det", "small")[w])
        got = [op_worker_ms(p, "det", w, ms, BatchSetting(1, 0.0), u, 0.99) for u in p.levels()]
        assert got == sorted(got)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.5, 40.0),
       st.lists(st.tuples(st.floats(0.0, 3.0), st.floats(0.5, 20.0), st.integers(0, 3)), min_size=1, max_size=3))
def test_least_cover_is_the_cheapest_whole_worker_cover(rate, items):
    """The budget cost rows of `exact` rest on least_cover: it must equal enumerating every count
    (a cover short of the rate by HiGHS's tolerance, 1e-6 of it, may count: never more)."""
    def cheapest(target: float) -> float:
        return min((sum(k * p for k, (p, _cap, _c) in zip(counts, items))
                    for counts in itertools.product(*[range(c + 1) for _p, _c, c in items])
                    if sum(k * cap for k, (_p, cap, _c) in zip(counts, items)) >= target), default=math.inf)

    got = least_cover(rate, items)
    assert cheapest(rate - 1e-6 * max(1.0, rate)) - 1e-12 <= got <= cheapest(rate) + 1e-12
