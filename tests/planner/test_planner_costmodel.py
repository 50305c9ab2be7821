"""The independent cost model on hand-computed cases."""

from __future__ import annotations

import pytest

from streamflow_planner.accuracy import accuracy_of, feasible_combinations, operator_accuracy
from streamflow_planner.costmodel import Assignment, evaluate
from streamflow_planner.problem import GB_PER_HOUR_PER_KB_PER_S as GB, load_problem, parse_problem
from planner_instances import VQA_MEDIUM


def _two_tier_chain() -> dict:
    workers = [{"name": "e1", "tier": 0, "cost_per_hour": 1.0}, {"name": "e2", "tier": 0, "cost_per_hour": 1.0},
               {"name": "c1", "tier": 1, "cost_per_hour": 2.0}, {"name": "c2", "tier": 1, "cost_per_hour": 2.0}]
    lat = {o: {"v": {w["name"]: 100.0 for w in workers}} for o in ("a", "b")}
    size = lambda u, v, kb: [{"from_variant": u, "to_variant": v, "message_size_kb": kb}]
    return {
        "workers": workers,
        "dataflow": {"operators": [{"name": "s", "kind": "source", "injection_rate_per_s": 10.0},
                                   {"name": "a", "kind": "ml_operator", "input_operators": ["s"], "variants": ["v"]},
                                   {"name": "b", "kind": "ml_operator", "input_operators": ["a"], "variants": ["v"]}],
                     "edges": [{"from": "s", "to": "a", "message_size_kb_by_variant": size("default", "v", 100.0)},
                               {"from": "a", "to": "b", "message_size_kb_by_variant": size("v", "v", 1000.0)}]},
        "execution_latency_ms": lat,
        "links": {"comm_cost_scaling_factor": 1.0, "tier_cost_per_gb": [[0.0, 2.0], [10.0, 0.0]]},
        "accuracy": {"threshold": 0.0, "end_to_end_operators": ["a"], "end_to_end_table": [{"a": "v", "end_to_end_accuracy": 1.0}]},
    }


def test_product_of_rates_traffic_is_priced_between_tiers():
    p = parse_problem(_two_tier_chain())
    # a: 4/s on e1 and 6/s on c1; b: 10/s on c2 (capacity 10/s each)
    a = Assignment({"a": "v", "b": "v"}, {"a": {"e1": 4.0, "c1": 6.0}, "b": {"c2": 10.0}})
    ev = evaluate(p, a)
    assert ev.feasible, ev.violations
    assert ev.compute_cost == pytest.approx(1.0 + 2.0 + 2.0)
    source = 6.0 * 100.0 * 2.0 * GB            # c1 receives 6/s of 100 KB from the tier-0 source
    forward = 4.0 * 10.0 * 1000.0 / 10.0 * 2.0 * GB   # e1 -> c2
    assert ev.communication_cost == pytest.approx(source + forward)


def test_backward_traffic_and_capacity_are_violations():
    p = parse_problem(_two_tier_chain())
    a = Assignment({"a": "v", "b": "v"}, {"a": {"c1": 10.0}, "b": {"e1": 10.0}})
    assert any("lower-tier" in v for v in evaluate(p, a).violations)
    a = Assignment({"a": "v", "b": "v"}, {"a": {"e1": 10.5}, "b": {"e2": 10.0}})
    bad = evaluate(p, a).violations
    assert any("exceeds its capacity" in v for v in bad) and any("add up to" in v for v in bad)
    a = Assignment({"a": "v", "b": "v"}, {"a": {"e1": 10.0}, "b": {"e1": 10.0}})
    assert any("serves both" in v for v in evaluate(p, a).violations)


def test_routes_replace_proportional_traffic_and_must_balance():
    p = parse_problem(_two_tier_chain())
    placement = {"a": {"e1": 5.0, "c1": 5.0}, "b": {"e2": 5.0, "c2": 5.0}}
    proportional = evaluate(p, Assignment({"a": "v", "b": "v"}, placement))
    assert not proportional.feasible          # c1 -> e2 goes down a tier
    routed = Assignment({"a": "v", "b": "v"}, placement,
                        {("a", "b"): {"e1": {"e2": 5.0}, "c1": {"c2": 5.0}}})
    ev = evaluate(p, routed)
    assert ev.feasible and ev.communication_cost == pytest.approx(5.0 * 100.0 * 2.0 * GB)
    unbalanced = Assignment({"a": "v", "b": "v"}, placement, {("a", "b"): {"e1": {"e2": 4.0}, "c1": {"c2": 5.0}}})
    assert any("routes" in v or "routed" in v for v in evaluate(p, unbalanced).violations)


def test_monotone_profile_lower_envelope():
    samples = (((1.0, 1.0), 10.0), ((2.0, 1.0), 12.0), ((2.0, 2.0), 15.0))
    assert operator_accuracy(samples, (2.0, 2.0)) == 15.0
    assert operator_accuracy(samples, (2.5, 1.5)) == 12.0
    assert operator_accuracy(samples, (0.5, 3.0)) == float("-inf")


@pytest.mark.skipif(not VQA_MEDIUM.exists(), reason=f"shared data absent: {VQA_MEDIUM}")
def test_vqa_medium_accuracy_table_and_propagation_agree():
    p = load_problem(VQA_MEDIUM)
    combos = feasible_combinations(p)
    assert len(combos) == 5
    p.end_to_end = None          # force propagation through the per-operator profiles
    for c in combos:
        assert accuracy_of(p, c.variants) == c.accuracy


def test_link_bandwidth_limits_traffic_between_tiers():
    """10/s of 100 KB from the edge source is 1000 KB/s; a 4 Mbit/s link (488 KB/s) cannot take it."""
    doc = _two_tier_chain()
    doc["links"]["tier_bandwidth_mbps"] = [[None, 4.0], [None, None]]
    p = parse_problem(doc)
    assert p.link_bandwidth(0, 1) == pytest.approx(4e6 / 8 / 1024)
    ev = evaluate(p, Assignment({"a": "v", "b": "v"}, {"a": {"c1": 10.0}, "b": {"c2": 10.0}}))
    assert ev.link_traffic_kb_s == {(0, 1): pytest.approx(1000.0)}
    assert ev.violations == ["link edge->cloud: 1000.0 KB/s exceeds its bandwidth 488.3 KB/s"]
    # a on the edge, b in the cloud: 10/s x 1000 KB also crosses; a and b on the edge: nothing does
    assert evaluate(p, Assignment({"a": "v", "b": "v"}, {"a": {"e1": 10.0}, "b": {"e2": 10.0}})).feasible


def test_bandwidth_fields_are_optional_and_checked():
    doc = _two_tier_chain()
    assert parse_problem(doc).bandwidth_kb_s is None and not parse_problem(doc).has_bandwidth
    doc["links"]["tier_bandwidth_mbps"] = [[None, 0], [None, None]]
    with pytest.raises(Exception, match=r"links.tier_bandwidth_mbps\[0\]\[1\]: must be > 0"):
        parse_problem(doc)
    doc["links"]["tier_bandwidth_mbps"] = [[None, 5.0], [None, None]]
    doc["links"]["tier_rtt_ms"] = [[0, 30], [30, 0]]
    assert parse_problem(doc).rtt_ms[0, 1] == 30


def test_utilization_keeps_headroom_on_every_worker():
    p = parse_problem(_two_tier_chain())
    assert p.capacity("a", "v")[0] == pytest.approx(10.0)
    q = p.with_overrides(utilization=0.8)
    assert q.capacity("a", "v")[0] == pytest.approx(8.0) and p.capacity("a", "v")[0] == pytest.approx(10.0)
    full = Assignment({"a": "v", "b": "v"}, {"a": {"e1": 10.0}, "b": {"e2": 10.0}})
    assert evaluate(p, full).feasible and not evaluate(q, full).feasible
    with pytest.raises(Exception, match="utilization must be in"):
        p.with_overrides(utilization=1.5)
