"""A checkpoint taken under one placement, made fit for another (live reconfiguration).

An operator placed on the same workers keeps each instance's snapshot. One placed on other
workers, or on more or fewer of them, must keep its state per partition key (`Keyed`): the keys
of all its old instances are merged and each goes to the new instance its key hashes to, the
same `key_hash(key) % n` the hash edge uses, so a key's state lands where its records will.
Restored notifications of a moved operator go to every new instance (one with no state for an
epoch is notified and finds nothing to do), so none fires early.
"""
from __future__ import annotations

from streamflow.communication.codec import pack_value, unpack_value
from streamflow.errors import StreamflowError
from streamflow.records.keys import key_hash
from streamflow.recovery.state import Keyed
from streamflow.recovery.store import Checkpoint

Placement = dict[str, list[tuple[str, float]]]


class ReshardError(StreamflowError):
    """State that cannot move to the new placement (it is not kept per key)."""


def reshard(checkpoint: Checkpoint, old: Placement, new: Placement) -> Checkpoint:
    """The checkpoint's states and notifications for the operators of `new`."""
    states: dict[str, dict[int, bytes]] = {}
    notify: dict[str, dict[int, list[int]]] = {}
    for op, per in checkpoint.states.items():
        if op not in new:
            raise ReshardError(f"operator {op!r} holds state and is not in the new plan")
        before = [w for w, _s in old.get(op, [])]
        after = [w for w, _s in new[op]]
        old_notify = checkpoint.notify.get(op, {})
        if before == after:
            states[op], notify[op] = dict(per), {i: list(e) for i, e in old_notify.items()}
            continue
        merged = Keyed()
        for inst in sorted(per):
            state = unpack_value(per[inst])
            if not isinstance(state, Keyed):
                raise ReshardError(f"operator {op!r} cannot move from {', '.join(before)} to "
                                   f"{', '.join(after)}: its state is not kept per key")
            merged = merged.merged(state)
        n = len(after)
        shards = [Keyed({}, merged.shared) for _ in range(n)]
        for key, value in merged.per_key.items():
            shards[key_hash(key) % n].per_key[key] = value
        states[op] = {i: pack_value(s) for i, s in enumerate(shards)}
        epochs = sorted({e for es in old_notify.values() for e in es})
        notify[op] = {i: list(epochs) for i in range(n)}
    return Checkpoint(checkpoint.epoch, states, notify)
