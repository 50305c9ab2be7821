"""A worker: the operator instances placed on it, their input queues, and the scheduling loop.

One step polls the sources, runs every operator with queued input in topological order (so a
batch crosses a chain of forward edges in one step), applies the step's progress changes as one
atomic batch, and delivers the notifications whose epochs every input has passed.
"""
from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from streamflow.dataflow import chain, partition
from streamflow.dataflow.graph import Graph, OperatorSpec
from streamflow.dataflow.operator import Batch, Capability, Operator, OperatorContext, Output
from streamflow.dataflow.source import Source
from streamflow.errors import CapabilityError, GraphError, OperatorError, StreamflowError
from streamflow.progress import DONE, ProgressTracker, Topology

Placement = dict[str, list[tuple[str, float]]]


Restored = dict[str, dict[int, list[int]]]
"""Per operator and instance, the notification epochs a checkpoint restores (they hold)."""


def initial_changes(graph: Graph, topology: Topology, placement: Placement, start_epoch: int = 0,
                    restored: Restored | None = None) -> list[tuple[int, int, int]]:
    """Every source instance in the whole dataflow holds a capability at the start epoch (0, or
    one after the checkpoint a run resumes from), and every restored notification holds its
    epoch: each process starts its progress view from these counts, so nobody sees an empty
    frontier, or a frontier past a restored notification, too early."""
    changes = []
    for index, spec in enumerate(graph.operators):
        if spec.n_inputs == 0:
            for _ in placement[spec.name]:
                changes.extend((topology.output_location[(index, p)], start_epoch, 1) for p in range(spec.n_outputs))
        for epochs in (restored or {}).get(spec.name, {}).values():
            for epoch in epochs:
                changes.extend((topology.output_location[(index, p)], epoch, 1) for p in range(spec.n_outputs))
    return changes


def stalled_reason(graph: Graph, topology: Topology, tracker: ProgressTracker) -> str:
    """The stall message: every location still holding a pointstamp, with its least epoch."""
    names = [op.name for op in graph.operators]
    held = [f"{topology.locations[loc].describe(names)} at epoch {min(c)}"
            for loc, c in tracker.counts().items() if any(v > 0 for v in c.values())]
    return "dataflow stalled: capabilities still held at " + ", ".join(held)


def _epoch_text(epoch: int | None) -> str:
    return "none" if epoch is None else str(epoch)


class OperatorStats:
    """Counters a run report and the metrics are built from: batches and records in and out,
    busy time; updated per batch, never per record."""

    __slots__ = ("batches", "records", "busy_s", "records_out", "batches_out", "service_ms", "served", "latency_ms")

    def __init__(self) -> None:
        self.batches = 0
        self.records = 0
        self.records_out = 0
        self.batches_out = 0
        self.busy_s = 0.0
        self.service_ms: list[float] = []  # one sample per batch served (taken by each stats message)
        self.served = 0  # records the samples in service_ms covered (a model batch may gather many)
        self.latency_ms: list[float] = []


class OperatorSlot:
    """Runtime state of one operator instance on this worker."""

    def __init__(self, worker: "Worker", index: int, spec: OperatorSpec, op: Operator,
                 instance: int, instances: int) -> None:
        self.worker = worker
        self.index = index
        self.name = spec.name
        self.spec = spec
        self.op = op
        self.is_source = isinstance(op, Source)
        self.queues: list[deque[tuple[int, Batch]]] = [deque() for _ in range(spec.n_inputs)]
        self.input_locs: list[int] = [0] * spec.n_inputs
        self.out_locs = [worker.topology.output_location[(index, p)] for p in range(spec.n_outputs)]
        self.stats = OperatorStats()
        self.output = Output(self, 0)
        self.output.ports = [self.output] + [Output(self, p) for p in range(1, spec.n_outputs)]
        for port in self.output.ports[1:]:
            port.ports = self.output.ports
        self.held: dict[int, int] = {}
        self.notify_heap: list[int] = []
        self.notify_set: set[int] = set()
        self.exhausted = False
        self.started = False
        self.pending = 0  # executor jobs in flight; each holds a capability until it emits
        self.hold_after: float = math.inf  # input after this epoch waits for a checkpoint
        self.deferred: list[tuple[int, int, Batch]] = []  # (port, epoch, batch) held back
        self.max_in_flight: int = getattr(op, "max_in_flight", 0)
        self.measures_service: bool = getattr(op, "measures_service", False)
        self.remote_credit: list[tuple[str, int, int]] = []  # (peer, edge, bytes) received, to grant back
        self.ctx = OperatorContext(self, worker.name, instance, instances, spec.params)
        if type(op).on_input is Operator.on_input:
            self.handlers = [op.on_batch] * spec.n_inputs
        else:
            self.handlers = [partial(op.on_input, p) for p in range(spec.n_inputs)]

    # capabilities and notifications -------------------------------------------------------
    def hold(self, epoch: int, delta: int, record: bool = True) -> None:
        """Count `delta` capabilities at `epoch` on every output (and in the progress changes)."""
        count = self.held.get(epoch, 0) + delta
        if count:
            self.held[epoch] = count
        else:
            del self.held[epoch]
        if record:
            changes = self.worker.changes
            for loc in self.out_locs:
                key = (loc, epoch)
                changes[key] = changes.get(key, 0) + delta

    def check_capability(self, epoch: int) -> None:
        current = self.output.epoch
        if current is not None and epoch >= current:
            return
        if self.held and epoch >= min(self.held):
            return
        raise CapabilityError(f"{self.name}: no capability for epoch {epoch} "
                              f"(current {current}, held {sorted(self.held) or 'none'})")

    def request_notification(self, epoch: int, counted: bool = False) -> None:
        """`counted`: the hold is already in every process's initial view (restored ones)."""
        if epoch not in self.notify_set:
            self.notify_set.add(epoch)
            heapq.heappush(self.notify_heap, epoch)
            self.hold(epoch, +1, record=not counted)
            self.worker.notifying.add(self)

    def frontier(self) -> int | float:
        return self.worker.tracker.frontier(self.index)

    def wake(self) -> None:
        self.worker.wake()

    def fail(self, exc: BaseException) -> None:
        """Work this instance started off the loop failed (a callback or executor job raised)."""
        self.worker.fail(self, exc if isinstance(exc, StreamflowError) else
                         OperatorError(f"operator {self.name!r} failed: {exc!r}"))

    def run_in_executor(self, fn: Callable[..., Any], *args: Any) -> Any:
        future = asyncio.get_running_loop().run_in_executor(self.worker.executor, fn, *args)
        self.pending += 1

        def finished(_f: Any) -> None:
            self.pending -= 1
            self.worker.wake()
        future.add_done_callback(finished)
        return future

    def busy(self) -> bool:
        """Too much executor work in flight: leave input queued (which withholds credit)."""
        return bool(self.max_in_flight) and self.pending >= self.max_in_flight

    def defer(self, port: int, epoch: int, batch: Batch) -> None:
        """Hold a batch after the owed checkpoint back until the snapshot is taken; it stays
        counted in progress (it was not handled), only its flow-control credit is granted."""
        self.deferred.append((port, epoch, batch))

    def has_input(self) -> bool:
        for q in self.queues:
            if q:
                return True
        return False

    def __repr__(self) -> str:
        return f"<{self.name}@{self.worker.name}>"


class Worker:
    """Runs the instances of a graph's operators placed on `name`; in one process, all of them.

    `transport` (multi-process runs) supplies pushers to remote instances and exchanges the
    atomic progress batches; without it every instance must live on this worker.
    """

    def __init__(self, graph: Graph, name: str = "local", placement: Placement | None = None,
                 transport: Any = None, source_budget: int = 16, executor: Any = None,
                 collect_service_times: bool = False, check_records: bool | None = None,
                 start_epoch: int = 0, restore: dict[str, Any] | None = None,
                 restored_notify: Restored | None = None, chaining: bool = True) -> None:
        """`start_epoch`, `restore` ({operator: state} of this worker's instances) and
        `restored_notify` (every instance's restored notifications, the same in every process)
        resume a run after a checkpoint at start_epoch - 1. `chaining` False keeps every
        transform a scheduling unit of its own (tests that interleave operators one by one)."""
        graph.validate()
        self.graph = graph
        self.name = name
        self.transport = transport
        self.executor = executor
        self.source_budget = source_budget
        self.collect_service_times = collect_service_times
        # Records are checked against the type system where a graph can run on several
        # processes (plans: with a transport, or --inprocess), so that a plan behaves the same
        # wherever it is placed. A Python-API dataflow only ever runs in one process: nothing
        # would refuse its records later, so it is not checked unless asked.
        self.check_records = transport is not None if check_records is None else check_records
        self.placement: Placement = placement or {op.name: [(name, 1.0)] for op in graph.operators}
        try:
            self.topology = Topology([op.n_outputs for op in graph.operators],
                                     [op.n_inputs for op in graph.operators], graph.port_edges())
        except ValueError as exc:  # validate() already names cycles; belt and braces
            raise GraphError(str(exc)) from None
        self.tracker = ProgressTracker(self.topology)
        self.changes: dict[tuple[int, int], int] = {}
        self.notifying: set[OperatorSlot] = set()
        self.slots: dict[int, OperatorSlot] = {}
        self._wake_event: asyncio.Event | None = None
        self.clock_origin: float | None = None  # set when the sources start (or by the coordinator)
        self.failure: StreamflowError | None = None
        self.failed: set[OperatorSlot] = set()
        self.draining = False
        self.releasing = False  # a source pause moved: emit what it no longer holds back
        self.on_failure: Callable[[StreamflowError], None] | None = None
        self.start_epoch = start_epoch
        self.restore_states = restore or {}
        self.restored_notify: Restored = restored_notify or {}
        self.checkpointer: Any = None  # a recovery.checkpoint.Checkpointer, when checkpointing
        self._started = False
        self.steps = 0
        for index in self.topology.order:
            spec = graph.operators[index]
            where = [w for w, _s in self.placement.get(spec.name, [])]
            if not where:
                raise GraphError(f"operator {spec.name!r} is not placed on any worker")
            if name in where:
                instance = where.index(name)
                op = spec.factory()
                self.slots[index] = OperatorSlot(self, index, spec, op, instance, len(where))
        self.ordered = [self.slots[i] for i in self.topology.order if i in self.slots]
        self.sources = [s for s in self.ordered if s.is_source]
        self.operators = [s for s in self.ordered if not s.is_source]
        self._wire()
        if chaining:
            chain.install(self)

    # wiring ------------------------------------------------------------------------------------
    def _wire(self) -> None:
        topo = self.topology
        for e, edge in enumerate(self.graph.edges):
            src_i, dst_i = self.graph.index(edge.src), self.graph.index(edge.dst)
            loc = topo.edge_location[e]
            if dst_i in self.slots:
                self.slots[dst_i].input_locs[edge.dst_port] = loc
            if src_i not in self.slots:
                continue
            targets_at = self.placement[edge.dst]
            pushers = [self._pusher(e, loc, edge.dst_port, dst_i, w, i) for i, (w, _s) in enumerate(targets_at)]
            kind = edge.partition
            if kind == "forward":
                local = [p for (w, _s), p in zip(targets_at, pushers) if w == self.name]
                if len(pushers) == 1:
                    push = pushers[0]
                elif len(local) == 1:
                    push = local[0]
                else:
                    raise GraphError(f"edge {edge.src} -> {edge.dst}: forward needs {edge.dst} on "
                                     f"{self.name} or on exactly one worker")
            elif kind == "broadcast":
                push = partition.broadcast(pushers)
            elif kind == "hash":
                assert edge.key is not None
                push = partition.hashed(pushers, edge.key, f"operator {edge.dst!r}", self.check_records)
            else:
                weights = [s for _w, s in targets_at]
                if edge.routes is not None and self.name in edge.routes:
                    row = edge.routes[self.name]
                    weights = [float(row.get(w, 0.0)) for w, _s in targets_at]
                push = partition.weighted(pushers, weights)
            out = self.slots[src_i].output.ports[edge.src_port]
            out.pushers.append(push)
            if self.check_records and not self.slots[src_i].op.emits_carried:
                out.check = True  # the type system decides, wherever the batch goes

    def _pusher(self, edge: int, loc: int, port: int, dst: int, worker: str, instance: int
                ) -> Callable[[int, Batch], None]:
        changes = self.changes
        if worker == self.name:
            queue = self.slots[dst].queues[port]
            append = queue.append

            def push(epoch: int, batch: Batch) -> None:
                append((epoch, batch))
                key = (loc, epoch)
                changes[key] = changes.get(key, 0) + 1
            return push
        if self.transport is None:
            raise GraphError(f"operator {self.graph.operators[dst].name!r} is placed on worker "
                             f"{worker!r}, which a single-process run cannot reach")
        send = self.transport.sender(edge, worker, instance)

        def push_remote(epoch: int, batch: Batch) -> None:
            key = (loc, epoch)
            changes[key] = changes.get(key, 0) + 1
            send(epoch, batch)
        return push_remote

    def initial_changes(self) -> list[tuple[int, int, int]]:
        return initial_changes(self.graph, self.topology, self.placement, self.start_epoch, self.restored_notify)

    # lifecycle ---------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Start the non-source operators (load models, open files) before the run begins, so
        the sources' clock starts with everything ready; `start` does the rest."""
        for slot in self.ordered:
            if not slot.is_source:
                self._start_slot(slot)

    def start(self) -> None:
        """Seed the progress view and start every local instance not started yet."""
        if self._started:
            return
        self._started = True
        if self.clock_origin is None:
            self.clock_origin = time.time()
        self.tracker.apply(self.initial_changes())
        for slot in self.ordered:
            if slot.is_source:
                slot.op.capability = Capability.initial(slot, self.start_epoch)
            self._start_slot(slot)

    def _start_slot(self, slot: OperatorSlot) -> None:
        if slot.started:
            return
        slot.started = True
        slot.op.ctx = slot.ctx
        try:
            if self.start_epoch:
                if slot.is_source:
                    slot.op.resume_after(self.start_epoch - 1)
                if slot.name in self.restore_states:
                    slot.op.restore(self.restore_states[slot.name])
                for epoch in self.restored_notify.get(slot.name, {}).get(slot.ctx.instance, []):
                    slot.request_notification(epoch, counted=True)
            slot.op.on_start()
        except StreamflowError:
            raise
        except Exception as exc:
            raise OperatorError(f"operator {slot.name!r} failed to start: {exc!r}") from exc

    def close(self) -> None:
        """Let every instance flush and free its resources (sinks close their files)."""
        errors = []
        for slot in self.ordered:
            try:
                slot.op.on_close()
            except Exception as exc:  # keep closing the others; report the first
                errors.append(OperatorError(f"operator {slot.name!r} failed to close: {exc!r}"))
        if errors:
            raise errors[0]

    # scheduling --------------------------------------------------------------------------------
    def step(self) -> bool:
        """One scheduling round; returns whether anything happened.

        An operator that fails stops there: the batch it failed on stays counted, so no
        epoch at or after it completes downstream, while every other instance keeps running
        without the sources (draining), so every epoch before it reaches the sinks."""
        self.steps += 1
        worked = False
        if not self.draining:
            for slot in self.sources:
                if not slot.exhausted and not slot.op.held_back and slot.op.ready() and not self._blocked(slot):
                    worked = True
                    self._guarded(slot, self._poll)
            if self.releasing:
                self.releasing = False
                for slot in self.sources:
                    if slot.op.held_back:
                        worked = True
                        self._guarded(slot, self._release)
        transport = self.transport
        failed = self.failed
        for slot in self.operators:
            for q in slot.queues:
                if q:
                    if slot.busy() or slot in failed or (transport is not None and transport.blocked(slot.index)):
                        break
                    self._guarded(slot, self._run)
                    if slot.remote_credit:
                        transport.grant(slot.remote_credit)
                    worked = True
                    break
        if self.changes:
            self.flush_progress()
            worked = True
        if self.notifying and self._notify():
            worked = True
        if self.checkpointer is not None and self.checkpointer.poll():
            worked = True
        return worked

    def _guarded(self, slot: OperatorSlot, activate: Callable[[OperatorSlot], None]) -> None:
        try:
            activate(slot)
        except StreamflowError as exc:
            self.fail(slot, exc)

    def fail(self, slot: OperatorSlot, exc: StreamflowError) -> None:
        """Stop `slot` for good and drain the rest; the first failure is the run's."""
        self.failed.add(slot)
        self.draining = True
        if self.failure is None:
            self.failure = exc
            if self.on_failure is not None:
                self.on_failure(exc)
        self.wake()

    def drain(self) -> None:
        """Stop polling the sources; everything already emitted goes on to complete."""
        self.draining = True
        self.wake()

    def late_sources(self, epoch: int) -> list[int]:
        """The epochs of the source instances here that may already have emitted at or after
        `epoch` (which a pause at it would come too late for)."""
        return [int(s.op.capability.epoch) for s in self.sources if s.op.past(epoch)]

    def pause_sources(self, epoch: float) -> None:
        """Hold back every source instance here at `epoch` (inf: lift the pause): the sources'
        side of a drain before a live switch (cluster/handover.py); only when none is late."""
        for slot in self.sources:
            slot.op.pause_at = epoch
        self.releasing = True
        self.wake()

    def _release(self, slot: OperatorSlot) -> None:
        output = slot.output
        output.epoch = None
        slot.op.release(output)

    def last_complete_epoch(self) -> int | None:
        """The last epoch every sink (every operator, without sinks) has passed, in this view."""
        ops = [i for i, op in enumerate(self.graph.operators) if op.n_outputs == 0] or \
            list(range(len(self.graph.operators)))
        f = min(self.tracker.frontier(i) for i in ops)
        return None if f == 0 else (None if f == DONE else int(f) - 1)

    def _blocked(self, slot: OperatorSlot) -> bool:
        return self.transport is not None and self.transport.blocked(slot.index)

    def _poll(self, slot: OperatorSlot) -> None:
        output = slot.output
        output.epoch = None
        try:
            more = slot.op.poll(output, self.source_budget)
        except StreamflowError:
            raise
        except Exception as exc:
            raise OperatorError(f"source {slot.name!r} failed: {exc!r}") from exc
        if not more:
            slot.exhausted = True

    def _run(self, slot: OperatorSlot) -> None:
        changes = self.changes
        output = slot.output
        stats = slot.stats
        epoch = -1
        t0 = time.perf_counter()
        try:
            for port, queue in enumerate(slot.queues):
                if not queue:
                    continue
                handler = slot.handlers[port]
                loc = slot.input_locs[port]
                popleft = queue.popleft
                hold = slot.hold_after
                # three copies of one loop on purpose: the common ones pay for no test per batch
                if hold != math.inf:  # a checkpoint is owed: later epochs wait for it
                    while queue:
                        epoch, batch = popleft()
                        if epoch > hold:
                            slot.defer(port, epoch, batch)
                            continue
                        output.epoch = epoch
                        handler(epoch, batch, output)
                        stats.batches += 1
                        stats.records += len(batch)
                        key = (loc, epoch)
                        changes[key] = changes.get(key, 0) - 1
                elif self.collect_service_times and not slot.measures_service:
                    service = stats.service_ms
                    while queue:
                        epoch, batch = popleft()
                        output.epoch = epoch
                        t = time.perf_counter()
                        handler(epoch, batch, output)
                        service.append((time.perf_counter() - t) * 1e3)
                        stats.served += len(batch)
                        stats.batches += 1
                        stats.records += len(batch)
                        key = (loc, epoch)
                        changes[key] = changes.get(key, 0) - 1
                else:
                    while queue:
                        epoch, batch = popleft()
                        output.epoch = epoch
                        handler(epoch, batch, output)
                        stats.batches += 1
                        stats.records += len(batch)
                        key = (loc, epoch)
                        changes[key] = changes.get(key, 0) - 1
        except StreamflowError:
            raise
        except Exception as exc:
            raise OperatorError(f"operator {slot.name!r} failed at epoch {epoch}: {exc!r}") from exc
        finally:
            output.epoch = None
            stats.busy_s += time.perf_counter() - t0

    def activate(self, slot: OperatorSlot, port: int, limit: int = 1) -> int:
        """Handle up to `limit` queued batches of one input port (fine-grained scheduling: tests
        drive random interleavings with it); returns how many were handled."""
        queue = slot.queues[port]
        n = 0
        output = slot.output
        try:
            while queue and n < limit:
                epoch, batch = queue.popleft()
                if epoch > slot.hold_after:
                    slot.defer(port, epoch, batch)
                    continue
                output.epoch = epoch
                slot.handlers[port](epoch, batch, output)
                key = (slot.input_locs[port], epoch)
                self.changes[key] = self.changes.get(key, 0) - 1
                slot.stats.batches += 1
                slot.stats.records += len(batch)
                n += 1
        finally:
            output.epoch = None
        if slot.remote_credit and not slot.has_input():
            self.transport.grant(slot.remote_credit)
        return n

    def poll(self, slot: OperatorSlot, budget: int = 1) -> None:
        """Let one source emit up to `budget` batches."""
        saved, self.source_budget = self.source_budget, budget
        try:
            self._poll(slot)
        finally:
            self.source_budget = saved

    def deliver_notifications(self) -> bool:
        """Deliver every notification whose epoch all inputs have passed (in this view)."""
        return self._notify()

    def flush_progress(self) -> None:
        """Apply this step's changes as one atomic batch (and share it with the other workers)."""
        items = [(loc, ep, d) for (loc, ep), d in self.changes.items() if d]
        self.changes.clear()
        if items:
            if self.transport is not None:
                self.transport.broadcast_progress(items)
            self.tracker.apply(items)

    def apply_remote(self, items: Sequence[tuple[int, int, int]]) -> None:
        """Apply a progress batch another worker made (batches from one worker in order)."""
        self.tracker.apply(items)
        self.wake()

    def _notify(self) -> bool:
        delivered = False
        tracker = self.tracker
        for slot in list(self.notifying):
            if slot in self.failed:
                continue
            heap = slot.notify_heap
            output = slot.output
            while heap and heap[0] < tracker.frontier(slot.index):
                epoch = heap[0]
                if self.checkpointer is not None:
                    self.checkpointer.before_notify(slot, epoch)
                output.epoch = epoch
                try:
                    slot.op.on_notify(epoch, output)
                except StreamflowError as exc:
                    self.fail(slot, exc)
                    break
                except Exception as exc:
                    self.fail(slot, OperatorError(f"operator {slot.name!r} failed in on_notify({epoch}): {exc!r}"))
                    break
                finally:
                    output.epoch = None
                heapq.heappop(heap)
                slot.notify_set.discard(epoch)
                slot.hold(epoch, -1)
                delivered = True
            if not heap:
                self.notifying.discard(slot)
        return delivered

    def wake(self) -> None:
        if self._wake_event is not None:
            self._wake_event.set()

    def idle(self) -> bool:
        """Nothing runnable here right now (may still wait on other workers or async sources)."""
        if self.changes:
            return False
        for slot in self.ordered:
            if slot.has_input() and slot not in self.failed:
                return False
            if slot.is_source and not self.draining and not slot.exhausted and not slot.op.held_back \
                    and slot.op.ready():
                return False
        return True

    def done(self) -> bool:
        """The whole dataflow has finished: every pointstamp count is zero in this view."""
        return self.tracker.is_complete() and not self.changes

    def stalled_reason(self) -> str:
        """Why a finished-looking run cannot complete: who still holds what."""
        return stalled_reason(self.graph, self.topology, self.tracker)

    async def run_async(self, until: Callable[[], bool] | None = None) -> None:
        """Run steps until the dataflow completes (or `until()` holds), waiting when idle.

        In one process a failure drains what it can and then raises, naming the last complete
        epoch; with a transport the worker keeps draining until the coordinator stops it."""
        self._wake_event = asyncio.Event()
        self.start()
        last_yield = time.monotonic()
        while True:
            worked = self.step()
            if self.done() or (until is not None and until()):
                return
            if worked:
                now = time.monotonic()
                if now - last_yield > 0.002:  # let sockets, timers and control messages in
                    last_yield = now
                    await asyncio.sleep(0)
                continue
            if self.transport is None and not self._has_async_work():
                if self.failure is not None:
                    raise type(self.failure)(f"{self.failure}; last complete epoch: "
                                             f"{_epoch_text(self.last_complete_epoch())}")
                raise StreamflowError(self.stalled_reason())
            await self._wake_event.wait()
            self._wake_event.clear()

    def _has_async_work(self) -> bool:
        """Something off the loop may still wake us: an async source or pending executor work."""
        if not self.draining and any(not s.exhausted and not s.op.held_back and not s.op.ready()
                                     for s in self.sources):
            return True
        return any((s.pending or s.op.waiting()) and s not in self.failed for s in self.operators)

    def quiescent(self) -> bool:
        """Idle with nothing off the loop that could wake it (stall and drain detection)."""
        return self.idle() and not self._has_async_work()

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Run to completion on a fresh event loop (uvloop when installed), then close."""
        from streamflow.runtime import run_coroutine

        async def main() -> None:
            try:
                await self.run_async(until)
            finally:
                self.close()
        run_coroutine(main())
