"""Join and aggregate equal a plain-Python reference on random inputs, including empty epochs
and keys present on one side only."""
from __future__ import annotations

import heapq
from collections import Counter, defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamflow.operators as op
from streamflow import Dataflow

# (epoch, batch) items; epochs non-decreasing; empty batches stand for empty epochs
records = st.lists(st.tuples(st.integers(0, 4), st.integers(-20, 20)), max_size=12)


@st.composite
def epoch_stream(draw, max_epochs: int = 8):
    items, epoch, seq = [], 0, 0
    for _ in range(draw(st.integers(0, max_epochs))):
        epoch += draw(st.integers(0, 2))
        batch = [(k, v, seq + i) for i, (k, v) in enumerate(draw(records))]
        seq += len(batch)
        items.append((epoch, batch))
    return items


def join_reference(left, right, window, how):
    out = Counter()
    lrows = [(e, r) for e, b in left for r in b]
    rrows = [(e, r) for e, b in right for r in b]
    lmatched, rmatched = set(), set()
    for el, l in lrows:
        for er, r in rrows:
            if l[0] == r[0] and el // window == er // window:
                out[(max(el, er), (l, r))] += 1
                lmatched.add(l)
                rmatched.add(r)
    end = lambda e: (e // window + 1) * window - 1  # noqa: E731
    if how in ("left", "outer"):
        out.update((end(e), (l, None)) for e, l in lrows if l not in lmatched)
    if how in ("right", "outer"):
        out.update((end(e), (None, r)) for e, r in rrows if r not in rmatched)
    return out


@settings(max_examples=120, deadline=None)
@given(epoch_stream(), epoch_stream(), st.integers(1, 3), st.sampled_from(["inner", "left", "right", "outer"]))
def test_join_equals_reference(left, right, window, how) -> None:
    flow = Dataflow()
    l = op.source_batches("l", flow, left)
    r = op.source_batches("r", flow, right)
    out = op.join("j", l, r, left_key=lambda x: x[0], window=window, how=how).collect()
    flow.run()
    assert Counter(out) == join_reference(left, right, window, how)


def aggregate_reference(items, agg, window, k):
    groups = defaultdict(list)
    for e, batch in items:
        for key, value, _seq in batch:
            groups[(e // window, key)].append(value)
    out = Counter()
    for (w, key), values in groups.items():
        result = {"count": len(values), "sum": sum(values), "mean": sum(values) / len(values),
                  "min": min(values), "max": max(values),
                  "topk": tuple(heapq.nlargest(k, values)), "distinct": len(set(values))}[agg]
        out[((w + 1) * window - 1, (key, result))] += 1
    return out


@settings(max_examples=120, deadline=None)
@given(epoch_stream(), st.sampled_from(["count", "sum", "mean", "min", "max", "topk", "distinct"]),
       st.integers(1, 4), st.integers(1, 3))
def test_aggregate_equals_reference(items, agg, window, k) -> None:
    flow = Dataflow()
    src = op.source_batches("s", flow, items)
    value = None if agg == "count" else (lambda r: r[1])
    out = op.aggregate("a", src, key=lambda r: r[0], agg=agg, value=value, window=window, k=k).collect()
    flow.run()
    got = Counter((e, (key, tuple(v) if isinstance(v, list) else v)) for e, (key, v) in out)
    want = aggregate_reference(items, agg, window, k)
    if agg == "mean":
        got = Counter({(e, (key, round(v, 9))): n for (e, (key, v)), n in got.items()})
        want = Counter({(e, (key, round(v, 9))): n for (e, (key, v)), n in want.items()})
    assert got == want


def test_aggregate_results_arrive_at_window_end_only() -> None:
    flow = Dataflow()
    src = op.source_batches("s", flow, [(0, ["a"]), (1, ["a", "b"]), (2, []), (5, ["b"])])
    out = src.count(key=lambda x: x, window=2).collect()
    flow.run()
    assert sorted(out) == [(1, ("a", 2)), (1, ("b", 1)), (5, ("b", 1))]


def test_join_rejects_bad_arguments() -> None:
    flow = Dataflow()
    s = op.source_batches("s", flow, [])
    j = op.join("j", s, s.map(lambda x: x), left_key=lambda x: x, how="sideways")
    j.collect()
    with pytest.raises(Exception, match="how='sideways'"):
        flow.run()
