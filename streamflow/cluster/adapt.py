"""The adaptive controller behind `streamflow run PLAN --adapt --problem PROBLEM [--slo-ms L]`.

Every window of the live model it asks: is the plan falling behind (the sources offer more
than the plan was made for, queues grow, or p99 latency to a sink is over the SLO, for two
windows in a row; one window when the offered rate over its second half and over the whole
window, or with records queueing, is over the plan's; and between window ends, every 0.5 s,
when the offered rate over the last second and the last two is over it, twice in a row:
`observe_glance`), or has it too much (the sources offer
less than 75 % of it for 16 s, and the planner finds a cheaper plan for what they offer)?
Then it re-plans with the planner's public API at the measured rate (the higher of the window's
and its second half's, with 10 % headroom; a scale-up also for working off the backlog it will
start with, `_catch_up`),
using the service times it measured for the variants and workers it ran in place of the
profiled ones where they are slower (per record, from windows with a backlog, where the capacity
shows; the lower median of the last four windows), at the problem's accuracy floor; where no
plan meets the floor at that rate it takes the most accurate one that keeps up and says so
(graceful degradation); then it spreads each operator's rate over the chosen workers by their
capacity (`spread_by_capacity`). Hysteresis: no
decision within `cooldown_s` of the last adaptation; the first windows of a new generation (its
replay from the checkpoint catching up) are neither judged nor measured; a condition must hold
for two windows (four for scaling down); a plan equal to the running one is not switched to, nor
a plan no cheaper than the running one when scaling down (the rate a plan was made for is
measured under overload, where flow control holds the sources back, so it may sit well under
the load that made it necessary: the cost, not the rate, says whether to go back); a
configuration left because it fell behind is not chosen again for more load within a minute.

The planner knows nothing of the runtime: the controller edits the problem document (rates,
latencies) and turns the planner's plan into one the running dataflow can switch to (the same
sources; operators the planner does not place, such as the tracker and the sinks, stay where
they run, so their state does not need to move).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamflow.cluster.livemodel import GLANCE_S
from streamflow.errors import StreamflowError

log = logging.getLogger(__name__)

HEADROOM = 1.1
OVER_WINDOWS = 2     # windows in a row over capacity or SLO before scaling up
UNDER_WINDOWS = 4    # windows in a row under UNDER_SHARE of the plan before scaling down (16 s)
UNDER_SHARE = 0.75   # below this share of the planned rate a cheaper plan is looked for
SERVICE_WINDOWS = 4  # windows of service measurements kept per operator
WARMUP_WINDOWS = 2   # windows after a new generation starts (its replay catching up) not judged
STEP_GLANCES = 2     # glances in a row (LiveModel.glance, 0.5 s apart) that must show a load step
FLAP_S = 60.0        # a configuration left for overload is not chosen again for overload this soon
DRAIN_S = 10.0       # a scale-up is planned to work off the backlog it starts with within this
REACTION_S = 6.0     # decision -> new plan serving, on the testbed: models loaded beside the running
                     # plan (up to 3.5 s on a 0.25-CPU spare), switch (0.5 s), output pause (2-3 s)


@dataclass
class Decision:
    reason: str
    target_rate: float
    plan: dict[str, Any]
    degraded: bool = False
    notes: list[str] = field(default_factory=list)
    scale_up: bool = False  # the running plan falls behind: switch at once (handover.py)


class Controller:
    """Decides when and to what the running plan should change."""

    def __init__(self, problem_path: str | Path, slo_ms: float | None = None, cooldown_s: float = 15.0) -> None:
        self.problem_path = Path(problem_path)
        self.raw = json.loads(self.problem_path.read_text())
        self.slo_ms = slo_ms
        self.cooldown_s = cooldown_s
        self.last_change_t: float | None = None
        self.over = 0
        self.under = 0
        self.service: dict[str, list[float]] = {}  # operator -> recent windows' p50 ms per record
        self.generation: int | None = None
        self.age = 0  # windows the current generation has run
        self.left: dict[Any, float] = {}  # configuration shape -> when it was left for overload
        self.unprofiled: set[str] = set()  # running variants the problem has no profile of
        self.kept_up: dict[Any, tuple[float, dict[str, Any]]] = {}  # shape -> (rate it served, its plan)
        self.step_glances = 0  # glances in a row that showed a load step (observe_glance)
        self._warming: threading.Thread | None = None

    def prepare(self) -> None:
        """Plan the problem once, in a thread, while the run starts: the first re-plan of a run
        otherwise pays for importing the planner and its solver (0.5-0.9 s on this machine) at
        the moment a load step needs a new plan."""
        def warm() -> None:
            from streamflow_planner.errors import PlannerError
            from streamflow_planner.planning import plan as run_planner
            from streamflow_planner.problem import parse_problem
            try:
                run_planner(parse_problem(copy.deepcopy(self.raw), str(self.problem_path)), "exact", time_limit=20.0)
            except PlannerError as exc:  # the re-plans say it when it matters
                log.debug("planning the problem ahead of the run: %s", exc)
            except Exception as exc:  # noqa: BLE001 - a warm-up: a bug shows in the re-plans, in one line
                log.debug("planning the problem ahead of the run failed: %r", exc)
        self._warming = threading.Thread(target=warm, name="planner-warm", daemon=True)
        self._warming.start()

    def workers(self) -> list[dict[str, Any]]:
        """The problem's workers (name, tier, device, cost, threads): under --local every one is
        started, so a re-planned placement finds its workers registered."""
        tiers = self.raw.get("tier_names", [])
        out = []
        for w in self.raw.get("workers", []):
            tier = tiers[w["tier"]] if isinstance(w.get("tier"), int) and w["tier"] < len(tiers) else str(w.get("tier"))
            out.append({"name": w["name"], "tier": tier, "device": w.get("device", "cpu"),
                        "cost_per_hour": w.get("cost_per_hour", 0.0), "threads": w.get("threads", 1)})
        return out

    # signals -------------------------------------------------------------------------------
    def _arrival(self, window: dict[str, Any], plan: Any, field: str = "rate_per_s") -> float:
        sources = [n.name for n in plan.nodes if n.role == "source"]
        return sum(window.get(field, {}).get(s, 0.0) for s in sources)

    def _step_up(self, window: dict[str, Any], plan: Any, planned: float) -> bool:
        """A load step, seen in one window: the sources offered more than the plan was made for
        (with its headroom) over the window's second half, and either records queue at an
        operator with a variant or the whole window's rate is over too. A burst shorter than
        half a window moves neither the average nor, mostly, the queue; a step does, and waiting
        for a second window would only add its length (4 s) to the reaction. Noisier signals
        (p99, a backlog alone) still need two windows."""
        if not planned or self._arrival(window, plan, "recent_rate_per_s") <= planned * HEADROOM:
            return False
        return self._queued(window, plan) or self._arrival(window, plan) > planned * HEADROOM

    @staticmethod
    def _queued(window: dict[str, Any], plan: Any) -> bool:
        """Records wait at an operator with a variant."""
        return any(window["queue"].get(n.name, 0) > 0 for n in plan.nodes if n.variant is not None)

    def _overloaded(self, window: dict[str, Any], previous: dict[str, Any] | None, planned: float,
                    arrival: float, plan: Any) -> str | None:
        """Why the plan falls behind, if it does. A p99 over the SLO counts only while records
        queue at an operator with a variant or the sources offer more than the plan: without
        either it is the tail of a backlog already worked off (records that waited through a
        switch complete late); a testbed run re-planned on it for a load that had passed (to
        1.13/h, with the cloud host)."""
        short = self._queued(window, plan) or (planned and arrival > planned * HEADROOM)
        if self.slo_ms is not None and short:  # else the p99 is the tail of a backlog already worked off
            over = {s: v["p99"] for s, v in window["latency_ms"].items() if v.get("p99") and v["p99"] > self.slo_ms}
            if over:
                sink, p99 = max(over.items(), key=lambda kv: kv[1])
                return f"p99 to {sink} {p99:.0f} ms over the SLO {self.slo_ms:g} ms"
        if previous is not None:
            grown = {op: q for op, q in window["queue"].items() if q > max(8, 2 * previous["queue"].get(op, 0))}
            if grown:
                op = max(grown, key=grown.get)
                return f"backlog growing at {op} ({previous['queue'].get(op, 0)} -> {grown[op]} batches)"
        if planned and arrival > planned * HEADROOM:
            return f"arrival {arrival:.1f}/s over the planned {planned:.1f}/s"
        return None

    def observe(self, window: dict[str, Any], previous: dict[str, Any] | None, plan: Any,
                now_s: float) -> Decision | None:
        """A decision when this window (with the ones before) calls for one."""
        planned = float(plan.expected.get("throughput_per_s") or 0.0)
        arrival = self._arrival(window, plan)
        offered = max(arrival, self._arrival(window, plan, "recent_rate_per_s"))  # what to plan for
        if window.get("generation") != self.generation:
            self.generation, self.age = window.get("generation"), 0
        self.age += 1
        self._remember(window, plan, arrival)
        if self.age <= WARMUP_WINDOWS:
            return None
        self._measure(window, plan)
        reason = self._overloaded(window, previous, planned, arrival, plan)
        shape = self._shape(plan.raw.get("operators", []))
        if reason and shape in self.kept_up and arrival <= self.kept_up[shape][0]:
            del self.kept_up[shape]  # behind at a rate it once kept up with (a busier host): forget it
        if self._step_up(window, plan, planned):
            reason = f"arrival {offered:.1f}/s over the planned {planned:.1f}/s"
            self.over = max(self.over + 1, OVER_WINDOWS)
        else:
            self.over = self.over + 1 if reason else 0
        self.under = self.under + 1 if (planned and not reason and arrival < UNDER_SHARE * planned) else 0
        if self._cooling(now_s):
            return None
        if self.over >= OVER_WINDOWS:
            target = max(offered, planned) * HEADROOM + self._catch_up(window, plan, offered)
            why = reason or "overload"
        elif self.under >= UNDER_WINDOWS:
            target = max(arrival, 0.1) * HEADROOM
            why = f"arrival {arrival:.1f}/s under {UNDER_SHARE:.0%} of the planned {planned:.1f}/s for " \
                  f"{self.under} windows"
        else:
            return None
        return self._decide(target, why, self.over >= OVER_WINDOWS, window, plan, now_s,
                            served=None if self.over >= OVER_WINDOWS else arrival)

    def observe_glance(self, window: dict[str, Any], plan: Any, now_s: float) -> Decision | None:
        """Between window ends (LiveModel.glance, every 0.5 s): a scale-up when a load step shows,
        so it need not wait for a window's end (4 s) or half. A step shows when the sources offer
        more than the plan's rate with headroom both over the last second and over the last two,
        at STEP_GLANCES glances in a row (a second of evidence: a steady 6 frames/s reads 5-7
        over one second, a short burst moves the one-second rate alone). Looked at once per
        window, half-way through it, a step of 8 s on the testbed was acted on 1.8-2.1 s after
        it showed (the new plan active 3.0-3.7 s after it), and the frames that queued meanwhile
        are what the new plan starts behind with. Nothing else is judged or counted here; the
        window closes and is observed as usual."""
        planned = float(plan.expected.get("throughput_per_s") or 0.0)
        if window.get("generation") != self.generation or self.age < WARMUP_WINDOWS or self._cooling(now_s):
            self.step_glances = 0
            return None
        recent, lately = self._arrival(window, plan, "recent_rate_per_s"), self._arrival(window, plan)
        if not planned or min(recent, lately) <= planned * HEADROOM:
            self.step_glances = 0
            return None
        self.step_glances += 1
        if self.step_glances < STEP_GLANCES:
            return None
        self.step_glances = 0
        offered = max(recent, lately)
        target = max(offered, planned) * HEADROOM + self._catch_up(window, plan, offered)
        return self._decide(target, f"arrival {offered:.1f}/s over the planned {planned:.1f}/s for "
                                    f"{window['span_s'] / 2 + GLANCE_S * (STEP_GLANCES - 1):g} s, seen between "
                                    f"window ends", True, window, plan, now_s)

    def _cooling(self, now_s: float) -> bool:
        return self.last_change_t is not None and now_s - self.last_change_t < self.cooldown_s

    def _remember(self, window: dict[str, Any], plan: Any, arrival: float) -> None:
        """What the running configuration has shown it serves: the highest rate of a window, or
        of its second half, with nothing queued at the operators with a variant and every sink's
        p99 within the SLO (a warm-up window counts too: it kept up while catching up). The half
        counts because a 4 s window of a steady 6 frames/s reads 5.0-6.5 (the run's first window
        also counts from before the sources start): on the testbed one edge kept up at 5.0 and
        5.4 (6.0 and 5.9 over the second halves) and was then not taken back for 6.0/s. A
        configuration that falls behind at a rate it once kept up with loses its record (`observe`)."""
        p99 = max((v.get("p99") or 0.0 for v in window["latency_ms"].values()), default=0.0)
        if self._queued(window, plan) or (self.slo_ms is not None and p99 > self.slo_ms):
            return
        shape = self._shape(plan.raw.get("operators", []))
        arrival = max(arrival, self._arrival(window, plan, "recent_rate_per_s"))
        if arrival > self.kept_up.get(shape, (0.0, {}))[0]:
            self.kept_up[shape] = (arrival, copy.deepcopy(plan.raw))

    def _known(self, rate: float, plan: Any) -> dict[str, Any] | None:
        """The cheapest configuration of this run, cheaper than the running one, that served
        `rate` keeping up (`_remember`; within the headroom: 4 s windows of 3-frame/s cameras
        count 22-26 frames each at a steady 6/s). The planner plans from the profile, made at
        the profiled batch size under the host's CPU quota (int8 YOLOX-nano@512 on a 0.25-CPU
        edge: 158 ms per frame), and measured service times only come from windows with a
        backlog; after a scale-up that worked off its backlog there are none, and the profile
        may rule out the configuration that served this very load before the step (one edge
        at 6 frames/s, p99 260 ms on the testbed)."""
        running = plan.expected.get("cost_per_hour")
        known = [(raw.get("expected", {}).get("cost_per_hour"), raw) for served, raw in self.kept_up.values()
                 if served * HEADROOM >= rate]
        known = [(c, raw) for c, raw in known if c is not None and (running is None or c < running - 1e-9)]
        return copy.deepcopy(min(known, key=lambda cr: cr[0])[1]) if known else None

    def _decide(self, target: float, why: str, scaling_up: bool, window: dict[str, Any], plan: Any,
                now_s: float, served: float | None = None) -> Decision | None:
        """Re-plan for `target` records/s; the decision, unless the plan would not change (or,
        scaling down, not save), or it would go back to where it fell behind a moment ago.
        Scaling down to serve `served` records/s, a configuration of this run that served as
        much is taken where it costs no more than the planner's plan."""
        decision = self.replan(target, window, plan)
        known = self._known(served, plan) if served is not None else None
        if known is not None and (decision is None or known["expected"]["cost_per_hour"]
                                  <= decision.plan.get("expected", {}).get("cost_per_hour", float("inf")) + 1e-9):
            rate = self.kept_up[self._shape(known["operators"])][0]
            decision = Decision("", target, known,
                                notes=[f"back to a configuration that served {rate:.1f}/s earlier in this run, keeping up"])
        if decision is not None and not scaling_up and not self._cheaper(decision.plan, plan):
            decision = None
        if decision is None:
            self.under = 0  # look again after UNDER_WINDOWS more windows, not every window
            return None
        shape = self._shape(decision.plan["operators"])
        if scaling_up and now_s - self.left.get(shape, -FLAP_S) < FLAP_S:
            return None  # it fell behind there a moment ago
        if scaling_up:
            self.left[self._shape(plan.raw.get("operators", []))] = now_s
        decision.reason, decision.scale_up = why, scaling_up
        self.over = self.under = 0
        self.service.clear()  # the next plan runs other variants and workers
        self.last_change_t = now_s
        return decision

    def _catch_up(self, window: dict[str, Any], plan: Any, offered: float) -> float:
        """Records per second a scale-up needs on top of the offered rate to work off, within
        DRAIN_S, the backlog it starts with: the records queued at the operators with a variant,
        what the running plan falls further behind until the new one serves (offered minus
        served, for REACTION_S), and the epochs the new plan redoes from the last checkpoint (it
        switches at once, handover.py): as far as the newest committed checkpoint is behind the
        sources (`checkpoint_behind_epochs`), at least one checkpoint interval. A checkpoint
        commits once every stateful instance has its epoch complete, so behind an overloaded
        plan it lags by more than the interval: 3-4 epochs of 1 s on the testbed, 40-48 frames
        redone. Planned at the offered rate alone, a plan with 10 % spare capacity would take
        ten times the backlog's age to catch up, and the p99 stays over the SLO until it has (a
        testbed run: a second scale-up)."""
        variant_ops = [n.name for n in plan.nodes if n.variant is not None]
        if not variant_ops:
            return 0.0
        per_batch = window.get("records_per_batch", {})
        queued = sum(window["queue"].get(op, 0) * per_batch.get(op, 1.0) for op in variant_ops)
        served = min(window["rate_per_s"].get(op, 0.0) for op in variant_ops)
        every = plan.recovery.every_epochs if plan.recovery.enabled else None
        behind = max(every or 0, window.get("checkpoint_behind_epochs") or 0)
        redo_s = behind * plan.epoch_size / 1000 if every and plan.epoch_unit == "ms" else 0.0
        return (queued + max(0.0, offered - served) * REACTION_S + offered * redo_s) / DRAIN_S

    def _measure(self, window: dict[str, Any], plan: Any) -> None:
        """Per-record service time of each operator with a variant, from windows with a backlog
        at it: the time its batches took over the records they held (`service_ms_per_record`).
        Only a busy instance shows its capacity: under a CPU quota a frame that comes alone runs
        in the quota's slack (int8 YOLOX-nano@512 on a 0.25-CPU testbed edge: 60-80 ms per frame
        alone, 140-190 ms when frames queued). And per record, not per batch: a batching
        operator gathers bigger batches the longer its queue (a 4-frame batch is not 4 times
        slower per frame). Without per-record figures (older workers): instances / records per s."""
        for node in plan.nodes:
            op = node.name
            if node.variant is None or window["queue"].get(op, 0) <= 0:
                continue
            per_record = window.get("service_ms_per_record", {}).get(op)
            rate = window["rate_per_s"].get(op, 0.0)
            if per_record:
                ms = per_record
            elif rate > 0:
                ms = 1000.0 * len(node.placement) / rate
            else:
                continue
            recent = self.service.setdefault(op, [])
            recent.append(ms)
            del recent[:-SERVICE_WINDOWS]

    # re-planning ---------------------------------------------------------------------------------
    def _measured_problem(self, window: dict[str, Any], plan: Any) -> dict[str, Any]:
        """The problem with the service times measured for what ran (ms per record), where
        slower than profiled. The profile is the sustained time under the host's CPU quota; a
        faster measurement is the quota's slack (a queue that formed late in the window: 53 ms
        per frame on a 0.25-CPU edge against 141 profiled), and taken at face value for the one
        worker that ran it gave that worker 87 % of the scaled-up plan's frames (16 of 18.4/s)
        and the others idle: on the testbed it fell behind at once (p99 6.8 s). A measurement
        is taken at the running batch size; the worker's per-batch-size times
        (`execution_latency_ms_by_batch`) are scaled by the same ratio, so the planner still
        chooses the batch size (one frame at a time on a 0.25-CPU edge: 99.7 ms per frame
        against 140.6 in batches of 4, where a batch spans several quota periods)."""
        raw = copy.deepcopy(self.raw)
        lat = raw.get("execution_latency_ms", {})
        by_batch = raw.get("execution_latency_ms_by_batch") or {}
        self.unprofiled = set()
        for node in plan.nodes:
            if node.role != "operator" or node.name not in lat or node.variant is None:
                continue
            recent = sorted(self.service.get(node.name, []))
            if not recent:
                continue
            per_record = recent[(len(recent) - 1) // 2]  # the lower median of the recent windows
            table = lat[node.name].get(node.variant)
            if not isinstance(table, dict):
                self.unprofiled.add(f"{node.name} {node.variant}")
                continue
            running = str(_batch_size(plan.raw, node.name))
            for worker, _share in node.placement:
                if worker not in table:
                    continue
                sizes = (by_batch.get(node.name) or {}).get(node.variant, {}).get(worker)
                profiled = float(sizes.get(running, table[worker])) if isinstance(sizes, dict) else float(table[worker])
                ratio = max(1.0, per_record / profiled) if profiled > 0 else 1.0
                table[worker] = round(float(table[worker]) * ratio, 4)
                if isinstance(sizes, dict):
                    for size in sizes:
                        sizes[size] = round(float(sizes[size]) * ratio, 4)
        return raw

    def replan(self, target_rate: float, window: dict[str, Any], plan: Any) -> Decision | None:
        """The cheapest plan at the accuracy floor for `target_rate`, or the most accurate one
        that keeps up; None when nothing changes."""
        from streamflow_planner.errors import InfeasibleError, PlannerError
        from streamflow_planner.planfile import to_plan
        from streamflow_planner.planning import plan as run_planner
        from streamflow_planner.problem import parse_problem
        if self._warming is not None:  # one planner call at a time (prepare)
            self._warming.join()
            self._warming = None
        raw = self._measured_problem(window, plan)
        base = parse_problem(raw, str(self.problem_path))
        floor = base.threshold
        notes: list[str] = [f"{v} is not profiled in {self.problem_path.name}: the planner cannot use what "
                            f"was measured of it" for v in sorted(self.unprofiled)]
        floors = [floor] + sorted({a for a in self._variant_accuracies() if a < floor}, reverse=True)
        # the SLO is planned for where it can be met; keeping up comes first where it cannot
        attempts = [(f, slo) for f in floors for slo in ([self.slo_ms, None] if self.slo_ms else [None])]
        for f, slo in attempts:
            i = floors.index(f)
            try:
                problem = base.with_overrides(accuracy=f, throughput=target_rate, slo_ms=slo)
                result = run_planner(problem, "exact", time_limit=20.0)
            except InfeasibleError:
                continue
            except PlannerError as exc:
                raise StreamflowError(f"adapt: the planner failed: {exc}") from None
            result, spread = spread_by_capacity(problem, result)
            if spread:
                notes.append(spread)
            new = self._runnable(to_plan(problem, result), plan)
            if self.slo_ms and slo is None:
                notes.append(f"no plan meets the latency SLO of {self.slo_ms:g} ms at {target_rate:.1f}/s; "
                             "planned to keep up without it")
            if i:
                notes.append(f"no plan keeps up at {target_rate:.1f}/s with accuracy >= {floor:g}; "
                             f"degraded to the most accurate that does ({result.evaluation.accuracy:.2f})")
            if self._same(new, plan):
                return None
            return Decision("", target_rate, new, degraded=bool(i), notes=notes)
        return None

    def _variant_accuracies(self) -> list[float]:
        out = []
        for prof in self.raw.get("accuracy", {}).get("per_operator_profiles", []):
            for v in prof.get("variants", {}).values():
                out += [s["output_accuracy"] for s in v.get("samples", [])]
        return out

    def _runnable(self, new: dict[str, Any], current: Any) -> dict[str, Any]:
        """The planner's plan made switchable: the running sources, recovery and placement of the
        operators it does not place."""
        raw = current.raw
        new["sources"] = copy.deepcopy(raw.get("sources", []))
        if "recovery" in raw:
            new["recovery"] = raw["recovery"]
        planned_ml = set((self.raw.get("execution_latency_ms") or {}).keys())
        placed = {n.name: n for n in current.nodes}
        workers = {w["name"]: w for w in new["workers"]}
        for block in ("operators", "sinks"):
            for entry in new.get(block, []):
                if entry["name"] in planned_ml or entry["name"] not in placed:
                    continue
                node = placed[entry["name"]]
                entry.pop("worker", None)
                entry["placement"] = [{"worker": w, "share": s} for w, s in node.placement]
        for entry in raw.get("workers", []):
            used = {w for n in current.nodes for w, _s in n.placement}
            if entry["name"] not in workers and entry["name"] in used and any(
                    e.get("worker") == entry["name"] or any(p["worker"] == entry["name"] for p in e.get("placement", []))
                    for b in ("sources", "operators", "sinks") for e in new.get(b, [])):
                new["workers"].append(copy.deepcopy(entry))
        new["name"] = current.name
        return new

    @staticmethod
    def _shape(ops: list[dict[str, Any]]) -> Any:
        """Variants and worker sets of the operators (shares left out)."""
        return tuple(sorted((o["name"], o.get("variant"), tuple(sorted(p["worker"] for p in o.get("placement", []))))
                            for o in ops))

    @staticmethod
    def _cheaper(new: dict[str, Any], current: Any) -> bool:
        """Whether the planner's plan costs less per hour than the running one (as planned)."""
        ours = current.expected.get("cost_per_hour")
        theirs = new.get("expected", {}).get("cost_per_hour")
        return ours is None or (theirs is not None and theirs < ours - 1e-9)

    def _same(self, new: dict[str, Any], current: Any) -> bool:
        return self._shape(new["operators"]) == self._shape(current.raw.get("operators", []))


def _batch_size(raw: dict[str, Any], op: str) -> int:
    """The batch size a plan document gives operator `op` (1 without a batch setting)."""
    for entry in raw.get("operators", []):
        if entry.get("name") == op:
            return int((entry.get("batch") or {}).get("max_size", 1))
    return 1


def spread_by_capacity(problem: Any, result: Any) -> tuple[Any, str | None]:
    """The planner's result with each operator's rate spread over the workers it chose in
    proportion to their capacity, so every instance runs at the same utilisation; with a note
    saying what that costs. Unchanged where the cost model finds the spread plan infeasible.

    Why: the planner fills the cheapest capacity first (int8 YOLOX-nano@512: three 0.25-CPU
    edges at 6.05 frames/s each, their limit, and the 0.5-CPU hub with 0.2-3 frames/s of its
    16). A scale-up starts with a backlog (the epochs redone from the checkpoint come at once),
    and a weighted partition gives each instance its share of it: the edges bound the catch-up
    at about 21 frames/s while the hub idles; spread by capacity the same workers serve about
    38. Compute is paid per worker-hour, so only the traffic to the hub costs more."""
    from streamflow_planner.costmodel import evaluate
    a = result.assignment
    placement = {op: dict(per) for op, per in a.placement.items()}
    changed = False
    for op, per in placement.items():
        if len(per) < 2:
            continue
        cap = problem.capacity(op, a.variants[op], a.batch_of(problem, op))
        caps = {w: float(cap[problem.worker(w).index]) for w in per}
        if min(caps.values()) <= 0:
            continue
        total, whole = sum(per.values()), sum(caps.values())
        placement[op] = {w: total * caps[w] / whole for w in per}
        changed = changed or any(abs(placement[op][w] - per[w]) > 1e-6 * max(total, 1.0) for w in per)
    if not changed:
        return result, None
    spread = dataclasses.replace(a, placement=placement)
    ev = evaluate(problem, spread, predict_latency=True)
    if ev.violations:
        return result, None
    before = result.evaluation
    note = (f"shares spread over the chosen workers by capacity (same utilisation on each): cost/h "
            f"{before.total_cost:.3f} -> {ev.total_cost:.3f} (communication {before.communication_cost:.3f} -> "
            f"{ev.communication_cost:.3f})")
    return dataclasses.replace(result, assignment=spread, evaluation=ev), note
