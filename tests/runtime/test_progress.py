"""Progress tracking, modelled on timely dataflow's own tests: notifications are never early and
always delivered exactly once, frontiers only move forward, held capabilities hold frontiers."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamflow.operators as op
from streamflow import Dataflow, Operator
from streamflow.dataflow.source import IterableSource, Source
from streamflow.errors import CapabilityError, StreamflowError
from streamflow.progress import DONE

from .dagcheck import build, check, random_spec


def run_randomly(worker, rng: random.Random) -> None:
    """Drive a worker with random interleavings: sources emit, operators take single batches,
    progress batches are applied and notifications delivered at random moments."""
    worker.start()
    for _ in range(100_000):
        if worker.done():
            return
        moves = [("flush", None)]
        moves += [("poll", s) for s in worker.sources if not s.exhausted]
        moves += [("run", (s, p)) for s in worker.operators for p, q in enumerate(s.queues) if q]
        if worker.notifying:
            moves.append(("notify", None))
        move, arg = rng.choice(moves)
        if move == "flush":
            worker.flush_progress()
        elif move == "poll":
            worker.poll(arg, rng.randint(1, 3))
        elif move == "run":
            worker.activate(arg[0], arg[1], rng.randint(1, 3))
        else:
            worker.deliver_notifications()
    raise AssertionError("random schedule did not finish")


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_random_dags_random_interleavings(seed: int) -> None:
    rng = random.Random(seed)
    spec = random_spec(rng)
    flow, logs = build(spec)
    worker = flow.worker()
    run_randomly(worker, rng)
    worker.close()
    check(spec, logs)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 8))
def test_random_dags_default_scheduler(seed: int, budget: int) -> None:
    spec = random_spec(random.Random(seed))
    flow, logs = build(spec)
    flow.run(source_budget=budget)
    check(spec, logs)


class FrontierLog(Operator):
    """Records its input frontier at every activation and notification."""

    def __init__(self, seen: list) -> None:
        self.seen = seen

    def on_batch(self, epoch, batch, output) -> None:
        self.seen.append(self.ctx.frontier())
        self.ctx.notify_at(epoch)

    def on_notify(self, epoch, output) -> None:
        self.seen.append(self.ctx.frontier())
        assert self.ctx.frontier() > epoch


def test_frontiers_only_move_forward() -> None:
    flow = Dataflow()
    src = op.source_batches("src", flow, [(e, [e]) for e in (0, 0, 1, 4, 4, 9)])
    seen: list = []
    flow.add("log", "log", lambda: FrontierLog(seen), [src.map(lambda x: x)], 0)
    worker = flow.worker()
    history = []
    worker.start()
    while not worker.done():
        worker.step()
        history.append(worker.tracker.frontier(worker.graph.index("log")))
    assert history == sorted(history) and history[-1] == DONE
    assert seen == sorted(seen)


class Holder(Operator):
    """Retains a capability at the first epoch it sees until told to let go."""

    def __init__(self) -> None:
        self.cap = None

    def on_batch(self, epoch, batch, output) -> None:
        if self.cap is None:
            self.cap = self.ctx.retain()
        output.give(batch)


def test_holding_a_capability_holds_the_frontier() -> None:
    flow = Dataflow()
    src = op.source_batches("src", flow, [(e, [e]) for e in range(5)])
    held = flow.add("hold", "hold", Holder, [src])
    probe = held.probe()
    worker = flow.worker()
    worker.start()
    for _ in range(50):
        worker.step()
    assert all(s.exhausted for s in worker.sources)
    assert probe.frontier() == 0, "the retained capability at epoch 0 must hold the frontier"
    assert not worker.done()
    holder = worker.slots[worker.graph.index("hold")].op
    holder.cap.downgrade(3)
    worker.step()
    worker.step()
    assert probe.frontier() == 3
    holder.cap.drop()
    worker.step()
    worker.step()
    assert probe.done() and worker.done()


class Countdown(Source):
    """Emits n epochs, then closes: dropping its last capability."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.next = 0

    def poll(self, output, budget) -> bool:
        if self.next < self.n:
            self.emit(output, self.next, [self.next])
            self.next += 1
            return True
        self.close()
        return False


def test_dropping_the_last_source_capability_completes_the_dataflow() -> None:
    flow = Dataflow()
    src = flow.add("src", "source", lambda: Countdown(3))
    probe = src.map(lambda x: x + 1).probe()
    worker = flow.worker()
    worker.start()
    steps = 0
    while not worker.done():
        assert not probe.done()
        worker.step()
        steps += 1
        assert steps < 100
    assert probe.done()
    assert worker.tracker.is_complete()


def test_a_source_holds_epoch_zero_before_it_runs() -> None:
    flow = Dataflow()
    src = op.source_batches("src", flow, [(2, [1])])
    probe = src.probe()
    worker = flow.worker()
    worker.start()
    assert probe.frontier() == 0
    worker.run()
    assert probe.done()


def test_emitting_below_the_capability_is_refused() -> None:
    class Early(Operator):
        def on_batch(self, epoch, batch, output) -> None:
            output.give(batch, epoch - 1)

    flow = Dataflow()
    src = op.source_batches("src", flow, [(3, [1])])
    flow.add("early", "early", Early, [src]).collect()
    with pytest.raises(CapabilityError, match="no capability for epoch 2"):
        flow.run()


def test_decreasing_source_epochs_are_refused() -> None:
    flow = Dataflow()
    op.source_batches("src", flow, [(3, [1]), (1, [2])]).collect()
    with pytest.raises(CapabilityError, match="must not decrease"):
        flow.run()


def test_a_capability_never_dropped_is_reported_as_a_stall() -> None:
    flow = Dataflow()
    src = op.source_batches("src", flow, [(0, [1])])
    flow.add("hold", "hold", Holder, [src]).collect()
    with pytest.raises(StreamflowError, match="stalled.*hold.out0 at epoch 0"):
        flow.run()


def test_sources_with_no_records_complete() -> None:
    flow = Dataflow()
    out = op.source_batches("src", flow, []).collect()
    flow.run()
    assert out == []


def test_notifications_in_epoch_order_per_operator() -> None:
    order: list[int] = []

    class Notes(Operator):
        def on_batch(self, epoch, batch, output) -> None:
            self.ctx.notify_at(epoch + 2)
            self.ctx.notify_at(epoch)

        def on_notify(self, epoch, output) -> None:
            order.append(epoch)

    flow = Dataflow()
    src = op.source_batches("src", flow, [(e, [e]) for e in (5, 1 + 5, 9)])
    flow.add("n", "n", Notes, [src], 0)
    flow.run()
    assert order == [5, 6, 7, 8, 9, 11]
