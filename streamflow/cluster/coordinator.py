"""The coordinator behind `streamflow run plan.json`: waits for (or starts) the plan's workers,
deploys and wires them, starts the sources, watches progress and heartbeats, and writes the
run report, also when the run fails.
"""
from __future__ import annotations

import asyncio
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import zmq

from streamflow.cluster.display import LiveView
from streamflow.cluster.local import LocalWorkers
from streamflow.cluster.observer import ProgressObserver
from streamflow.cluster.protocol import DEAD_AFTER_S, Inbox, pack, unpack
from streamflow.cluster.report import RunRecord, write_report
from streamflow.communication.transport import PROGRESS
from streamflow.dataflow.graph import Graph
from streamflow.dataflow.worker import stalled_reason
from streamflow.errors import StreamflowError
from streamflow.plan import Plan


STALL_AFTER_S = 2.0   # every worker quiescent and no progress for this long, incomplete: stalled
DRAIN_QUIET_S = 1.0   # after an operator failed: quiescent this long means drained
DRAIN_MAX_S = 15.0    # ... or give up draining after this long


class RunFailed(StreamflowError):
    """The run could not complete (a worker died or failed, a timeout); the report is written."""


class RunInterrupted(RunFailed):
    """Ctrl-C or SIGTERM ended the run; the report is written."""

    exit_status = 130


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


@dataclass
class Member:
    """A worker taking part in this run."""

    name: str
    identity: bytes
    info: dict[str, Any]
    last_heartbeat: float = field(default_factory=time.monotonic)
    address: str | None = None
    state: str = "registered"


class Coordinator:
    """Runs one plan on its workers."""

    def __init__(self, plan: Plan, graph: Graph, placement: dict[str, list[tuple[str, float]]],
                 options: Options) -> None:
        self.plan = plan
        self.graph = graph
        self.placement = placement
        self.options = options
        self.run_id = uuid.uuid4().hex[:12]
        self.names = plan.workers_used()
        self.members: dict[str, Member] = {}
        self.heartbeats: dict[str, float] = {}
        self.record = RunRecord(plan)
        self.observer = ProgressObserver(graph, placement)
        self.context = zmq.Context()
        self.router: zmq.Socket | None = None
        self.inbox: Inbox | None = None
        self.local: LocalWorkers | None = None
        self.started_at = time.time()
        self.t0 = time.monotonic()
        self.run_started: float | None = None
        self.interrupted = False
        self.last_progress_at = time.monotonic()
        self.quiet_since: dict[str, float] = {}  # worker -> since when its stats say quiescent
        out_dir = Path(plan.base_dir) / "out"
        self.report_path = Path(options.report) if options.report else out_dir / f"{plan.name}-run.json"
        self.log_dir = Path(options.log_dir) if options.log_dir else out_dir / "logs"

    # messaging -----------------------------------------------------------------------------------
    def send(self, name: str, kind: str, body: Any = None) -> None:
        assert self.router is not None
        member = self.members.get(name)
        identity = member.identity if member else name.encode()
        self.router.send_multipart([identity, *pack(kind, body)])

    def broadcast(self, kind: str, body: Any = None) -> None:
        for name in self.members:
            self.send(name, kind, body)

    async def _receive(self, timeout: float) -> tuple[str, str, Any] | None:
        """Next message as (worker, kind, body); heartbeats and progress are handled here."""
        assert self.inbox is not None
        msg = await self.inbox.get(timeout)
        if msg is None:
            return None
        identity, frames = msg
        assert identity is not None
        sender = identity.decode(errors="replace")
        if sender.endswith("#hb"):
            self.heartbeats[sender[:-3]] = time.monotonic()
            return None
        kind = frames[0].decode()
        if kind == "progress":
            header = msgpack.unpackb(frames[1], use_list=False)
            if header[0] == PROGRESS:
                flat = header[1]
                self.observer.apply(zip(flat[0::3], flat[1::3], flat[2::3]))
                self.last_progress_at = time.monotonic()
            return None
        _, body = unpack(frames)
        self.heartbeats[sender] = time.monotonic()
        return sender, kind, body

    # phases --------------------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        """Run the plan; returns the report (also written to disk). Raises RunFailed on failure."""
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: self._interrupt(main))
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 1000)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        listen = self.options.listen
        if self.options.local:
            port = self.router.bind_to_random_port("tcp://127.0.0.1")
            listen = f"tcp://127.0.0.1:{port}"
        else:
            self.router.bind(listen)
        self.inbox = Inbox(self.router, router=True)
        status, error = "completed", None
        try:
            if self.options.local:
                self.local = LocalWorkers(self.plan, listen, self.log_dir)
                self.local.start()
            await self._gather(listen)
            await self._deploy()
            await self._monitor()
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

    async def _gather(self, listen: str) -> None:
        """Wait until every worker the plan names has registered."""
        deadline = time.monotonic() + self.options.wait
        announced = False
        while set(self.names) - self.members.keys():
            missing = sorted(set(self.names) - self.members.keys())
            if not announced and not self.options.local and not self.options.quiet:
                print(f"coordinator at {listen}: waiting for workers {', '.join(missing)}", flush=True)
                announced = True
            self._check_local_exits("before registering")
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
            self.members[sender] = Member(sender, sender.encode(), body)
            self.record.registered[sender] = body

    async def _collect(self, kind: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait for `kind` from every member; a failure from any ends the run."""
        got: dict[str, Any] = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(self.members):
            self._check_health()
            if time.monotonic() > deadline:
                slow = sorted(set(self.members) - got.keys())
                raise RunFailed(f"no '{kind}' from {', '.join(slow)} within {timeout:.0f} s")
            msg = await self._receive(0.25)
            if msg is None:
                continue
            sender, got_kind, body = msg
            if isinstance(body, dict) and body.get("run") not in (None, self.run_id):
                continue
            if got_kind == "failed":
                raise RunFailed(f"worker {sender!r}: {body.get('error')}")
            if got_kind == kind and sender in self.members:
                got[sender] = body
        return got

    async def _deploy(self) -> None:
        body = {"run": self.run_id, "plan": self.plan.raw, "source_path": self.plan.source_path,
                "base_dir": self.plan.base_dir, "speed": self.plan.speed,
                "credit_window": self.options.credit_window}
        self.broadcast("deploy", body)
        deployed = await self._collect("deployed")
        peers = {name: d["address"] for name, d in deployed.items()}
        self.broadcast("wire", {"run": self.run_id, "peers": peers})
        await self._collect("ready")
        self.run_started = time.monotonic()
        self.broadcast("start", {"run": self.run_id})
        for m in self.members.values():
            m.state = "running"

    async def _monitor(self) -> None:
        done: set[str] = set()
        last_ping = 0.0
        failure: tuple[str, str] | None = None  # (worker, error) once an operator failed
        drain_deadline = 0.0
        with LiveView(self.plan.name, quiet=self.options.quiet) as view:
            while len(done) < len(self.members):
                now = time.monotonic()
                if now - last_ping >= 0.5:
                    last_ping = now
                    self.broadcast("ping", {"run": self.run_id})
                    view.update(self.record, self.observer, now - (self.run_started or now))
                self._check_health()
                if self.options.timeout is not None and now - self.t0 > self.options.timeout:
                    raise RunFailed(f"timed out after {self.options.timeout:g} s; last complete epoch: "
                                    f"{self._last_epoch()}")
                if failure is not None and (self._settled(now, DRAIN_QUIET_S) or now > drain_deadline):
                    raise RunFailed(f"worker {failure[0]!r} failed: {failure[1]}; last complete epoch: "
                                    f"{self._last_epoch()}")
                if failure is None and not done and self._settled(now, STALL_AFTER_S) \
                        and not self.observer.complete():
                    raise RunFailed(stalled_reason(self.graph, self.observer.topology, self.observer.tracker))
                msg = await self._receive(0.1)
                if msg is None:
                    continue
                sender, kind, body = msg
                if isinstance(body, dict) and body.get("run") not in (None, self.run_id):
                    continue
                if kind == "stats":
                    self.record.add_stats(sender, body["stats"])
                    self._note_quiescence(sender, body["stats"])
                elif kind == "done":
                    done.add(sender)
                    self.members[sender].state = "done"
                elif kind == "failed" and body.get("draining") and failure is None:
                    # an operator failed: let every epoch before it reach the sinks, then stop
                    failure = (sender, str(body.get("error")))
                    drain_deadline = time.monotonic() + DRAIN_MAX_S
                    self.broadcast("drain", {"run": self.run_id})
                elif kind in ("failed", "aborted") and failure is None:
                    raise RunFailed(f"worker {sender!r} {kind}: {body.get('error')}; last complete epoch: "
                                    f"{self._last_epoch()}")
            view.update(self.record, self.observer, time.monotonic() - (self.run_started or 0))

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

    def _check_local_exits(self, when: str) -> None:
        if self.local is None:
            return
        for name, code in self.local.exited().items():
            if name in self.members and self.members[name].state == "done":
                continue
            tail = self.local.log_tail(name, 3).replace("\n", " | ")
            raise RunFailed(f"worker {name!r} exited with status {code} {when}"
                            f"{'; last log lines: ' + tail if tail else ''} "
                            f"(log: {self.log_dir / (name + '.log')})")

    def _check_health(self) -> None:
        """A member silent for DEAD_AFTER_S is gone: name it and the last complete epoch."""
        self._check_local_exits("during the run")
        now = time.monotonic()
        for name, member in self.members.items():
            if member.state == "done":
                continue
            last = max(self.heartbeats.get(name, 0.0), member.last_heartbeat)
            if now - last > DEAD_AFTER_S:
                member.state = "lost"
                raise RunFailed(f"worker {name!r} stopped responding (no heartbeat for "
                                f"{now - last:.1f} s); last complete epoch: {self._last_epoch()}")

    async def _finish(self, status: str, error: str | None) -> dict[str, Any]:
        """Stop the workers, gather their last stats, write the report."""
        if status == "completed":
            self.broadcast("release", {"run": self.run_id})
        else:
            for name, m in self.members.items():
                if m.state != "lost":
                    self.send(name, "abort", {"run": self.run_id})
            await self._drain_final_stats(2.0)
        if self.local is not None:
            for name in self.members:
                self.send(name, "shutdown")
            await asyncio.sleep(0)
            self.local.stop()
        duration = time.monotonic() - (self.run_started or self.t0)
        report = self.record.build(status, error, duration, self.observer, self.started_at)
        accuracy = self._evaluate()
        if accuracy:
            report["accuracy"] = accuracy
        write_report(self.report_path, report)
        if self.inbox is not None:
            self.inbox.close()
        if self.router is not None:
            self.router.close(linger=500)
        self.context.term()
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
        pending = {n for n, m in self.members.items() if m.state not in ("lost", "done")}
        while pending and time.monotonic() < deadline:
            try:
                msg = await self._receive(0.1)
            except asyncio.CancelledError:
                break
            if msg is None:
                continue
            sender, kind, body = msg
            if kind == "stats":
                self.record.add_stats(sender, body["stats"])
            elif kind in ("aborted", "failed", "done"):
                pending.discard(sender)
