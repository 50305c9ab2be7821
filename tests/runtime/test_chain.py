"""Operator chaining and source buffers: same output and same counters as unchained runs, the
failing member named, and a chain never crossing a branch, a second input or a record check."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamflow.operators as op
from streamflow import Dataflow
from streamflow.dataflow.chain import ChainHandler, chains
from streamflow.errors import OperatorError, StreamflowError


def build(steps: list[tuple[str, int]], n: int, batch_size: int, per_epoch: int) -> tuple[Dataflow, list]:
    flow = Dataflow("chain")
    s = op.source("inp", flow, range(n), batch_size=batch_size, epoch_of=lambda x: x // per_epoch)
    for kind, k in steps:
        if kind == "map":
            s = s.map(lambda x, k=k: x * k + 1)
        elif kind == "filter":
            s = s.filter(lambda x, k=k: x % k != 0)
        else:
            s = s.flat_map(lambda x, k=k: [x] * (x % k))
    return flow, op.collect("out", s)


def counters(worker) -> dict[str, tuple[int, int, int]]:  # noqa: ANN001
    return {s.name: (s.stats.batches > 0, s.stats.records, s.stats.records_out) for s in worker.ordered}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["map", "filter", "flat_map"]), st.integers(2, 5)), min_size=1, max_size=6),
       st.integers(0, 300), st.sampled_from([1, 7, 100]), st.sampled_from([1, 10, 1000]))
def test_chained_equals_unchained(steps, n, batch_size, per_epoch) -> None:  # noqa: ANN001
    flow, out = build(steps, n, batch_size, per_epoch)
    chained = flow.run()
    flow2, out2 = build(steps, n, batch_size, per_epoch)
    plain = flow2.run(chaining=False)
    assert sorted(out) == sorted(out2)
    assert counters(chained) == counters(plain)


def test_chains_split_at_second_count_change_and_at_branches() -> None:
    flow = Dataflow("c")
    s = op.source("inp", flow, range(10))
    a = s.map(lambda x: x, name="a").filter(lambda x: True, name="b").map(lambda x: x, name="c")
    d = a.filter(lambda x: True, name="d").map(lambda x: x, name="e")
    op.collect("out1", d.map(lambda x: x, name="f"))
    op.collect("out2", d.map(lambda x: x, name="g"))  # e branches: it ends a chain
    worker = flow.worker()
    assert [[m.name for m in c] for c in chains(worker)] == [["a", "b", "c"], ["d", "e"]]
    assert isinstance(worker.slots[worker.graph.index("a")].handlers[0], ChainHandler)


def test_no_chain_into_a_join_or_across_a_hash_edge() -> None:
    flow = Dataflow("c")
    s = op.source("inp", flow, range(10))
    left = s.map(lambda x: x, name="m1")
    op.collect("out", op.join("j", left, s.map(lambda x: x, name="m2"), left_key=lambda x: x))
    op.collect("out2", s.map(lambda x: x, name="m3").key_by(lambda x: x).map(lambda x: x, name="m4"))
    assert chains(flow.worker()) == []


def test_failing_member_is_named() -> None:
    def bad(x: int) -> bool:
        if x == 57:
            raise ValueError("bad record")
        return True
    flow = Dataflow("c")
    s = op.source("inp", flow, range(100), batch_size=10)
    op.collect("out", s.map(lambda x: x + 1, name="inc").filter(bad, name="check"))
    with pytest.raises(OperatorError, match=r"operator 'check' failed at epoch 5: ValueError\('bad record'\)"):
        flow.run()


def test_source_buffers_keep_epochs_and_never_touch_the_callers_lists() -> None:
    given_batches = [(e // 3, [e]) for e in range(30)]  # 3 single-record batches per epoch
    seen: list[tuple[int, list]] = []
    flow = Dataflow("b")
    s = op.source_batches("inp", flow, given_batches)
    op.sink("out", s, lambda e, b: seen.append((e, list(b))))
    flow.run()
    assert seen == [(e, [3 * e, 3 * e + 1, 3 * e + 2]) for e in range(10)]
    assert given_batches == [(e // 3, [e]) for e in range(30)]


def test_source_buffer_is_capped() -> None:
    sizes: list[int] = []
    flow = Dataflow("b")
    s = op.source("inp", flow, range(5000), batch_size=1, epoch_of=lambda x: 0)
    op.sink("out", s, lambda e, b: sizes.append(len(b)))
    flow.run()
    assert sum(sizes) == 5000 and max(sizes) == 1024


def test_checked_intermediate_refused_as_without_a_chain() -> None:
    """With record checks on (plans), a chained member's output is checked where it would be."""
    def run(chaining: bool) -> str:
        flow = Dataflow("c")
        s = op.source("inp", flow, range(20), batch_size=5)
        op.collect("out", s.map(lambda x: object() if x == 12 else x, name="bad").filter(lambda x: False, name="drop"))
        with pytest.raises(StreamflowError) as info:
            flow.run(check_records=True, chaining=chaining)
        return str(info.value)
    assert chains(Dataflow("x").worker()) == []
    assert run(True) == run(False)
    assert "operator 'bad' emitted at epoch 2" in run(True)
