"""The worker daemon behind `streamflow-worker`: registers with a coordinator, heartbeats, and
runs the operator instances each deployment places on it, one run after another.

A run goes deploy (build the graph, bind the data socket) -> wire (connect to peers) -> start ->
done/failed/aborted. CPU-heavy operator work runs in a thread pool so the event loop keeps
moving data, progress and control messages.

With keys, every socket is CURVE (communication/security.py): the control and heartbeat sockets
dial the coordinator's public key, the data socket serves this worker's own, and a coordinator
that refuses our key ends the daemon with one line. Plans arrive over the network, so the
daemon imports only allowed modules (streamflow/imports.py) and checks every control message
(communication/validate.py).
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import zmq

from streamflow.cluster.protocol import HEARTBEAT_S, Heartbeat, Inbox, pack
from streamflow.cluster.stats import worker_stats
from streamflow.communication import validate
from streamflow.communication.codec import pack_value, unpack_value
from streamflow.communication.security import PLAINTEXT, Security, handshake_refusal
from streamflow.communication.transport import ZmqTransport, advertised
from streamflow.dataflow.worker import Worker
from streamflow.errors import StreamflowError
from streamflow.observe.metrics import serve_metrics
from streamflow.observe.worker_metrics import WorkerCollector
from streamflow.plan import build_graph, parse_plan
from streamflow.recovery.checkpoint import Checkpointer, Snapshot

log = logging.getLogger("streamflow.worker")
COORDINATOR_SILENCE_S = 6.0
ORPHANED_AFTER_S = 60.0  # a --once worker whose coordinator never deploys gives up after this
STATS_EVERY_S = 0.5


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):  # pragma: no cover
        return 0


@dataclass
class WorkerInfo:
    """What a worker tells the coordinator about itself when it registers."""

    name: str
    tier: str
    device: str = "cpu"
    cost_per_hour: float = 0.0
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    memory_bytes: int = field(default_factory=_memory_bytes)
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    threads: int = 1
    spare: bool = False  # waits to take over a lost worker's operators
    metrics: str | None = None  # where this worker serves Prometheus metrics (--metrics-port)


class WorkerDaemon:
    """One worker host: waits for deployments from the coordinator at `coordinator`."""

    def __init__(self, info: WorkerInfo, coordinator: str, bind: str = "tcp://0.0.0.0:0",
                 once: bool = False, metrics: tuple[str, int] | None = None,
                 security: Security = PLAINTEXT) -> None:
        self.info = info
        self.security = security
        self.drops = validate.Drops(f"worker {info.name} (control)")
        self.coordinator = coordinator
        self.bind = bind
        self.once = once
        self.metrics_at = metrics  # (host, port) to serve /metrics on, or None
        self.metrics: WorkerCollector | None = None
        self.context = zmq.Context()
        self.executor = ThreadPoolExecutor(max_workers=max(1, info.threads),
                                           thread_name_prefix=f"{info.name}-op")
        self.stopping = False
        self.control: zmq.Socket | None = None
        self.inbox: Inbox | None = None
        self.last_contact = time.monotonic()
        self.contacted = False  # a coordinator has spoken to us (spares are pinged while they wait)
        self.regenerate = False  # the current run goes on in a next generation

    def send(self, kind: str, body: Any = None) -> None:
        assert self.control is not None
        self.control.send_multipart(pack(kind, body))

    async def serve(self) -> int:
        """Register, then run deployments until shut down (or after one run with `once`)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        self.security.start(self.context)
        server = None
        if self.metrics_at is not None:
            self.metrics = WorkerCollector(asdict(self.info))
            server = await serve_metrics(self.metrics.registry(), *self.metrics_at)
            # as the coordinator's host reaches it (0.0.0.0: this host's address toward it)
            reached = advertised(f"tcp://{server.host}:{server.port}", self.coordinator)
            self.info.metrics = f"http{reached[3:]}/metrics"
            log.info("metrics at %s", self.info.metrics)
        self.control = self.context.socket(zmq.DEALER)
        self.control.setsockopt(zmq.IDENTITY, self.info.name.encode())
        self.control.setsockopt(zmq.LINGER, 1000)
        self.control.setsockopt(zmq.MAXMSGSIZE, validate.MAX_FRAME_BYTES)
        self.security.client(self.control)
        monitor = self.control.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                                  | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
        self.control.connect(self.coordinator)
        self.inbox = Inbox(self.control)
        heartbeat = Heartbeat(self.context, self.coordinator, self.info.name, self.security)
        heartbeat.start()
        status = 0
        try:
            while not self.stopping:
                self.send("register", asdict(self.info))
                msg = await self._next(timeout=1.0)
                if msg is None:
                    refused = None if self.contacted else handshake_refusal(monitor)
                    if refused is not None:
                        print(f"error: coordinator {self.coordinator} {refused}"
                              f"{' (key ' + self.security.public + ')' if self.security.public else ''}",
                              file=sys.stderr, flush=True)
                        status = 2
                        break
                    silent = time.monotonic() - self.last_contact
                    if self.once and (silent > ORPHANED_AFTER_S or (self.contacted and silent > COORDINATOR_SILENCE_S)):
                        log.warning("no coordinator for %.0f s; exiting (--once)", silent)
                        break
                    continue
                kind, body = msg
                self.contacted = True
                if kind == "shutdown":
                    break
                if kind == "preload":
                    self._preload(body)
                    continue
                if kind == "deploy":
                    over = await self._deployment(body)
                    if self.once and over:
                        break
        finally:
            if server is not None:
                await server.stop()
            heartbeat.stop()
            try:  # without a connection (refused, never reached) a send would block for good
                self.control.send_multipart(pack("bye", {"name": self.info.name}), zmq.NOBLOCK)
            except zmq.Again:
                pass
            self.inbox.close()
            self.control.disable_monitor()
            monitor.close(linger=0)
            self.control.close(linger=0 if status else 1000)
            self.executor.shutdown(wait=False, cancel_futures=True)
            heartbeat.join(timeout=2 * HEARTBEAT_S)
            self.security.stop()
            self.context.term()
        return status

    def _on_signal(self) -> None:
        self.stopping = True
        if self.inbox is not None:
            self.inbox.queue.append((None, pack("shutdown")))
            self.inbox.event.set()

    async def _next(self, timeout: float) -> tuple[str, Any] | None:
        """The next control message that matches its schema (others are dropped and logged)."""
        assert self.inbox is not None
        deadline = time.monotonic() + timeout
        while True:
            msg = await self.inbox.get(max(0.0, deadline - time.monotonic()))
            if msg is None:
                return None
            try:
                kind, body = validate.control(msg[1], validate.TO_WORKER)
            except Exception as exc:  # noqa: BLE001 - garbage from the coordinator's address
                self.drops.drop(self.coordinator, exc)
                continue
            self.last_contact = time.monotonic()
            return kind, body

    async def _deployment(self, deploy: dict[str, Any]) -> bool:
        """One generation of a run: build, wire, start, report; always release the data
        sockets afterwards. Returns False when the coordinator aborted it to deploy the run's
        next generation (after a recovery), True when the run is over for this worker."""
        run_id = deploy["run"]
        roles: list[str] = list(deploy.get("roles") or [self.info.name])
        parts: list[tuple[Worker, ZmqTransport]] = []
        transports: dict[str, ZmqTransport] = {}
        self.regenerate = False
        try:
            plan = parse_plan(deploy["plan"], deploy.get("source_path", "plan.json"),
                              deploy.get("speed"), deploy.get("base_dir", "."))
            if not all(isinstance(r, str) for r in roles):
                raise StreamflowError("deploy.roles: expected names")
            build_graph(plan)  # expressions and imports checked before any socket opens
            for role in roles:
                transports[role] = ZmqTransport(self.context, role, self.bind, deploy.get("credit_window", 16 << 20),
                                                observer=self.control, tag=run_id, security=self.security)
            deployed = {"run": run_id, "addresses": {role: advertised(t.bind, self.coordinator)
                                                     for role, t in transports.items()}}
            if self.security.public:
                deployed["keys"] = {role: self.security.public for role in transports}
            self.send("deployed", deployed)
            wire = await self._expect("wire", run_id)
            if wire is None:
                return not self.regenerate
            try:
                peers = validate.str_map(wire["peers"], "wire.peers")
                keys = validate.str_map(wire.get("keys", {}), "wire.keys")
            except validate.Invalid as exc:
                raise StreamflowError(str(exc)) from None
            start_epoch = int(deploy.get("start_epoch", 0))
            stateful: list[list[Any]] = []
            for role, transport in transports.items():
                transport.connect(peers, keys)
                graph, placement = build_graph(plan)
                states = {op: unpack_value(blob) for op, blob in deploy.get("states", {}).get(role, {}).items()}
                worker = Worker(graph, role, placement, transport, executor=self.executor,
                                collect_service_times=True, source_budget=deploy.get("source_budget", 16),
                                start_epoch=start_epoch, restore=states,
                                restored_notify=restored_notify(deploy.get("notify", {})))
                worker.prepare()  # models load before the sources start
                if deploy.get("checkpoint_every"):
                    worker.checkpointer = Checkpointer(worker, int(deploy["checkpoint_every"]), start_epoch,
                                                       partial(self._snapshot, run_id))
                    stateful += [[s.name, s.ctx.instance] for s in worker.checkpointer.slots]
                parts.append((worker, transport))
            if self.metrics is not None:
                self.metrics.deployed(parts)
            self.send("ready", {"run": run_id, "stateful": stateful})
            start = await self._expect("start", run_id)
            if start is None:
                return not self.regenerate
            for worker, _t in parts:
                if start.get("elapsed") is not None:  # the run's sources started this long ago
                    worker.clock_origin = time.time() - float(start["elapsed"])
            await self._run(run_id, parts)
        except StreamflowError as exc:
            self.send("failed", {"run": run_id, "error": str(exc)})
        except Exception as exc:  # a bug or an environment problem: report it, stay up
            log.exception("run %s failed", run_id)
            self.send("failed", {"run": run_id, "error": f"{type(exc).__name__}: {exc}"})
        finally:
            if self.metrics is not None and parts:
                self.metrics.retire()
            for transport in transports.values():
                transport.close(0 if self.regenerate else 2000)
        return not self.regenerate

    def _snapshot(self, run_id: str, snap: Snapshot) -> None:
        """Send a checkpoint snapshot to the coordinator's recovery store, packed at once (the
        operator goes on changing its state)."""
        self.send("snapshot", {"run": run_id, "epoch": snap.epoch, "op": snap.operator,
                               "instance": snap.instance, "state": pack_value(snap.state), "notify": snap.notify})

    async def _expect(self, kind: str, run_id: str) -> dict[str, Any] | None:
        """Wait for `kind` of this run; an abort or a silent coordinator cancels the run."""
        while True:
            msg = await self._next(timeout=1.0)
            if msg is None:
                if time.monotonic() - self.last_contact > COORDINATOR_SILENCE_S:
                    log.warning("coordinator silent for %.0f s; dropping run %s", COORDINATOR_SILENCE_S, run_id)
                    # said, in case the coordinator is only slow: it fails the run at once with this
                    # line instead of waiting out its deploy timeout for a worker that has left
                    self.send("failed", {"run": run_id, "error": f"dropped the run while waiting for "
                                         f"'{kind}': no word from the coordinator for {COORDINATOR_SILENCE_S:.0f} s"})
                    return None
                continue
            got, body = msg
            if got == kind and body.get("run") == run_id:
                return body
            if got in ("abort", "shutdown"):
                self.stopping = self.stopping or got == "shutdown"
                self.regenerate = got == "abort" and bool(body and body.get("regenerate"))
                if got == "abort":
                    self.send("aborted", {"run": run_id, "error": None})
                return None

    async def _run(self, run_id: str, parts: list[tuple[Worker, ZmqTransport]]) -> None:
        loop = asyncio.get_running_loop()
        workers = [w for w, _t in parts]

        def failed(worker: Worker, exc: StreamflowError) -> None:
            """An operator here failed: say so at once; the worker drains until told to stop."""
            worker.flush_progress()
            self.send("failed", {"run": run_id, "error": str(exc), "draining": True})
        tasks = []
        for worker, transport in parts:
            worker.on_failure = partial(failed, worker)
            task = loop.create_task(worker.run_async())
            assert self.inbox is not None
            task.add_done_callback(lambda _t: self.inbox.interrupt() if self.inbox else None)
            transport.attach(worker)
            tasks.append(task)
        outcome, error = "done", None
        last_stats = 0.0
        try:
            while not all(t.done() for t in tasks):
                msg = await self._next(timeout=STATS_EVERY_S / 2)
                now = time.monotonic()
                if msg is not None:
                    kind, body = msg
                    if kind in ("abort", "shutdown"):
                        failure = next((w.failure for w in workers if w.failure is not None), None)
                        outcome = "aborted" if failure is None else "failed"
                        error = None if failure is None else str(failure)
                        self.stopping = self.stopping or kind == "shutdown"
                        self.regenerate = kind == "abort" and bool(body and body.get("regenerate"))
                        break
                    if kind == "drain":
                        for worker in workers:
                            worker.drain()
                    elif kind == "preload":
                        self._preload(body)
                    elif body is not None and body.get("run") == run_id:
                        self._handover(run_id, kind, body, workers)
                elif now - self.last_contact > COORDINATOR_SILENCE_S:
                    outcome, error = "aborted", "coordinator went silent"
                    break
                if now - last_stats >= STATS_EVERY_S:
                    last_stats = now
                    self._send_stats(run_id, parts)
            for t in tasks:
                t.cancel()
            for t in tasks:
                try:
                    await t
                except asyncio.CancelledError:
                    pass
        except StreamflowError as exc:
            outcome, error = "failed", str(exc)
        except Exception as exc:
            log.exception("run %s failed", run_id)
            outcome, error = "failed", f"{type(exc).__name__}: {exc}"
        for worker in workers:
            try:
                worker.close()
            except StreamflowError as exc:
                outcome, error = "failed", error or str(exc)
        for _worker, transport in parts:  # the last progress copies go before the outcome
            transport.flush_observed()
        self._send_stats(run_id, parts)
        self.send(outcome, {"run": run_id, "error": error})
        if outcome == "done":
            await self._expect("release", run_id)

    def _handover(self, run_id: str, kind: str, body: dict[str, Any], workers: list[Worker]) -> None:
        """This worker's part of a drain before a live switch (the protocol: cluster/handover.py):
        pause every source here at an epoch, or none; announce the checkpoint; lift the pause."""
        if kind == "pause-sources":
            epoch = int(body["epoch"])
            late = [e for worker in workers for e in worker.late_sources(epoch)]
            if not late:
                for worker in workers:
                    worker.pause_sources(epoch)
            self.send("sources-paused", {"run": run_id, "epoch": epoch, "late": late})
        elif kind == "drain-checkpoint":
            for worker in workers:
                if worker.checkpointer is not None:
                    worker.checkpointer.announce(int(body["epoch"]))
                    worker.wake()
        elif kind == "resume-sources":
            for worker in workers:
                worker.pause_sources(math.inf)

    def _preload(self, body: dict[str, Any]) -> None:
        """Load the next plan's models beside the running ones (cluster/preload.py); answer
        `preloaded` from the event loop when done."""
        from streamflow.cluster.preload import preload_in_thread
        loop = asyncio.get_running_loop()
        roles = [r for r in body["roles"] if isinstance(r, str)] or [self.info.name]
        if body.get("standby"):  # keep the running plan's models warm, as if placed here (preload.py)
            body = {**body, "standby": {"name": self.info.name, "tier": self.info.tier, "device": self.info.device,
                                        "cost_per_hour": self.info.cost_per_hour, "threads": self.info.threads}}
        preload_in_thread(body, roles, lambda answer: loop.call_soon_threadsafe(
            lambda: None if self.stopping else self.send("preloaded", {**answer, "run": body.get("run")})))

    def _send_stats(self, run_id: str, parts: list[tuple[Worker, ZmqTransport]]) -> None:
        for worker, transport in parts:
            stats = worker_stats(worker, transport)
            if self.metrics is not None:
                self.metrics.observe_stats(worker.name, stats)
            self.send("stats", {"run": run_id, "role": worker.name, "stats": stats})


def restored_notify(raw: dict[str, Any]) -> dict[str, dict[int, list[int]]]:
    """The deployment's restored notifications with integer instances (msgpack keeps them)."""
    return {op: {int(i): [int(e) for e in epochs] for i, epochs in per.items()} for op, per in raw.items()}


def run_worker(info: WorkerInfo, coordinator: str, bind: str, once: bool,
               metrics: tuple[str, int] | None = None, security: Security = PLAINTEXT,
               allow_import: tuple[str, ...] = ()) -> int:
    """Run the daemon on a uvloop event loop until shutdown, importing only allowed modules;
    `metrics`: (host, port) to serve Prometheus metrics on."""
    from streamflow.imports import restrict
    from streamflow.runtime import run_coroutine
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {info.name} %(levelname)s %(message)s")
    restrict(allow_import)
    daemon = WorkerDaemon(info, coordinator, bind, once, metrics, security)
    return run_coroutine(daemon.serve())


