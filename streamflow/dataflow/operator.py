"""The operator interface shared by relational and ML operators.

An operator handles batches (`on_batch`), is told when an epoch is complete (`on_notify`), and
emits through `output`. To emit after the activation that gave it an epoch (from a notification,
a timer or a thread) it retains a Capability; `ctx.notify_at` holds one until the notification.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from streamflow.errors import CapabilityError
from streamflow.records.typesystem import RecordTypeError, check_batch

if TYPE_CHECKING:  # pragma: no cover
    from streamflow.dataflow.worker import OperatorSlot

Batch = Any
"""A list of records, or a numpy / columnar block of records of one epoch."""


class Operator:
    """Base class: override `on_batch` (and `on_notify` for epoch-complete work)."""

    n_inputs: int = 1
    n_outputs: int = 1
    emits_carried: bool = False
    """True when everything the operator emits is carried by the record type system by
    construction (it passes its input on, or builds records from carried values); the runtime
    then skips the per-batch record check in one process."""
    ctx: "OperatorContext"

    def on_start(self) -> None:
        """Called once on each worker before any input; `self.ctx` is set."""

    def on_batch(self, epoch: int, batch: Batch, output: "Output") -> None:
        """Handle one batch of records of `epoch` from input port 0."""
        raise TypeError(f"{type(self).__name__} must implement on_batch")

    def on_input(self, port: int, epoch: int, batch: Batch, output: "Output") -> None:
        """Handle a batch from input `port`; multi-input operators override this."""
        self.on_batch(epoch, batch, output)

    def on_notify(self, epoch: int, output: "Output") -> None:
        """All input at or before `epoch` has arrived (requested with `ctx.notify_at`)."""

    def on_close(self) -> None:
        """The dataflow finished (or is being torn down): flush files, free resources."""

    def snapshot(self, epoch: int) -> Any:
        """State as of the end of `epoch`, for checkpoints and live reconfiguration; None when
        the operator keeps no state across epochs.

        The runtime calls it once every input has passed `epoch` and every notification at or
        before it was delivered, and (unless `aligned` is False) before any input after `epoch`
        was handled: the state then reflects exactly the epochs up to `epoch`. The value must be
        carried by the record type system; keyed operators return `Keyed({key: state})` so
        each key's state can move to another instance."""
        return None

    def restore(self, state: Any) -> None:
        """Take back what `snapshot` returned (for keyed state: the keys of this instance),
        before `on_start`; the run then continues after the snapshot's epoch."""

    aligned: bool = True
    """Whether input after a checkpoint epoch must wait until the snapshot is taken (operators
    whose state mixes epochs). Operators that can leave later epochs out themselves (a sink
    that has only written complete epochs) set it False and never hold input back."""

    def aligned_at(self, epoch: int) -> bool:
        """`aligned` for checkpoint `epoch`: windowed operators keep later windows apart, so at a
        window's last epoch they snapshot without holding input back (and leave later windows
        out of the snapshot)."""
        return self.aligned

    def waiting(self) -> bool:
        """True while work the operator started off the loop (a timer, a thread) will wake the
        worker later; a run with nothing runnable and nothing waiting has stalled."""
        return False


class Output:
    """Emits batches on one output port, checking the epoch against the capabilities held."""

    __slots__ = ("epoch", "pushers", "_slot", "port", "ports", "_stats", "check")

    def __init__(self, slot: "OperatorSlot", port: int) -> None:
        self.epoch: int | None = None  # epoch of the current activation, set by the worker
        self.pushers: list[Callable[[int, Batch], None]] = []
        self._slot = slot
        self._stats = slot.stats
        self.port = port
        self.ports: list[Output] = [self]
        self.check = False  # check batches against the record type system (they stay in-process)

    def give(self, batch: Batch, epoch: int | None = None) -> None:
        """Emit `batch` at `epoch` (default: the epoch being handled). Empty batches are dropped."""
        if epoch is None:
            epoch = self.epoch
            if epoch is None:
                raise CapabilityError(f"{self._slot.name}: emitting outside an activation needs an epoch")
        elif self.epoch is None or epoch < self.epoch:
            self._slot.check_capability(epoch)
        self.give_held(batch, epoch)

    def give_held(self, batch: Batch, epoch: int) -> None:
        """Emit at `epoch`, which the caller has just made sure a capability covers (a source
        that advanced its own): `give` without the capability test, the per-batch fast path."""
        if len(batch) == 0:
            return
        try:
            if self.check:
                check_batch(batch)
            stats = self._stats
            stats.records_out += len(batch)
            stats.batches_out += 1
            for push in self.pushers:
                push(epoch, batch)
        except RecordTypeError as exc:
            raise self._refused(epoch, exc) from None

    def check_records(self, batch: Batch, epoch: int) -> None:
        """What `give` checks before it pushes (a chain checks its members' outputs with it)."""
        try:
            check_batch(batch)
        except RecordTypeError as exc:
            raise self._refused(epoch, exc) from None

    def _refused(self, epoch: int, exc: RecordTypeError) -> RecordTypeError:
        return RecordTypeError(f"operator {self._slot.name!r} emitted at epoch {epoch} a value "
                               f"that cannot cross between workers: {exc}")

    def __getitem__(self, port: int) -> "Output":
        """The handle of output `port` (operators with several outputs)."""
        return self.ports[port]


class Capability:
    """The right to emit at epochs >= `epoch` on every output of one operator instance."""

    __slots__ = ("epoch", "_slot", "_live")

    def __init__(self, slot: "OperatorSlot", epoch: int, counted: bool = False) -> None:
        self._slot = slot
        self.epoch = epoch
        self._live = True
        slot.hold(epoch, +1, record=not counted)

    @classmethod
    def initial(cls, slot: "OperatorSlot", epoch: int = 0) -> "Capability":
        """A source's capability at the run's start epoch, already in every process's initial
        progress view."""
        return cls(slot, epoch, counted=True)

    def downgrade(self, epoch: int) -> None:
        """Promise never to emit below `epoch` with this capability again."""
        if not self._live:
            raise CapabilityError(f"{self._slot.name}: downgrade of a dropped capability")
        if epoch < self.epoch:
            raise CapabilityError(f"{self._slot.name}: cannot downgrade capability {self.epoch} "
                                  f"to an earlier epoch {epoch}")
        if epoch != self.epoch:
            self._slot.hold(epoch, +1)
            self._slot.hold(self.epoch, -1)
            self.epoch = epoch

    def drop(self) -> None:
        """Release the capability; once all are gone, downstream frontiers may pass it."""
        if self._live:
            self._live = False
            self._slot.hold(self.epoch, -1)

    @property
    def live(self) -> bool:
        return self._live

    def __repr__(self) -> str:
        return f"Capability({self._slot.name}@{self.epoch}{'' if self._live else ', dropped'})"


class OperatorContext:
    """What an operator instance may ask of the runtime: capabilities, notifications, identity."""

    def __init__(self, slot: "OperatorSlot", worker_name: str, instance: int, instances: int,
                 params: dict[str, Any]) -> None:
        self._slot = slot
        self.name = slot.name
        self.worker_name = worker_name
        self.instance = instance
        self.instances = instances
        self.params = params

    @property
    def clock_origin(self) -> float:
        """Wall-clock time (time.time()) at which the run's sources started; the same in every
        process and every generation of a run, so paced sources keep their schedule when they
        resume after a recovery or a reconfiguration."""
        origin = self._slot.worker.clock_origin
        assert origin is not None, "the clock starts with the sources"
        return origin

    @property
    def epoch(self) -> int | None:
        """The epoch of the current activation (None between activations)."""
        return self._slot.output.epoch

    def retain(self, epoch: int | None = None) -> Capability:
        """Keep the right to emit at `epoch` (default: the current one) after this activation."""
        epoch = self._current(epoch)
        return Capability(self._slot, epoch)

    def notify_at(self, epoch: int | None = None) -> None:
        """Ask for `on_notify(epoch)` once no record at or before `epoch` can arrive; once per epoch."""
        self._slot.request_notification(self._current(epoch))

    def frontier(self) -> int | float:
        """The least epoch that may still arrive at this operator's inputs (inf when none)."""
        return self._slot.frontier()

    def wake(self) -> None:
        """Ask the worker to run a round soon (after work finished off the event loop)."""
        self._slot.wake()

    def run_in_executor(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run CPU-heavy `fn(*args)` off the event loop; returns an asyncio future."""
        return self._slot.run_in_executor(fn, *args)

    def fail(self, exc: BaseException) -> None:
        """Fail the run from a callback (work that finished off the loop raised)."""
        self._slot.fail(exc)

    def observe_service(self, ms: float, records: int = 1) -> None:
        """Report the time one batch of `records` took (operators that work off the loop, or
        gather their own batches, measure themselves)."""
        stats = self._slot.stats
        stats.service_ms.append(ms)
        stats.served += records

    def observe_latency(self, ms: float) -> None:
        """Report one end-to-end record latency (sinks; the run report gives p50/p99)."""
        self._slot.stats.latency_ms.append(ms)

    def _current(self, epoch: int | None) -> int:
        if epoch is None:
            epoch = self._slot.output.epoch
            if epoch is None:
                raise CapabilityError(f"{self.name}: no current epoch outside an activation")
            return epoch
        self._slot.check_capability(epoch)
        return epoch
