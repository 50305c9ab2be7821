"""The coordinator behind `streamflow run plan.json`: waits for (or starts) the plan's workers,
deploys and wires them, starts the sources, watches progress and heartbeats, keeps the run's
checkpoints, recovers from lost workers, and writes the run report, also when the run fails.

Recovery protocol (why nothing is lost or written twice): a run goes through generations. Each
generation is one deployment of the whole plan, started from a checkpoint epoch c (-1 for the
first): every operator instance restores its snapshot at c, every source resumes at c+1, sinks
truncate their files to what they held at c, and every process seeds its progress view with
the sources at c+1 and the restored notifications (recovery/checkpoint.py says why the
snapshots at c form a consistent cut). When a worker is lost, the coordinator aborts the
generation on every survivor and waits until each has acknowledged (its data sockets are
closed without linger, and its progress copies carry the generation's id, so nothing of the
old generation reaches the new one), lets a spare or a survivor take the lost role, and
deploys the next generation from the newest checkpoint committed in the recovery store. So
each epoch's output is produced by exactly one generation: epochs at or before c by earlier
ones (kept by the truncation), epochs after c by the new one (discarded everywhere else).

Security: with keys (or the ephemeral ones of --local) the control socket is a CURVE server that
admits allow-listed keys only, and the coordinator relays each worker's public data key to its
peers inside `wire` (communication/security.py). Every message is checked against its schema, and
run messages count only from the run's members (communication/validate.py).
"""
from __future__ import annotations

import asyncio
import shutil
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from streamflow.cluster.display import LiveView
from streamflow.cluster.handover import Handover
from streamflow.cluster.livemodel import LiveModel, write_timeline_png
from streamflow.cluster.local import LocalWorkers
from streamflow.cluster.observer import ProgressObserver
from streamflow.cluster.protocol import DEAD_AFTER_S, Inbox, pack
from streamflow.cluster.outcomes import Reconfigure, RunFailed, RunInterrupted, WorkerLost
from streamflow.cluster.reconfiguring import Reconfiguring
from streamflow.cluster.recovering import Recovering
from streamflow.cluster.report import RunRecord, write_report
from streamflow.communication import validate
from streamflow.communication.security import COORDINATOR, ephemeral_keys, security_for
from streamflow.communication.transport import PROGRESS
from streamflow.dataflow.graph import Graph
from streamflow.dataflow.worker import stalled_reason
from streamflow.errors import StreamflowError
from streamflow.observe.endpoints import Endpoints
from streamflow.observe.webview import dataflow_view
from streamflow.plan import Plan
from streamflow.recovery.store import Checkpoint, RecoveryStore


STALL_AFTER_S = 2.0   # every worker quiescent and no progress for this long, incomplete: stalled
DRAIN_QUIET_S = 1.0   # after an operator failed: quiescent this long means drained
DRAIN_MAX_S = 15.0    # ... or give up draining after this long
PING_S = 0.5          # the coordinator pings every member this often (workers drop a silent one)


@dataclass
class Options:
    listen: str = "tcp://0.0.0.0:7077"
    local: bool = False
    report: str | None = None
    timeout: float | None = None
    wait: float = 60.0
    credit_window: int = 16 << 20
    quiet: bool = False
    log_dir: str | None = None
    recovery_dir: str | None = None
    spares: int = 0          # --local: spare worker processes to start
    resume: bool = False     # continue the latest run in recovery_dir
    adapt: bool = False      # re-plan online (needs problem)
    problem: str | None = None
    slo_ms: float | None = None
    http_host: str = "127.0.0.1"            # where /metrics and the web view listen
    metrics_port: int | str | None = "auto"  # 9464 or a free port; a port; None: no metrics
    ui_port: int | None = None              # the web view (also serves /metrics)
    keys: str | None = None  # --keys DIR: CURVE on every socket (--local without it: ephemeral keys)
    insecure: bool = False   # --local --insecure: plaintext on loopback, no ephemeral keys
    allow_import: tuple[str, ...] = ()  # --local: passed to the workers started here
    drain_switch: bool = True  # a live switch drains the old plan to an epoch boundary (handover.py);
    # False: it switches at the next periodic checkpoint and replays from it (the fallback; benchmarks)


@dataclass
class Member:
    """A worker taking part in this run."""

    name: str
    identity: bytes
    info: dict[str, Any]
    last_heartbeat: float = field(default_factory=time.monotonic)
    address: str | None = None
    state: str = "registered"
    roles: list[str] = field(default_factory=list)


class Coordinator(Recovering, Reconfiguring, Handover):
    """Runs one plan on its workers, generation after generation when workers are lost."""

    def __init__(self, plan: Plan, graph: Graph, placement: dict[str, list[tuple[str, float]]],
                 options: Options) -> None:
        self.plan = plan
        self.graph = graph
        self.placement = placement
        self.options = options
        self.run_id = uuid.uuid4().hex[:12]
        self.generation = 0
        self.names = plan.workers_used()     # the plan's roles
        self.members: dict[str, Member] = {}  # worker processes taking part, by process name
        self.spares: dict[str, Member] = {}   # registered, not (yet) taking part
        self.heartbeats: dict[str, float] = {}
        self.record = RunRecord(plan)
        self.observer = ProgressObserver(graph, placement)
        self.context = zmq.Context()
        self.ephemeral = ephemeral_keys() if options.local and options.keys is None and not options.insecure else None
        self.keys = options.keys if self.ephemeral is None else str(self.ephemeral)
        self.security = security_for(self.keys, COORDINATOR)
        self.drops = validate.Drops("coordinator")
        self.router: zmq.Socket | None = None
        self.inbox: Inbox | None = None
        self.local: LocalWorkers | None = None
        self.started_at = time.time()
        self.t0 = time.monotonic()
        self.run_started: float | None = None   # when the first generation's sources started
        self.elapsed_before = 0.0               # --resume: seconds the sources had run before
        self.interrupted = False
        self.last_progress_at = time.monotonic()
        self.quiet_since: dict[str, float] = {}  # worker -> since when its stats say quiescent
        out_dir = Path(plan.base_dir) / "out"
        self.report_path = Path(options.report) if options.report else out_dir / f"{plan.name}-run.json"
        self.log_dir = Path(options.log_dir) if options.log_dir else out_dir / "logs"
        self.recovery_dir = Path(options.recovery_dir) if options.recovery_dir else out_dir / f"{plan.name}-recovery"
        self.store: RecoveryStore | None = None
        self.every = plan.recovery.every_epochs if plan.recovery.enabled else None
        self.checkpoint: Checkpoint | None = None   # where the current generation started from
        self.committed: int | None = None          # newest committed checkpoint epoch
        self.stateful: set[tuple[str, int]] = set()
        self.pending_event: dict[str, Any] | None = None  # the last recovery or switch, until output resumes
        self.spare_seq = 0
        self.switch: dict[str, Any] | None = None  # an accepted reconfiguration, until it is done
        self.switches_asked = 0  # serial of the last switch whose models the workers were asked to preload
        self.standby_sent: dict[str, str] = {}  # spare -> the variants it was last asked to keep warm
        self.standby_ready: dict[str, str] = {}  # spare -> the variants it said it holds loaded
        self.deciding: Any = None  # the controller's decision under way (reconfiguring.Deciding)
        self.unjudged: Any = None  # a closed window the controller has not judged yet, with the one before
        self.model = LiveModel()
        self.status = "starting"
        self.endpoints = Endpoints(self, options.http_host, options.metrics_port, options.ui_port)
        self.controller: Any = None
        if options.adapt:
            from streamflow.cluster.adapt import Controller
            if not options.problem:
                raise StreamflowError("--adapt needs --problem PROBLEM.json (what the planner re-plans from)")
            self.controller = Controller(options.problem, options.slo_ms)
            self.controller.prepare()

    @property
    def gen_id(self) -> str:
        return f"{self.run_id}.{self.generation}"

    def role_of(self, process: str) -> list[str]:
        m = self.members.get(process)
        return m.roles if m else []

    # messaging -----------------------------------------------------------------------------------
    def send(self, name: str, kind: str, body: Any = None) -> None:
        assert self.router is not None
        member = self.members.get(name) or self.spares.get(name)
        identity = member.identity if member else name.encode()
        self.router.send_multipart([identity, *pack(kind, body)])

    def broadcast(self, kind: str, body: Any = None) -> None:
        for name in self.members:
            self.send(name, kind, body)

    async def _receive(self, timeout: float) -> tuple[str, str, Any] | None:
        """Next message as (worker, kind, body); heartbeats, progress, spares' registrations and
        checkpoint snapshots are handled here."""
        assert self.inbox is not None
        msg = await self.inbox.get(timeout)
        if msg is None:
            return None
        identity, frames = msg
        assert identity is not None
        return self.accept(identity, frames)

    def accept(self, identity: bytes, frames: list[bytes]) -> tuple[str, str, Any] | None:
        """One message from the control socket, as `_receive` returns it; what does not fit is
        dropped and logged (validate.py), never raised."""
        try:
            return self._accept(identity, frames)
        except Exception as exc:  # noqa: BLE001 - any malformed message, never the run
            self.drops.drop(identity, exc)
            return None

    def _accept(self, identity: bytes, frames: list[bytes]) -> tuple[str, str, Any] | None:
        sender = identity.decode(errors="replace")  # a client without an identity gets a binary one
        if sender.endswith("#hb"):
            if len(frames) != 2 or frames[0] != b"hb":
                raise validate.Invalid("heartbeat is not ('hb', time)")
            self.heartbeats[sender[:-3]] = time.monotonic()
            return None
        if frames and frames[0] == b"progress":
            if not 2 <= len(frames) <= 3:
                raise validate.Invalid("progress copy is not (progress, batch, generation)")
            if len(frames) > 2 and frames[2] != self.gen_id.encode():
                return None  # a copy from an aborted generation
            header = validate.header(frames[1])
            if header[0] == PROGRESS and len(header) == 2 and sender in self.members:
                flat = validate.progress(header[1], len(self.observer.tracker.antichains))
                self.observer.apply(zip(flat[0::3], flat[1::3], flat[2::3]))
                self.last_progress_at = time.monotonic()
                self._note_output_resumed()
            return None
        kind, body = validate.control(frames, validate.TO_COORDINATOR)
        if kind not in ("register", "reconfigure", "bye") and sender not in self.members \
                and not (kind == "preloaded" and sender in self.spares):  # spares load a plan that will use them
            raise validate.Invalid(f"{kind} from a process that is not a member of this run")
        self.heartbeats[sender] = time.monotonic()
        if kind == "register" and sender not in self.members and isinstance(body, dict):
            if sender in self.names and self.run_started is None and not body.get("spare"):
                return sender, kind, body  # one of the plan's workers: _gather takes it
            self._add_spare(sender, body)  # a spare, or a worker a later plan may use
            return None
        if kind == "reconfigure":
            self._accept_reconfiguration(identity, body)
            return None
        if kind == "preloaded" and isinstance(body, dict) and body.get("standby"):
            self._preloaded(sender, body)  # a spare's warm standby, whichever phase the run is in
            return None
        if kind == "snapshot":
            if isinstance(body, dict) and body.get("run") == self.gen_id:
                self._keep_snapshot(body)
            return None
        return sender, kind, body

    def _add_spare(self, name: str, body: dict[str, Any]) -> None:
        if name not in self.spares:
            self.spares[name] = Member(name, name.encode(), body)
            self.record.registered[name] = body
            if not self.options.quiet and self.run_started is not None:
                print(f"spare {name!r} (tier {body.get('tier')}) registered", flush=True)
            if self.run_started is not None:
                self._warm_standby()

    # phases --------------------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        """Run the plan; returns the report (also written to disk). Raises RunFailed on failure."""
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        await self.endpoints.start()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: self._interrupt(main))
        self.security.start(self.context)
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 1000)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self.router.setsockopt(zmq.MAXMSGSIZE, validate.MAX_FRAME_BYTES)
        self.security.server(self.router)
        listen = self.options.listen
        if self.options.local:
            port = self.router.bind_to_random_port("tcp://127.0.0.1")
            listen = f"tcp://127.0.0.1:{port}"
        else:
            self.router.bind(listen)
        self.inbox = Inbox(self.router, router=True)
        status, error = "completed", None
        try:
            self._open_store()
            if self.options.local:
                self.local = LocalWorkers(self.plan, listen, self.log_dir, self.endpoints.workers_metrics,
                                          self.keys, self.options.allow_import)
                self.local.start(self.controller.workers() if self.controller else [])
                for _ in range(self.options.spares):
                    self._start_local_spare()
            await self._gather(listen)
            if not self.options.quiet and self.endpoints.announce():
                print(self.endpoints.announce(), flush=True)
            while True:
                try:
                    await self._deploy()
                    await self._monitor()
                    break
                except WorkerLost as lost:
                    await self._recover(lost)
                except Reconfigure:
                    await self._reconfigure()
        except RunFailed as exc:
            status, error = "failed", str(exc)
        except asyncio.CancelledError:
            status, error = "interrupted", "interrupted"
        finally:
            report = await self._finish(status, error)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        if status == "interrupted":
            raise RunInterrupted(f"interrupted; last complete epoch: {self._last_epoch()} (report: {self.report_path})")
        if status != "completed":
            raise RunFailed(f"{error} (report: {self.report_path})")
        return report

    def _interrupt(self, task: asyncio.Task[Any] | None) -> None:
        self.interrupted = True
        if task is not None:
            task.cancel()

    def _open_store(self) -> None:
        """The recovery store; with --resume, the run and checkpoint to continue from."""
        if self.every is None and not self.options.resume:
            return
        self.store = RecoveryStore(self.recovery_dir)
        if self.options.resume:
            stored = self.store.latest_run()
            if stored is None:
                raise RunFailed(f"--resume {self.recovery_dir}: no run recorded there")
            self.run_id = stored.run_id
            self.elapsed_before = stored.elapsed_s
            self.checkpoint = self.store.latest_checkpoint(stored.run_id)
            self.generation = self.store.next_generation(stored.run_id)
            self.stateful = set(self.store.stateful.get(stored.run_id, set()))
            start = self.checkpoint.epoch + 1 if self.checkpoint else 0
            self.observer = ProgressObserver(self.graph, self.placement, start,
                                             self.checkpoint.notify if self.checkpoint else None)
            if not self.options.quiet:
                where = f"checkpoint epoch {self.checkpoint.epoch}" if self.checkpoint else "the start (no checkpoint)"
                print(f"resuming run {self.run_id} from {where}", flush=True)
            return
        self.store.begin_run(self.run_id, self.plan.raw, self.plan.source_path, self.plan.base_dir,
                             self.plan.speed, self.every)
        self.record.recovery = {"dir": str(self.recovery_dir), "every_epochs": self.every, "checkpoints": 0}

    def _start_local_spare(self) -> None:
        assert self.local is not None
        self.spare_seq += 1
        self.local.start_spare(f"spare-{self.spare_seq}")

    async def _gather(self, listen: str) -> None:
        """Wait until every worker the plan names has registered."""
        deadline = time.monotonic() + self.options.wait
        announced = False
        while set(self.names) - self.members.keys():
            missing = sorted(set(self.names) - self.members.keys())
            if not announced and not self.options.local and not self.options.quiet:
                print(f"coordinator at {listen}: waiting for workers {', '.join(missing)}", flush=True)
                announced = True
            self._check_local_exits("before registering", recoverable=False)
            if time.monotonic() > deadline:
                raise RunFailed(f"workers never registered within {self.options.wait:.0f} s: {', '.join(missing)}")
            msg = await self._receive(0.5)
            if msg is None:
                continue
            sender, kind, body = msg
            if kind != "register" or sender not in self.names or sender in self.members:
                continue
            want = self.plan.workers[sender]
            if body.get("tier") != want.tier:
                raise RunFailed(f"worker {sender!r} registered as tier {body.get('tier')!r}; "
                                f"the plan places it on tier {want.tier!r}")
            if body.get("device", "cpu").split(":")[0] != want.device.split(":")[0] and not self.options.quiet:
                print(f"warning: worker {sender!r} has device {body.get('device')!r}; the plan says "
                      f"{want.device!r}", flush=True)
            self.members[sender] = Member(sender, sender.encode(), body, roles=[sender])
            self.record.registered[sender] = body

    async def _collect(self, kind: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait for `kind` from every member; a failure from any ends the run. Members that have
        answered are pinged meanwhile: a worker that hears nothing for COORDINATOR_SILENCE_S drops
        the run, and one slow member (quantising a model at deploy, say) must not make the quick
        ones give up on a live coordinator."""
        got: dict[str, Any] = {}
        deadline = time.monotonic() + timeout
        last_ping = time.monotonic()
        while len(got) < len(self.members):
            self._check_health()
            if time.monotonic() - last_ping >= PING_S:
                last_ping = time.monotonic()
                self.broadcast("ping", {"run": self.gen_id})
            if time.monotonic() > deadline:
                slow = sorted(set(self.members) - got.keys())
                raise RunFailed(f"no '{kind}' from {', '.join(slow)} within {timeout:.0f} s")
            msg = await self._receive(0.25)
            if msg is None:
                continue
            sender, got_kind, body = msg
            if not isinstance(body, dict) or body.get("run") != self.gen_id:
                continue
            if got_kind == "failed":
                raise RunFailed(f"worker {sender!r}: {body.get('error')}")
            if got_kind == kind and sender in self.members:
                got[sender] = body
                self.members[sender].last_heartbeat = time.monotonic()
        return got

    async def _deploy(self) -> None:
        """Deploy one generation: from the checkpoint in `self.checkpoint` (or the start)."""
        c = self.checkpoint
        start_epoch = c.epoch + 1 if c else 0
        base = {"run": self.gen_id, "plan": self.plan.raw, "source_path": self.plan.source_path,
                "base_dir": self.plan.base_dir, "speed": self.plan.speed,
                "credit_window": self.options.credit_window, "start_epoch": start_epoch,
                "checkpoint_every": self.every, "notify": c.notify if c else {}}
        for name, member in self.members.items():
            states = {role: {op: per[inst] for op, per in (c.states if c else {}).items()
                             for inst in per if self._instance_role(op, inst) == role}
                      for role in member.roles}
            self.send(name, "deploy", {**base, "roles": member.roles, "states": states})
        deployed = await self._collect("deployed", timeout=120.0)
        try:
            peers = {role: addr for d in deployed.values()
                     for role, addr in validate.str_map(d["addresses"], "deployed.addresses").items()}
            keys = {role: key for d in deployed.values()
                    for role, key in validate.str_map(d.get("keys", {}), "deployed.keys").items()}
        except validate.Invalid as exc:
            raise RunFailed(f"a worker deployed with {exc}") from None
        self.broadcast("wire", {"run": self.gen_id, "peers": peers, "keys": keys})
        ready = await self._collect("ready", timeout=120.0)
        stateful = {(op, int(i)) for body in ready.values() for op, i in body.get("stateful", [])}
        if self.store is not None and (stateful or not self.options.resume):
            self.stateful = stateful
            self.store.set_stateful(self.run_id, stateful)
        now = time.monotonic()
        elapsed = None
        if self.run_started is not None:
            elapsed = now - self.run_started + self.elapsed_before
        elif self.options.resume:
            elapsed = self.elapsed_before
        if self.run_started is None:
            self.run_started = now - self.elapsed_before
        self.status = "running"
        self.broadcast("start", {"run": self.gen_id, "elapsed": elapsed})
        self._warm_standby()
        for m in self.members.values():
            m.state = "running"
            m.last_heartbeat = now
        self.last_progress_at = now
        self.quiet_since.clear()
        if self.pending_event is not None and "_detected" in self.pending_event:
            took = round(now - self.pending_event.pop("_detected"), 3)
            if "worker" not in self.pending_event:  # a switch: abort to the new generation started
                self.pending_event["switch_s"] = took
                self.pending_event["_started"] = now
                return
            self.pending_event["recovery_s"] = took
            if not self.options.quiet:
                f = self.pending_event
                print(f"recovered from the loss of {f['worker']!r} in {f['recovery_s']:.2f} s: generation "
                      f"{self.generation} on {f['taken_over_by']!r} from checkpoint epoch {f['checkpoint_epoch']} "
                      f"({f['epochs_replayed']} epochs replayed)", flush=True)

    def _instance_role(self, op: str, instance: int) -> str | None:
        where = self.placement.get(op, [])
        return where[instance][0] if instance < len(where) else None

    def _keep_snapshot(self, body: dict[str, Any]) -> None:
        """A snapshot from the current generation: into the store; a checkpoint commits when
        every stateful instance has sent its snapshot of that epoch."""
        if self.store is None:
            return
        epoch = int(body["epoch"])
        if self.store.add_snapshot(self.run_id, self.generation, epoch, body["op"], int(body["instance"]),
                                   body["state"], list(body.get("notify", []))):
            if self.committed is None or epoch > self.committed:
                self.committed = epoch
                self.record.recovery["checkpoints"] = self.record.recovery.get("checkpoints", 0) + 1
                self.record.recovery["last_checkpoint_epoch"] = epoch
                if self.run_started is not None:
                    self.store.set_status(self.run_id, "running", time.monotonic() - self.run_started)

    async def _monitor(self) -> None:
        done: set[str] = set()
        last_ping = 0.0
        failure: tuple[str, str] | None = None  # (worker, error) once an operator failed
        drain_deadline = 0.0
        with LiveView(self.plan.name, quiet=self.options.quiet) as view:
            while len(done) < len(self.members):
                now = time.monotonic()
                if now - last_ping >= PING_S:
                    last_ping = now
                    self.broadcast("ping", {"run": self.gen_id})
                    for name in self.spares:
                        self.send(name, "ping", {"run": None})
                    view.update(self.record, self.observer, now - (self.run_started or now))
                self._check_health()
                self._close_window(failure is None and not done)
                if self.options.timeout is not None and now - self.t0 > self.options.timeout:
                    raise RunFailed(f"timed out after {self.options.timeout:g} s; last complete epoch: "
                                    f"{self._last_epoch()}")
                if failure is not None and (self._settled(now, DRAIN_QUIET_S) or now > drain_deadline):
                    raise RunFailed(f"worker {failure[0]!r} failed: {failure[1]}; last complete epoch: "
                                    f"{self._last_epoch()}")
                if failure is None and self._switch_due():
                    raise Reconfigure()
                if failure is None and not done and self._settled(now, STALL_AFTER_S) \
                        and not self.observer.complete() and not self._draining():
                    raise RunFailed(stalled_reason(self.graph, self.observer.topology, self.observer.tracker))
                msg = await self._receive(0.1)
                if msg is None:
                    continue
                sender, kind, body = msg
                if not isinstance(body, dict) or body.get("run") not in (None, self.gen_id):
                    continue
                if kind == "stats":
                    self.record.add_stats(body.get("role", sender), body["stats"])
                    self.model.add_stats(body.get("role", sender), body["stats"])
                    self.endpoints.observe_stats(body.get("role", sender), body["stats"])
                    self._note_quiescence(sender, body["stats"])
                elif kind == "sources-paused":
                    self._sources_paused(sender, body)
                elif kind == "preloaded":
                    self._preloaded(sender, body)
                elif kind == "done":
                    done.add(sender)
                    self.members[sender].state = "done"
                elif kind == "failed" and body.get("draining") and failure is None:
                    # an operator failed: let every epoch before it reach the sinks, then stop
                    failure = (sender, str(body.get("error")))
                    drain_deadline = time.monotonic() + DRAIN_MAX_S
                    self.broadcast("drain", {"run": self.gen_id})
                elif kind in ("failed", "aborted") and failure is None:
                    raise RunFailed(f"worker {sender!r} {kind}: {body.get('error')}; last complete epoch: "
                                    f"{self._last_epoch()}")
            view.update(self.record, self.observer, time.monotonic() - (self.run_started or 0))

    # health --------------------------------------------------------------------------------------
    def _note_quiescence(self, worker: str, stats: dict[str, Any]) -> None:
        if stats.get("quiescent"):
            self.quiet_since.setdefault(worker, time.monotonic())
        else:
            self.quiet_since.pop(worker, None)

    def _settled(self, now: float, seconds: float) -> bool:
        """Every running worker has reported itself quiescent, and no progress has moved, for
        `seconds`: nothing will happen any more unless something new arrives."""
        running = [n for n, m in self.members.items() if m.state == "running"]
        if not running or now - self.last_progress_at < seconds:
            return False
        return all(now - self.quiet_since.get(n, now) >= seconds for n in running)

    def _last_epoch(self) -> str:
        e = self.observer.last_complete_epoch()
        return "none" if e is None else str(e)

    def _check_local_exits(self, when: str, recoverable: bool = True) -> None:
        if self.local is None:
            return
        for name, code in self.local.exited().items():
            if name in self.spares:
                del self.spares[name]
                continue
            if name not in self.members or self.members[name].state == "done":
                continue
            tail = self.local.log_tail(name, 3).replace("\n", " | ")
            if recoverable and self.run_started is not None:
                last = max(self.heartbeats.get(name, 0.0), self.members[name].last_heartbeat)
                raise WorkerLost(name, f"exited with status {code}", time.monotonic() - last)
            raise RunFailed(f"worker {name!r} exited with status {code} {when}"
                            f"{'; last log lines: ' + tail if tail else ''} "
                            f"(log: {self.log_dir / (name + '.log')})")

    def _check_health(self) -> None:
        """A member silent for DEAD_AFTER_S, or whose process ended, is lost."""
        self._check_local_exits("during the run")
        now = time.monotonic()
        for name, member in self.members.items():
            if member.state == "done":
                continue
            last = max(self.heartbeats.get(name, 0.0), member.last_heartbeat)
            if now - last > DEAD_AFTER_S:
                member.state = "lost"
                if self.run_started is not None:
                    raise WorkerLost(name, f"stopped responding (no heartbeat for {now - last:.1f} s)", now - last)
                raise RunFailed(f"worker {name!r} stopped responding (no heartbeat for "
                                f"{now - last:.1f} s); last complete epoch: {self._last_epoch()}")

    async def _finish(self, status: str, error: str | None) -> dict[str, Any]:
        """Stop the workers, gather their last stats, write the report."""
        if status == "completed":
            self.broadcast("release", {"run": self.gen_id})
        else:
            for name, m in self.members.items():
                if m.state not in ("lost", "stopped"):
                    self.send(name, "abort", {"run": self.gen_id})
            await self._drain_final_stats(2.0)
        if self.local is not None:
            for name in list(self.members) + list(self.spares):
                self.send(name, "shutdown")
            await asyncio.sleep(0)
            self.local.stop()
        else:
            for name in self.spares:
                self.send(name, "ping", {"run": None})
        duration = time.monotonic() - (self.run_started or self.t0)
        if self.store is not None:
            self.store.set_status(self.run_id, status, duration)
            self.store.close()
        for f in self.record.failures + self.record.adaptations:
            for key in [k for k in f if k.startswith("_")]:
                del f[key]
        self.status = status
        report = self.record.build(status, error, duration, self.observer, self.started_at)
        report["run_id"] = self.run_id
        report["timeline"] = self.model.windows
        report["dataflow"] = dataflow_view(self.plan)
        report["metrics"] = self.endpoints.urls()
        report["dropped_messages"] = {"coordinator": self.drops.count, **{
            role: stats.get("dropped", 0) for role, stats in self.record.latest.items()}}
        if self.options.slo_ms is not None:
            report["slo_ms"] = self.options.slo_ms
        events = [{"t_s": f["t_s"], "label": f"lost {f['worker']}"} for f in self.record.failures if "t_s" in f]
        events += [{"t_s": a["t_s"], "label": f"{a.get('reason', 'reconfigured')} -> {a.get('summary', a.get('to'))}"}
                   for a in self.record.adaptations if "t_s" in a]
        try:
            png = write_timeline_png(self.model.windows, events, self.report_path.with_suffix(".timeline.png"),
                                     f"{self.plan.name}: {status}", self.options.slo_ms,
                                     [n.name for n in self.plan.nodes if n.role == "source"])
            if png is not None:
                report["timeline_png"] = str(png)
        except (OSError, ValueError) as exc:
            report["timeline_png"] = f"not written: {exc}"
        accuracy = self._evaluate()
        if accuracy:
            report["accuracy"] = accuracy
            self.endpoints.measured(accuracy)
        write_report(self.report_path, report)
        await self.endpoints.stop()
        if self.inbox is not None:
            self.inbox.close()
        if self.router is not None:
            self.router.close(linger=500)
        self.security.stop()
        self.context.term()
        if self.ephemeral is not None:
            shutil.rmtree(self.ephemeral, ignore_errors=True)
        return report

    def _evaluate(self) -> dict[str, Any]:
        """Accuracy of what the sinks wrote against ground truth (sinks that ask for it)."""
        from streamflow.cluster.evaluation import evaluate
        try:
            measured = evaluate(self.plan)
        except (StreamflowError, OSError, ValueError, KeyError) as exc:
            return {"error": f"evaluation failed: {exc}"}
        if measured and "accuracy" in self.plan.expected:
            measured["planner_predicted"] = self.plan.expected["accuracy"]
        return measured

    async def _drain_final_stats(self, seconds: float) -> None:
        """After an abort, take in the stats workers send on their way out."""
        deadline = time.monotonic() + seconds
        pending = {n for n, m in self.members.items() if m.state not in ("lost", "done", "stopped")}
        while pending and time.monotonic() < deadline:
            try:
                msg = await self._receive(0.1)
            except asyncio.CancelledError:
                break
            if msg is None:
                continue
            sender, kind, body = msg
            if kind == "stats" and isinstance(body, dict) and body.get("run") == self.gen_id:
                self.record.add_stats(body.get("role", sender), body["stats"])
            elif kind in ("aborted", "failed", "done"):
                pending.discard(sender)
