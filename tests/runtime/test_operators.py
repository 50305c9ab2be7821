"""The stateless operators, sinks and the Python API behave as documented."""
from __future__ import annotations

import asyncio
import json
import time

import numpy as np

import streamflow.operators as op
from streamflow import Dataflow, Operator


def test_map_filter_flat_map_project_inspect() -> None:
    flow = Dataflow()
    src = op.source("s", flow, [{"a": i, "b": -i} for i in range(7)], batch_size=3)
    seen = []
    out = (src.inspect(lambda e, r: seen.append((e, r["a"])))
              .map(lambda r: {**r, "c": r["a"] * 10})
              .filter(lambda r: r["a"] % 2 == 0)
              .project(["a", "c"])
              .flat_map(lambda r: [r, r])
              .collect())
    flow.run()
    assert out == [(e, {"a": a, "c": a * 10}) for a in (0, 2, 4, 6) for e in [a // 3] * 2]
    assert seen == [(i // 3, i) for i in range(7)]


def test_union_and_exchange() -> None:
    flow = Dataflow()
    a = op.source("a", flow, range(5), batch_size=2)
    b = op.source("b", flow, range(10, 13), batch_size=2)
    out = a.union(b).exchange(key=lambda x: x % 3).collect()
    flow.run()
    assert sorted(r for _e, r in out) == [0, 1, 2, 3, 4, 10, 11, 12]


def test_source_epoch_of_splits_batches_and_rejects_going_back() -> None:
    flow = Dataflow()
    out = op.source("s", flow, [0, 1, 1, 2, 7, 7], batch_size=4, epoch_of=lambda x: x // 2).collect()
    flow.run()
    assert out == [(0, 0), (0, 1), (0, 1), (1, 2), (3, 7), (3, 7)]
    flow = Dataflow()
    op.source("s", flow, [4, 1], epoch_of=lambda x: x).collect()
    try:
        flow.run()
    except Exception as exc:
        assert "non-decreasing" in str(exc)
    else:
        raise AssertionError("a source going back in epochs must fail")


def test_map_batch_carries_numpy_blocks() -> None:
    flow = Dataflow()
    src = op.source_batches("s", flow, [(0, np.arange(4)), (1, np.arange(3))])
    out = []
    op.sink("k", src.map_batch(lambda b: b * 2), lambda e, b: out.append((e, b.tolist())))
    flow.run()
    assert out == [(0, [0, 2, 4, 6]), (1, [0, 2, 4])]


def test_jsonl_sink_writes_and_flushes_per_epoch(tmp_path) -> None:
    path = tmp_path / "out" / "r.jsonl"
    flow = Dataflow()
    src = op.source("s", flow, [{"x": i, "v": np.float32(0.5)} for i in range(4)], batch_size=2)
    src.sink_jsonl(path)
    flow.run()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [{"epoch": i // 2, "x": i, "v": 0.5} for i in range(4)]


def test_callback_sink_sees_epochs_complete_in_order() -> None:
    flow = Dataflow()
    src = op.source("s", flow, range(6), batch_size=2)
    done = []
    src.sink(lambda e, b: None, on_epoch=done.append)
    flow.run()
    assert done == [0, 1, 2]


def test_async_source_paced_by_an_async_iterator() -> None:
    async def ticks():
        for e in range(3):
            await asyncio.sleep(0.01)
            yield e, [e]

    flow = Dataflow()
    out = op.source_async("t", flow, ticks()).map(lambda x: x * 3).collect()
    t = time.perf_counter()
    flow.run()
    assert out == [(0, 0), (1, 3), (2, 6)]
    assert time.perf_counter() - t >= 0.02


class SlowSquare(Operator):
    """Computes off the event loop, emitting later with a retained capability."""

    def on_batch(self, epoch, batch, output) -> None:
        cap = self.ctx.retain()
        future = self.ctx.run_in_executor(lambda b=list(batch): [x * x for x in b])

        def done(f) -> None:
            output.give(f.result(), cap.epoch)
            cap.drop()
        future.add_done_callback(done)


def test_executor_work_holds_its_epoch_until_it_emits() -> None:
    flow = Dataflow()
    src = op.source("s", flow, range(6), batch_size=2)
    squares = flow.add("sq", "sq", SlowSquare, [src])
    counts = squares.count(key=lambda x: x % 2).collect()
    flow.run()
    assert sorted(counts) == [(0, (0, 1)), (0, (1, 1)), (1, (0, 1)), (1, (1, 1)), (2, (0, 1)), (2, (1, 1))]
