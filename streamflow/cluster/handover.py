"""Drain, then switch: epochs before e finish under the old plan, epochs from e on run under the
new one, and keyed state is handed over at e-1 (the coordinator's part of a live switch).

Protocol. When a switch is accepted, the workers of the new plan first load its models beside
the running plan (cluster/preload.py: load-then-switch, which touches no running instance, so
nothing below depends on it); then, or after PRELOAD_MAX_S, the coordinator picks an epoch e
past every source's frontier it has seen and asks every worker to pause its sources at e
(`pause-sources`). A worker checks, between two scheduling steps (so atomically with respect to
its sources), that none of its source instances may already have emitted at or after e (its
capability is still before e); if so it pauses them all and answers with no late epochs, else it
pauses none and answers with the late instances' epochs, and the coordinator asks again with a
later e (a few times, then it falls back to switching at the next periodic checkpoint and
replaying from it, `recovery`'s protocol). A paused source emits every epoch before e as usual;
the first batch at or after e it holds back and moves its capability to e instead. Once every
worker has paused, the coordinator announces a checkpoint at e-1 (`drain-checkpoint`;
Checkpointer.announce). The old plan drains: epochs before e complete everywhere, sinks write
them, stateful instances snapshot e-1. When that checkpoint has committed, the coordinator
aborts the generation and deploys the new plan from it (re-sharding keyed state,
recovery/reshard.py); sources resume at e.

Why it is safe. (1) Nothing of epoch e or later exists in the old generation when the
checkpoint at e-1 is announced: every source instance has promised (capability checked before
e, then held at e) never to emit at e or later, and operators emit at or after the epoch they
handle from input or from notifications of restored state, which the checkpoint argument
(recovery/checkpoint.py) covers. So announcing a checkpoint at e-1 is the safe case of
`Checkpointer.announce`: no instance can have handled input after e-1, and the snapshots at e-1
form a consistent cut by the same argument as the periodic ones. (2) The switch is then the
recovery protocol's step from a committed checkpoint (coordinator.py): the old generation is
aborted everywhere before the new one is deployed, each epoch's output comes from exactly one
generation (epochs up to e-1 from the old, which had completed them and whose sinks hold
exactly them; e and later from the new), sinks truncate to e-1 (a no-op here), and the restored
notifications hold in every process's initial progress view, so no notification fires early in
the new plan. (3) What the old generation discards at the abort is only what sources held back
(epochs at or after e), which the new generation's sources emit again from e. Unlike a switch
at a periodic checkpoint, nothing already processed is thrown away and replayed: the output
pauses only for the abort and the new plan's deployment. (4) Liveness: the pause only holds
epochs at or after e, so epochs before e complete as in an undisturbed run; if the checkpoint
has not committed within DRAIN_MAX_S, the pause is lifted (held batches are emitted) and the
switch falls back to the next periodic checkpoint.

When not to drain. A switch because the running plan falls behind (the controller scaling up)
does not drain: the old plan would first have to work off its whole backlog at the capacity
that was too small, and the new plan would start that much later. It switches at once from the
newest committed checkpoint instead (the recovery protocol, same argument), and the new plan
redoes the epochs after it at its larger capacity. Switches that are not urgent (scaling down,
`streamflow reconfigure`) drain.
"""
from __future__ import annotations

import math
import time
from typing import Any

PAUSE_ANSWER_S = 5.0   # every worker answers a pause within this, or the switch falls back
DRAIN_MAX_S = 30.0     # the checkpoint at e-1 commits within this, or the switch falls back
ATTEMPTS = 3           # pauses asked for at later epochs before falling back


class Handover:
    """Mixed into Coordinator (whose state it uses): the drain before a live switch."""

    members: dict[str, Any]
    switch: dict[str, Any] | None
    committed: int | None

    def _margin_epochs(self) -> int:
        """Epochs of about 0.3 s of stream: how far past the sources' frontier seen here a
        pause is asked for, so that it usually reaches them before they get there."""
        return max(1, math.ceil(300 / self.plan.epoch_size)) if self.plan.epoch_unit == "ms" else 3

    def _begin_drain(self, epoch: int | None = None, attempt: int = 1) -> None:
        """Ask every worker to pause its sources at `epoch` (default: past what they reached)."""
        assert self.switch is not None
        if self.switch.get("urgent"):  # falling behind: from the newest checkpoint, at once
            self.switch["drain"] = None
            if self.committed is not None:
                self.switch["after"] = self.committed - 1
            return
        if not self.stateful or not self.options.drain_switch:  # switch as a recovery would
            self.switch["drain"] = None
            return
        e = epoch if epoch is not None else self.observer.sources_reached() + self._margin_epochs()
        self.switch["drain"] = {"epoch": e, "attempt": attempt, "waiting": set(self.members), "late": [],
                                "paused": False, "asked": time.monotonic(),
                                "first_asked": (self.switch.get("drain") or {}).get("first_asked", time.monotonic())}
        self.broadcast("pause-sources", {"run": self.gen_id, "epoch": e})

    def _sources_paused(self, sender: str, body: dict[str, Any]) -> None:
        """A worker's answer to `pause-sources`: once all have paused, announce the checkpoint;
        where some were late, ask again later, or fall back."""
        drain = self.switch.get("drain") if self.switch else None
        if not drain or drain["paused"] or body.get("epoch") != drain["epoch"]:
            return
        drain["waiting"].discard(sender)
        drain["late"] += [int(e) for e in body.get("late", [])]
        if drain["waiting"]:
            return
        if drain["late"]:
            if drain["attempt"] >= ATTEMPTS:
                self._fall_back("sources kept ahead of the pause")
            else:
                self._begin_drain(max(drain["late"]) + self._margin_epochs(), drain["attempt"] + 1)
            return
        drain["paused"] = True
        drain["paused_at"] = time.monotonic()
        self.broadcast("drain-checkpoint", {"run": self.gen_id, "epoch": drain["epoch"] - 1})

    def _fall_back(self, why: str) -> None:
        """Lift the pause; switch at the next periodic checkpoint (and replay from it)."""
        assert self.switch is not None
        self.broadcast("resume-sources", {"run": self.gen_id})
        self.switch["drain"] = None
        self.switch["after"] = self.committed if self.committed is not None else -1
        self.switch["fallback"] = why
        if not self.options.quiet:
            print(f"switch: {why}; switching at the next checkpoint instead", flush=True)

    def _switch_due(self) -> bool:
        """Whether the accepted switch can happen now (its checkpoint has committed)."""
        switch = self.switch
        if switch is None or not self._preloaded_all():  # load the new models first (cluster/preload.py)
            return False
        if "drain" not in switch:
            self._begin_drain()
        drain = switch["drain"]
        now = time.monotonic()
        if drain is None:
            return self.committed is not None and self.committed > switch["after"]
        if not drain["paused"]:
            if now - drain["asked"] > PAUSE_ANSWER_S:
                self._fall_back("not every worker answered the pause")
            return False
        if self.committed is not None and self.committed >= drain["epoch"] - 1:
            switch["drained"] = {"epoch": drain["epoch"], "drain_s": round(now - drain["first_asked"], 3)}
            return True
        if now - drain["paused_at"] > DRAIN_MAX_S:
            self._fall_back(f"the old plan did not drain to epoch {drain['epoch'] - 1} within {DRAIN_MAX_S:g} s")
        return False

    def _draining(self) -> bool:
        """Sources are paused for a switch (workers idle after the drain are not stalled)."""
        drain = self.switch.get("drain") if self.switch else None
        return bool(drain and drain["paused"])
