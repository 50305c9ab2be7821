"""The latency model's CPU quota clock (streamflow_planner/quota.py): against a tick-by-tick CFS
simulation, its two regimes (an idle worker runs at the core's speed, a busy one at the quota's),
and its place in the periodic-burst model and the problem format."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamflow_planner.errors import ProblemError
from streamflow_planner.latency import op_worker_ms, periodic_quantile, prefetch
from streamflow_planner.problem import parse_problem
from streamflow_planner import quota
from streamflow_planner.quota import QuotaCase, quota_departures, quota_quantile, quota_quantiles
from planner_instances import REPO

TICK = 0.05   # ms


def _ticks(arrive: list[float], work: list[float], budget: float, period: float, offset: float) -> list[float]:
    """The CFS rule one tick at a time: the worker runs its oldest waiting batch while its
    period's budget lasts, the budget refills at every period start, batches run in order."""
    arrive_t = [round(a / TICK) for a in arrive]
    left_work = [round(w / TICK) for w in work]
    budget_t, period_t, offset_t = round(budget / TICK), round(period / TICK), round(offset / TICK)
    out: list[float] = []
    i, left, t = 0, budget_t, 0
    while i < len(arrive_t):
        if (t - offset_t) % period_t == 0:
            left = budget_t
        if arrive_t[i] <= t and left > 0:
            left -= 1
            left_work[i] -= 1
            if left_work[i] == 0:
                out.append((t + 1) * TICK)
                i += 1
        t += 1
    return out


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(1, 1200)), min_size=1, max_size=12),
       st.sampled_from([0.25, 0.5, 0.75]), st.integers(0, 99))
def test_quota_clock_matches_a_tick_by_tick_simulation(batches, cpus, offset):
    arrive, work = [], []
    t = 0.0
    for gap, w in batches:
        t += gap
        arrive.append(float(t))
        work.append(w * TICK)
    got = quota_departures(arrive, work, cpus * 100.0, 100.0, float(offset))
    assert got == pytest.approx(_ticks(arrive, work, cpus * 100.0, 100.0, float(offset)), abs=1e-6)


def test_an_idle_worker_runs_at_the_cores_speed_and_a_long_request_waits_out_periods():
    # 0.25 core: 25 ms of CPU in every 100 ms
    assert quota_departures([10.0], [20.0], 25.0, 100.0, 0.0) == pytest.approx([30.0])
    assert quota_departures([0.0], [35.0], 25.0, 100.0, 0.0) == pytest.approx([110.0])   # throttled 25..100
    assert quota_departures([80.0], [35.0], 25.0, 100.0, 0.0) == pytest.approx([115.0])  # a new budget at 100
    # budget spent earlier in the period is gone: the second request waits for the next period
    assert quota_departures([0.0, 50.0], [25.0, 10.0], 25.0, 100.0, 0.0) == pytest.approx([25.0, 110.0])


def test_a_busy_worker_runs_at_the_quotas_rate():
    work = [30.0] * 200                      # 6 s of CPU at 0.25 core: 24 s of wall time
    leave = quota_departures([0.0] * 200, work, 25.0, 100.0, 0.0)
    assert leave[-1] == pytest.approx(sum(work) / 0.25 - 75.0)   # the last period ends its work after 25 ms


def test_periodic_quantile_under_a_quota():
    period = 331.2
    # 80 ms profiled on a 0.25-core host is 20 ms of CPU: within one period's budget, an idle
    # worker serves it at the core's speed wherever the period starts
    assert periodic_quantile(80.0, 1, 2.0 * 80 / 1000, period, 0.99, 0.0, 0.0, 0.25, 100.0) == pytest.approx(20.0)
    # 109 ms is 27.25 ms of CPU, more than the 25 ms budget: most requests wait out a period's end
    ms = 109.0
    light = [periodic_quantile(ms, 1, 2.0 * ms / 1000, period, p, 0.0, 0.0, 0.25, 100.0) for p in (0.5, 0.99)]
    assert light[0] < 0.6 * ms and 27.25 <= light[0]
    assert light[1] == pytest.approx(102.25, abs=1.0)       # started at a period's start: 25 + 75 + 2.25
    # a whole core or more: the quota never throttles one thread, the model is the quota-free one
    for cpus in (1.0, 2.0):
        assert periodic_quantile(ms, 1, 0.6, period, 0.99, 0.3, 8.0, cpus, 100.0) == \
            periodic_quantile(ms, 1, 0.6, period, 0.99, 0.3, 8.0)
    # at the quota's sustained rate the queue is what the quota-free model says, give or take a period
    busy = periodic_quantile(ms, 4, 0.9, period, 0.99, 0.0, 0.0, 0.25, 100.0)
    plain = periodic_quantile(ms, 4, 0.9, period, 0.99)
    assert abs(busy - plain) <= 100.0


def _doc() -> dict:
    return json.loads((REPO / "examples" / "traffic" / "problem.json").read_text())


def test_cpus_and_the_quota_period_are_read_and_checked():
    doc = _doc()
    problem = parse_problem(doc)
    assert [w.cpus for w in problem.workers] == [0.25, 0.25, 0.25, 0.5, 1.0]
    assert problem.latency_model.quota_period_ms == 100.0
    doc["workers"][0]["cpus"] = 0
    with pytest.raises(ProblemError, match=r"workers\[0\]\.cpus"):
        parse_problem(doc)
    doc = _doc()
    doc["latency_model"]["quota_period_ms"] = -5
    with pytest.raises(ProblemError, match="quota_period_ms"):
        parse_problem(doc)
    del doc["latency_model"]["quota_period_ms"]
    for w in doc["workers"]:
        del w["cpus"]
    assert all(w.cpus is None for w in parse_problem(doc).workers)


def test_many_cases_stepped_together_give_each_cases_own_answer():
    """quota_quantiles (numpy, every lane of every case at once) against quota_quantile (plain
    Python, one case): the same numbers, also for long lanes, overloaded and idle workers."""
    cases = [QuotaCase(ms, size, rho, period, p, cv, 8.0, cpus, 100.0)
             for ms, size, rho, period, p, cv, cpus in [
                 (109.0, 1, 0.2, 331.2, 0.99, 0.3, 0.25), (55.3, 4, 0.36, 331.2, 0.95, 0.2, 0.5),
                 (140.6, 1, 0.85, 331.2, 0.99, 0.3, 0.25), (30.0, 2, 0.75, 1000.0, 0.99, 0.0, 0.25),
                 (4.0, 1, 0.95, 331.2, 0.99, 0.3, 0.5),     # ~80 records a burst: one long lane
                 (20.0, 1, 0.99, 331.2, 0.99, 0.0, 0.25),   # over capacity with the overhead: inf
                 (20.0, 1, 0.0, 331.2, 0.99, 0.0, 0.25)]]   # no load: one request's CPU work
    together = quota_quantiles(cases)
    quota._answers.clear()
    alone = [quota_quantile(c) for c in cases]
    assert together == alone
    assert together[5] == math.inf and together[6] == pytest.approx(28.0 * 0.25)


def test_prefetch_answers_every_quota_case_the_planners_ask_for():
    problem = parse_problem(_doc()).with_overrides(slo_ms=250.0)
    quota._answers.clear()
    periodic_quantile.cache_clear()
    prefetch(problem)
    known = set(quota._answers)
    assert len(known) > 100
    for op, spec in problem.operators.items():
        for k in spec.variants:
            for bs in problem.batch_options(op):
                for w in problem.workers:
                    for u in problem.levels():
                        op_worker_ms(problem, op, w.index, float(problem.service_ms(op, k, bs)[w.index]), bs, u,
                                     problem.slo.percentile)
    assert set(quota._answers) == known            # nothing was left for plain Python
