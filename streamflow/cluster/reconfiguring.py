"""The coordinator's part of live reconfiguration and adaptation: accept a new plan, switch to
it at the next committed checkpoint, and let the controller propose plans window by window."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from streamflow.cluster.observer import ProgressObserver
from streamflow.cluster.outcomes import RunFailed
from streamflow.cluster.protocol import pack
from streamflow.errors import StreamflowError
from streamflow.plan import Plan


class Reconfiguring:
    """Mixed into Coordinator (whose state it uses): switching plans while the run goes on."""

    members: dict[str, Any]
    spares: dict[str, Any]
    standby_sent: dict[str, str]
    standby_ready: dict[str, str]
    deciding: Deciding | None
    unjudged: tuple[dict[str, Any], dict[str, Any] | None] | None

    def _switch_to(self, raw: dict[str, Any], source_path: str, base_dir: str, **extra: Any) -> dict[str, Any]:
        """A switch to plan `raw`, due at the next committed checkpoint; StreamflowError (one
        line) when the plan does not parse or names workers that have not registered."""
        from streamflow.plan import build_graph, parse_plan
        plan = parse_plan(raw, source_path, self.plan.speed, base_dir)
        graph, placement = build_graph(plan)
        missing = [w for w in plan.workers_used() if w not in self.members and w not in self.spares]
        if missing:
            raise StreamflowError(f"workers {', '.join(missing)} have not registered")
        return {"plan": plan, "graph": graph, "placement": placement, "after": self.committed or -1,
                "requested": time.monotonic(), **extra}

    def _accept_reconfiguration(self, identity: bytes, body: Any) -> None:
        """`streamflow reconfigure`: check the new plan now; switch at the next checkpoint."""
        def reply(kind: str, text: str) -> None:
            assert self.router is not None
            self.router.send_multipart([identity, *pack(kind, {"message": text})])
        try:
            if not isinstance(body, dict) or not isinstance(body.get("plan"), dict):
                raise StreamflowError("reconfigure: expected a plan")
            if self.store is None or self.every is None:
                raise StreamflowError("reconfigure: this run keeps no checkpoints (\"recovery\": false)")
            if self.switch is not None:
                raise StreamflowError("reconfigure: another reconfiguration is under way")
            switch = self._switch_to(body["plan"], str(body.get("source_path", "plan.json")),
                                     str(body.get("base_dir", self.plan.base_dir)), identity=identity)
        except StreamflowError as exc:
            reply("reconfigure-refused", f"reconfigure: {str(exc).splitlines()[0]}")
            return
        self.switch = switch
        self._begin_preload()
        reply("reconfigure-accepted", f"switching to {switch['plan'].name!r}: the running plan drains to an "
                                      f"epoch boundary, the new one starts there")

    async def _reconfigure(self) -> None:
        """Stop the generation at the checkpoint just committed (the one the drain announced,
        cluster/handover.py, or a periodic one) and go on from it under the new plan: the same
        protocol as a recovery (so the same argument holds), with operator state re-sharded
        where the placement changed (recovery/reshard.py)."""
        from streamflow.recovery.reshard import ReshardError, reshard
        switch, self.switch = self.switch, None
        assert switch is not None and self.store is not None
        t0 = time.monotonic()
        silent = await self._abort_generation()
        # after the abort: every worker's last progress copies come before its acknowledgement
        # (a checkpoint may commit before the progress that completed its epoch has arrived)
        output_stopped = self.observer.sink_moved_at or t0
        if silent:
            raise RunFailed(f"worker {silent[0].name!r} did not stop for the reconfiguration; "
                            f"last complete epoch: {self._last_epoch()}")
        checkpoint = self.store.latest_checkpoint(self.run_id)
        old_plan = self.plan
        try:
            remapped = reshard(checkpoint, self.placement, switch["placement"]) if checkpoint else None
        except ReshardError as exc:
            remapped, switch = checkpoint, None
            if not self.options.quiet:
                print(f"reconfiguration refused: {exc}; the run goes on with the current plan", flush=True)
            self.record.adaptations.append({"at_s": round(t0 - (self.run_started or t0), 3), "refused": str(exc)})
        self.generation += 1
        if switch is not None:
            self.plan, self.graph, self.placement = switch["plan"], switch["graph"], switch["placement"]
            self.names = self.plan.workers_used()
            for name in list(self.members):
                if name not in self.names:
                    member = self.members.pop(name)
                    member.roles = []
                    self.spares[name] = member
            for name in self.names:
                if name not in self.members:
                    self.members[name] = self.spares.pop(name)
                self.members[name].roles = [name]
        self.checkpoint = remapped
        if remapped is not None:  # the re-sharded checkpoint is the new generation's restore point
            for op, per in remapped.states.items():
                for inst, blob in per.items():
                    self.store.add_snapshot(self.run_id, self.generation, remapped.epoch, op, inst, blob,
                                            remapped.notify.get(op, {}).get(inst, []))
            self.store.commit_empty(self.run_id, self.generation, remapped.epoch)
        c = remapped.epoch if remapped else -1
        self.record.new_generation(self.plan if switch is not None else None)
        self.model.restart_counters()
        self.observer = ProgressObserver(self.graph, self.placement, c + 1,
                                         remapped.notify if remapped else None, earlier=self.observer)
        if switch is not None:
            self.record.adaptations.append({
                **switch.get("decision", {}), "t_s": round(t0 - self.model.t0, 3),
                "summary": summarize(self.plan),
                "at_s": round(t0 - (self.run_started or t0), 3), "epoch": c + 1, "generation": self.generation,
                "from": old_plan.name, "to": self.plan.name, "checkpoint_epoch": c,
                "requested_s_before": round(t0 - switch["requested"], 3),
                "expected_cost_per_hour": self.plan.expected.get("cost_per_hour"),
                "expected_accuracy": self.plan.expected.get("accuracy"),
                "preload_s": (switch.get("preload") or {}).get("seconds"),
                "preload_s_by_worker": (switch.get("preload") or {}).get("by_worker"),
                "drained": bool(switch.get("drained")), "drain_s": (switch.get("drained") or {}).get("drain_s"),
                "fallback": switch.get("fallback"),
                "switch_s": None, "output_pause_s": None, "first_output_s": None,
                "output_stopped_s_before": round(t0 - output_stopped, 3),  # of the pause: before the abort
                "_detected": t0, "_output_stopped": output_stopped})
            self.pending_event = self.record.adaptations[-1]
            if not self.options.quiet:
                how = "drained to" if switch.get("drained") else "from"
                print(f"reconfigured to {self.plan.name!r} {how} checkpoint epoch {c}", flush=True)

    def _begin_preload(self) -> None:
        """Ask every worker of the new plan to load its models now, beside the running plan
        (cluster/preload.py); the switch waits for them (`_preloaded_all`). A worker that has
        every model the new plan gives it loaded already (it runs them, or holds them on warm
        standby) is not asked: its answer would only add a round trip to the switch."""
        assert self.switch is not None
        self.switches_asked += 1
        plan = self.switch["plan"]
        names = plan.workers_used()
        loaded = {name: self._models_loaded(name) for name in names}
        asked = [n for n in names if not _models_of(plan, n) <= loaded[n]]
        self.switch["preload"] = {"serial": self.switches_asked, "waiting": set(asked), "asked": time.monotonic(),
                                  "by_worker": {n: 0.0 for n in names if n not in asked}}
        for name in asked:
            self.send(name, "preload", {"run": self.gen_id, "switch": self.switches_asked, "plan": plan.raw,
                                        "roles": [name], "source_path": plan.source_path,
                                        "base_dir": plan.base_dir, "speed": self.plan.speed})

    def _models_loaded(self, name: str) -> set[tuple[str, str]]:
        """(operator, variant) pairs worker `name` has loaded: what the running plan places on
        it, and what it confirmed holding on warm standby."""
        held = _models_of(self.plan, name) if name in self.members else set()
        if name in self.standby_ready:
            held |= set(json.loads(self.standby_ready[name]).items())
        return held

    def _warm_standby(self) -> None:
        """Under --adapt, ask every spare to keep the running plan's models loaded (the warm
        standby of cluster/preload.py), once per set of variants, so a scale-up onto it does not
        wait for them to load. Switch serial 0 is never a switch's (`_begin_preload` counts from
        1); the answers say which variants the spare holds (`standby_ready`)."""
        if self.controller is None:
            return
        key = json.dumps(variants_of(self.plan), sort_keys=True)
        for name in self.spares:
            if self.standby_sent.get(name) != key:
                self.standby_sent[name] = key
                self.send(name, "preload", {"run": self.gen_id, "switch": 0, "standby": True, "key": key, "roles": [],
                                            "plan": self.plan.raw, "source_path": self.plan.source_path,
                                            "base_dir": self.plan.base_dir, "speed": self.plan.speed})

    def _preloaded(self, sender: str, body: dict[str, Any]) -> None:
        """A worker has loaded the new plan's models (or failed to: its deployment will load them),
        or a spare those of the running plan, on standby."""
        if body.get("standby") and not body.get("error") and isinstance(body.get("key"), str):
            self.standby_ready[sender] = body["key"]
            return
        preload = self.switch.get("preload") if self.switch else None
        if preload is None or body.get("switch") != preload["serial"]:
            return
        preload["waiting"].discard(sender)
        preload["by_worker"][sender] = body.get("seconds")
        if body.get("error") and not self.options.quiet:
            print(f"switch: {sender} could not preload the new plan ({body['error']}); it loads at the switch",
                  flush=True)

    def _preloaded_all(self) -> bool:
        """The new plan's models are loaded everywhere, or PRELOAD_MAX_S has passed."""
        from streamflow.cluster.preload import PRELOAD_MAX_S
        preload = self.switch.get("preload") if self.switch else None
        if preload is None or "seconds" in preload:
            return True
        waited = time.monotonic() - preload["asked"]
        if preload["waiting"] and waited < PRELOAD_MAX_S:
            return False
        preload["seconds"] = round(waited, 3)
        if preload["waiting"] and not self.options.quiet:
            print(f"switch: {', '.join(sorted(preload['waiting']))} still loading after {PRELOAD_MAX_S:g} s; "
                  f"switching anyway", flush=True)
        return True

    # adaptation ----------------------------------------------------------------------------------
    def _close_window(self, running: bool) -> None:
        """Close the live model's window when due; let the controller decide on it, in a thread
        (`Deciding`): re-planning takes the planner 0.4-0.9 s, and the loop meanwhile goes on
        taking progress, stats and checkpoint acknowledgements (a checkpoint that commits in
        that time is an epoch less for a scale-up to redo). A window that closes while a
        decision is under way is judged after it; glances meanwhile are skipped."""
        context = {"generation": self.generation, "workers": len(self.plan.workers_used()),
                   "cost_per_hour": round(sum(self.plan.workers[w].cost_per_hour for w in self.plan.workers_used()), 6),
                   "expected_accuracy": self.plan.expected.get("accuracy"), "variants": variants_of(self.plan),
                   # epochs a switch now would redo: from the newest committed checkpoint to the sources
                   "checkpoint_behind_epochs": (None if self.committed is None else
                                                max(0, self.observer.sources_reached() - self.committed))}
        window = self.model.tick(context)
        glance = self.model.glance(context) if window is None else None
        if window is not None:  # judged as soon as no decision is under way
            self.unjudged = (window, self.model.windows[-2] if len(self.model.windows) > 1 else None)
        if self.deciding is not None:
            self._decided(running)
            if self.deciding is not None:
                return
        if self.controller is None or not running or self.switch is not None:
            self.unjudged = None
            return
        if self.unjudged is not None:
            (window, previous), self.unjudged = self.unjudged, None
            call = partial(self.controller.observe, window, previous, self.plan, window["t_s"])
        elif glance is not None:  # a load step need not wait for the window's end
            window = glance
            call = partial(self.controller.observe_glance, glance, self.plan, glance["t_s"])
        else:
            return
        self.deciding = Deciding(call, window, self.generation)

    def _decided(self, running: bool) -> None:
        """Once the controller's thread has decided: switch to its plan, unless the run moved
        on meanwhile (a recovery or another switch: the decision was made for a plan that no
        longer runs, and the next windows are judged afresh)."""
        deciding = self.deciding
        assert deciding is not None
        if deciding.thread.is_alive():
            return
        self.deciding = None
        if deciding.error is not None:
            if not self.options.quiet:
                print(f"adapt: {deciding.error}", flush=True)
            return
        decision, window = deciding.decision, deciding.window
        if decision is None or not running or self.switch is not None or deciding.generation != self.generation:
            return
        try:
            switch = self._switch_to(decision.plan, self.plan.source_path, self.plan.base_dir, identity=None)
        except StreamflowError as exc:
            if not self.options.quiet:
                print(f"adapt: cannot switch to the re-planned plan: {exc}", flush=True)
            return
        plan = switch["plan"]
        info = {"reason": decision.reason, "degraded": decision.degraded, "notes": decision.notes,
                "target_rate_per_s": round(decision.target_rate, 3), "from_variants": variants_of(self.plan),
                "to_variants": variants_of(plan), "from_cost_per_hour": self.plan.expected.get("cost_per_hour"),
                "from_accuracy": self.plan.expected.get("accuracy"),
                # the controller's thread: part of the reaction (docs/adaptive.md)
                "plan_s": round(deciding.seconds or 0.0, 3)}
        self.switch = {**switch, "decision": info, "urgent": decision.scale_up}
        self._begin_preload()
        if not self.options.quiet:
            print(f"adapt at {window['t_s']:.0f} s: {decision.reason}; switching to {summarize(plan)}"
                  f"{' (degraded)' if decision.degraded else ''}", flush=True)
            for note in decision.notes:
                print(f"  note: {note}", flush=True)


class Deciding:
    """The controller's call on one window (judging it, and re-planning when it calls for a
    change), run in a thread; the coordinator's loop polls `thread` and takes `decision`."""

    def __init__(self, call: Callable[[], Any], window: dict[str, Any], generation: int) -> None:
        self.window, self.generation = window, generation
        self.decision: Any = None
        self.error: str | None = None
        self.seconds: float | None = None
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._run, args=(call,), name="adapt-decide", daemon=True)
        self.thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.decision = call()
        except StreamflowError as exc:
            self.error = str(exc).splitlines()[0]
        except Exception as exc:  # noqa: BLE001 - a bug in the controller: one line, the run goes on
            self.error = f"the controller failed: {type(exc).__name__}: {exc}"
        finally:
            self.seconds = time.monotonic() - self.started


def _models_of(plan: Plan, worker: str) -> set[tuple[str, str]]:
    """(operator, variant) pairs `plan` places on `worker`."""
    return {(n.name, n.variant) for n in plan.nodes if n.variant and any(w == worker for w, _s in n.placement)}


def variants_of(plan: Plan) -> dict[str, str]:
    return {n.name: n.variant for n in plan.nodes if n.variant}


def summarize(plan: Plan) -> str:
    """`detect yolox_nano@320 on edge-1,hub-1` for each operator with a variant."""
    return "; ".join(f"{n.name} {n.variant} on {','.join(w for w, _s in n.placement)}"
                     for n in plan.nodes if n.variant) or plan.name
