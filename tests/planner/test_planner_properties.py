"""Property tests on random small instances: exact == bruteforce, every plan feasible, jellybean >= exact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from streamflow_planner.costmodel import evaluate
from streamflow_planner.errors import InfeasibleError, UnsupportedError
from streamflow_planner.groups import build_groups
from streamflow_planner.planning import ALGORITHMS, plan
from streamflow_planner.problem import parse_problem
from planner_instances import small_problems
from tools.gen_problems import generate_problem

SETTINGS = settings(max_examples=int(__import__("os").environ.get("PLANNER_EXAMPLES", "40")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _solve(problem, algo):
    try:
        return plan(problem, algo, time_limit=30)
    except InfeasibleError:
        return None


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def _exact_matches_bruteforce(doc):
    problem = parse_problem(doc)
    brute = _solve(problem, "bruteforce")
    exact = _solve(problem, "exact")
    assert (brute is None) == (exact is None)
    if exact is not None:
        assert _same(exact.evaluation.total_cost, brute.evaluation.total_cost)
    return exact


@SETTINGS
@given(small_problems())
def test_exact_equals_bruteforce(doc):
    exact = _exact_matches_bruteforce(doc)
    assert exact is None or exact.optimal


@SETTINGS
@given(small_problems(twins=True))
def test_exact_equals_bruteforce_with_price_ladders(doc):
    """Workers alike but for their price form one type whose cost is its cheapest members'."""
    exact = _exact_matches_bruteforce(doc)
    assert exact is None or exact.optimal


def test_workers_alike_but_for_price_form_one_type_cheapest_first():
    doc = generate_problem("vehicle", 30, 3, seed=0, rate=7.5, cameras=4)
    problem = parse_problem(doc)
    g = build_groups(problem)
    kinds = {(w.tier, tuple(np.nan_to_num(problem.latency_ms[o][k][w.index], nan=-1.0)
                            for o in problem.operators for k in problem.operators[o].variants))
             for w in problem.workers}
    assert g.num_types == len(kinds)
    for t, members in enumerate(g.type_members):
        prices = [float(problem.costs[w]) for w in members]
        assert prices == sorted(prices)
        assert sum(c for _p, c in g.price_steps(problem, t)) == len(members)
    assert any(len(g.price_steps(problem, t)) > 1 for t in range(g.num_types))


@SETTINGS
@given(small_problems(shapes=("chain", "pair"), per_pair_prices=True))
def test_exact_equals_bruteforce_with_per_pair_prices_on_free_edges(doc):
    _exact_matches_bruteforce(doc)


@SETTINGS
@given(small_problems(shapes=("chain", "pair"), bandwidth=True))
def test_exact_equals_bruteforce_under_link_bandwidth(doc):
    exact = _exact_matches_bruteforce(doc)
    assert exact is None or exact.optimal


@SETTINGS
@given(small_problems(bandwidth=True))
def test_every_plan_respects_link_bandwidth(doc):
    problem = parse_problem(doc)
    for algo in ALGORITHMS:
        try:
            result = plan(problem, algo, time_limit=30)
        except InfeasibleError:
            continue
        except UnsupportedError:
            assert algo == "bruteforce"
            continue
        ev = evaluate(problem, result.assignment)
        assert ev.feasible, (algo, ev.violations)
        for (p, q), kb in ev.link_traffic_kb_s.items():
            assert kb <= problem.link_bandwidth(p, q) * (1 + 1e-6) + 1e-6, (algo, p, q)


@SETTINGS
@given(small_problems())
def test_every_plan_is_feasible_and_jellybean_never_beats_exact(doc):
    problem = parse_problem(doc)
    exact = _solve(problem, "exact")
    for algo in ALGORITHMS:
        result = _solve(problem, algo)
        if result is None:
            continue
        ev = evaluate(problem, result.assignment)
        assert ev.feasible, (algo, ev.violations)
        assert _same(ev.total_cost, result.evaluation.total_cost)
        assert exact is not None, f"{algo} found a plan where exact proved none"
        assert ev.total_cost >= exact.evaluation.total_cost - 1e-6 * max(1.0, ev.total_cost), algo


@pytest.mark.parametrize("seed", range(3))
def test_exact_reports_a_gap_when_join_prices_are_not_potential_form(seed):
    """Per-pair prices on a join make the MILP a lower bound: the result says so honestly."""
    import random
    rng = random.Random(seed)
    workers = [{"name": f"w{i}", "tier": t, "cost_per_hour": 0.1} for i, t in enumerate([0, 0, 1, 1, 2, 2])]
    lat = {o: {"v": {w["name"]: 100.0 for w in workers}} for o in ("a", "b", "c")}
    doc = {
        "workers": workers,
        "dataflow": {"operators": [
            {"name": "s", "kind": "source", "injection_rate_per_s": 15.0},
            {"name": "a", "kind": "ml_operator", "input_operators": ["s"], "variants": ["v"]},
            {"name": "b", "kind": "ml_operator", "input_operators": ["s"], "variants": ["v"]},
            {"name": "c", "kind": "ml_operator", "input_operators": ["a", "b"], "variants": ["v"]}],
            "edges": [{"from": "s", "to": "a", "message_size_kb_by_variant": [{"from_variant": "default", "to_variant": "v", "message_size_kb": 1.0}]},
                      {"from": "s", "to": "b", "message_size_kb_by_variant": [{"from_variant": "default", "to_variant": "v", "message_size_kb": 1.0}]},
                      {"from": "a", "to": "c", "message_size_kb_by_variant": [{"from_variant": "v", "to_variant": "v", "message_size_kb": 5000.0}]},
                      {"from": "b", "to": "c", "message_size_kb_by_variant": [{"from_variant": "v", "to_variant": "v", "message_size_kb": 5000.0}]}]},
        "execution_latency_ms": lat,
        "links": {"worker_to_worker_cost_per_gb": [
            {"from_worker": a["name"], "to_worker": b["name"], "cost_per_gb": rng.choice([0.5, 5.0])}
            for a in workers for b in workers if b["tier"] > a["tier"]]},
        "accuracy": {"threshold": 0.0, "end_to_end_operators": ["a"], "end_to_end_table": [{"a": "v", "end_to_end_accuracy": 1.0}]},
    }
    result = plan(parse_problem(doc), "exact")
    assert result.evaluation.feasible
    assert result.gap is not None and result.gap >= 0.0
    if result.gap > 1e-6:
        assert not result.optimal
