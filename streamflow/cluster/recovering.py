"""The coordinator's part of recovery: abort a generation, hand the lost roles over, go on from
the newest committed checkpoint (the protocol and its safety argument: coordinator.py)."""
from __future__ import annotations

import time
from typing import Any

from streamflow.cluster.observer import ProgressObserver
from streamflow.cluster.outcomes import RunFailed, WorkerLost
from streamflow.cluster.protocol import DEAD_AFTER_S
from streamflow.cluster.takeover import Candidate, choose
from streamflow.recovery.store import Checkpoint

ABORT_ACK_S = 5.0     # survivors acknowledge a generation's abort within this, or count as lost


class Recovering:
    """Mixed into Coordinator (whose state it uses): what happens when a worker is lost."""

    members: dict[str, Any]
    spares: dict[str, Any]

    async def _recover(self, lost: WorkerLost) -> None:
        """Abort the generation, give the lost roles to a spare or a survivor, and go on from
        the newest committed checkpoint; RunFailed when that is not possible."""
        dead = self.members.pop(lost.name)
        before = self.observer.last_complete_epoch()
        silent = await self._abort_generation()
        last = self._last_epoch()
        if self.store is None:
            raise RunFailed(f"{lost}; last complete epoch: {last} (recovery is off in this plan)")
        roles = dead.roles + [r for m in silent for r in m.roles]
        if self.local is not None:  # an edge box that reboots: its process comes back as a spare
            self._start_local_spare()
            await self._await_spares(3.0)
        taken: list[str] = []
        for role in roles:
            candidates = [Candidate(n, m.info.get("tier", ""), m.roles, False) for n, m in self.members.items()]
            candidates += [Candidate(n, m.info.get("tier", ""), [], True) for n, m in self.spares.items()
                           if time.monotonic() - self.heartbeats.get(n, 0.0) < DEAD_AFTER_S]
            pick = choose(role, self.plan.workers[role].tier, candidates, self.plan.expected)
            if pick is None:
                raise RunFailed(f"{lost}: no spare, and no survivor has room for its operators; "
                                f"last committed epoch: {last}")
            member = self.members.get(pick.name) or self.spares.pop(pick.name)
            member.roles = member.roles + [role]
            self.members[pick.name] = member
            taken.append(pick.name)
        self.checkpoint = self.store.latest_checkpoint(self.run_id) if self.stateful else None
        if not self.stateful and before is not None:  # no state anywhere: every complete epoch is a checkpoint
            self.checkpoint = Checkpoint(before, {}, {})
        c = self.checkpoint.epoch if self.checkpoint else -1
        info = {"worker": lost.name, "roles": roles, "reason": lost.reason,
                "t_s": round(lost.at - self.model.t0, 3),
                "detected_after_s": round(lost.silent_s, 3), "generation": self.generation + 1,
                "checkpoint_epoch": c if c >= 0 else None, "taken_over_by": ",".join(taken),
                "epochs_replayed": (before - c) if before is not None else 0,
                "output_pause_s": None, "_detected": lost.at,
                "_output_stopped": self.observer.sink_moved_at or lost.at}
        self.record.failures.append(info)
        self.pending_event = info
        self.store.add_failure(self.run_id, {k: v for k, v in info.items() if not k.startswith("_")})
        if not self.options.quiet:
            print(f"{lost}; recovering from checkpoint epoch {c if c >= 0 else 'none (start)'}", flush=True)
        self.generation += 1
        self.record.new_generation()
        self.model.restart_counters()
        self.observer = ProgressObserver(self.graph, self.placement, c + 1,
                                         self.checkpoint.notify if self.checkpoint else None, earlier=self.observer)

    async def _abort_generation(self) -> list[Any]:
        """Stop the generation everywhere and wait for each survivor to say it has stopped;
        those that do not answer are lost too (returned)."""
        waiting = set(self.members)
        for name in waiting:
            self.send(name, "abort", {"run": self.gen_id, "regenerate": True})
        deadline = time.monotonic() + ABORT_ACK_S
        while waiting and time.monotonic() < deadline:
            for name, code in (self.local.exited().items() if self.local else []):
                waiting.discard(name)
            msg = await self._receive(0.1)
            if msg is None:
                continue
            sender, kind, body = msg
            if kind in ("aborted", "failed", "done") and isinstance(body, dict) and body.get("run") == self.gen_id:
                waiting.discard(sender)
                if sender in self.members:
                    self.members[sender].state = "stopped"
            elif kind == "stats" and isinstance(body, dict) and body.get("run") == self.gen_id:
                self.record.add_stats(body.get("role", sender), body["stats"])
        return [self.members.pop(name) for name in waiting]  # silent: lost as well

    async def _await_spares(self, seconds: float) -> None:
        """Give a restarted local worker the time to register as a spare."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.spares:
            await self._receive(0.1)

    def _note_output_resumed(self) -> None:
        f = self.pending_event
        if f is not None and self.observer.sink_moved_at is not None and "_detected" not in f:
            f["output_pause_s"] = round(self.observer.sink_moved_at - f.pop("_output_stopped"), 3)
            if "_started" in f:  # of the pause: the new generation's start to its first output at a sink
                f["first_output_s"] = round(self.observer.sink_moved_at - f.pop("_started"), 3)
            self.pending_event = None
