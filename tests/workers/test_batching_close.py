"""A batching operator stops at close: an aborted generation's instance must not go on running
the batches it had queued beside the next generation's (streamflow_workers/operators/batching.py)."""
from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

from streamflow_workers.operators.batching import BatchingOperator


class Held(BatchingOperator):
    """Each batch waits until the test lets it finish; records the batches it ran."""

    def __init__(self) -> None:
        super().__init__(max_size=2, max_wait_ms=0)
        self.gate = threading.Event()
        self.ran: list[list[int]] = []

    def process(self, records: list[int]) -> list[int]:
        self.gate.wait(5)
        self.ran.append(list(records))
        return records


def context(loop: asyncio.AbstractEventLoop, given: list) -> SimpleNamespace:
    cap = SimpleNamespace(epoch=0, drop=lambda: None, downgrade=lambda e: None)
    return SimpleNamespace(retain=lambda e: SimpleNamespace(epoch=e, drop=cap.drop, downgrade=cap.downgrade),
                           run_in_executor=lambda f, *a: loop.run_in_executor(None, f, *a),
                           observe_service=lambda ms, n: None, fail=lambda exc: given.append(exc),
                           wake=lambda: None)


def test_closing_drops_the_queue_and_the_batch_in_flight() -> None:
    async def scenario() -> tuple[list, list, Held]:
        given: list = []
        op = Held()
        op.ctx = context(asyncio.get_running_loop(), given)
        out = SimpleNamespace(give=lambda batch, epoch: given.append((epoch, list(batch))))
        op.on_batch(3, [1, 2, 3, 4, 5, 6], out)   # one batch of two in flight, four records queued
        await asyncio.sleep(0.05)
        assert op.in_flight == 1 and len(op.pending) == 4
        op.on_close()                              # the generation is aborted
        op.gate.set()                              # the batch in flight ends after it
        await asyncio.sleep(0.2)
        return given, op.ran, op
    given, ran, op = asyncio.run(scenario())
    assert ran == [[1, 2]]       # nothing queued was run after the close
    assert given == []           # and the batch that was in flight gave nothing downstream
    assert op.in_flight == 0 and not op.waiting()


def test_an_open_operator_runs_its_whole_queue() -> None:
    async def scenario() -> tuple[list, list]:
        given: list = []
        op = Held()
        op.gate.set()
        op.ctx = context(asyncio.get_running_loop(), given)
        out = SimpleNamespace(give=lambda batch, epoch: given.append((epoch, list(batch))))
        op.on_batch(3, [1, 2, 3, 4, 5], out)
        for _ in range(50):
            await asyncio.sleep(0.02)
            if not op.waiting():
                break
        return given, op.ran
    given, ran = asyncio.run(scenario())
    assert ran == [[1, 2], [3, 4], [5]] and given == [(3, [1, 2]), (3, [3, 4]), (3, [5])]
