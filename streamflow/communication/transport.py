"""The ZeroMQ transport of one worker: data channels, credits and progress to every peer.

Topology: every worker binds one ROUTER socket and connects one DEALER (identity = its name) to
every peer's ROUTER, so all inbound traffic arrives on one socket and per-peer order is FIFO.
Three message kinds share that path: data (header + payload frames), progress batches, and
credits that a receiver grants back as it consumes data.

Progress is exchanged all-to-all, not through the coordinator: a batch reaches every peer in
one hop (the coordinator receives a copy to observe the run), which keeps the time from an epoch
closing to a notification two processes away at a loopback round trip. Safety follows Naiad:
each worker's batches are applied in the order it made them (one FIFO connection per pair), and
the +1 for records a worker produced sits in the same batch as the -1 for what caused them, so a
view built from whole batches may lag but never runs ahead.

The coordinator's copies are gathered for up to OBSERVE_EVERY_S and sent as one batch: a
concatenation of consecutive batches of one worker, applied at once, moves the observer's view
from one state the worker passed through to a later one, so the observer may lag a few
milliseconds more but still never runs ahead. Peers get every batch as it is made.

Flow control: each (edge, receiver) channel starts with `credit_window` bytes; sending spends
credit, consuming at the receiver grants it back. A worker does not poll sources or run
operators whose output can reach a channel without credit, so in-flight data stays bounded.

Security: with keys, the ROUTER is a CURVE server and every DEALER a CURVE client of its peer
(security.py says why no one else gets a byte through); whatever arrives is checked before use
and dropped with a log line when it does not fit (validate.py).
"""
from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import msgpack
import zmq

from streamflow.communication import validate
from streamflow.communication.buffers import reuse_freed_buffers
from streamflow.communication.codec import decode, encode, nbytes
from streamflow.communication.security import PLAINTEXT, Security, SecurityError

if TYPE_CHECKING:  # pragma: no cover
    from streamflow.dataflow.worker import Worker

DATA, PROGRESS, CREDIT = 0, 1, 2
DEFAULT_CREDIT_WINDOW = 16 * 1024 * 1024
GRANT_FRACTION = 1 / 16
"""Consumed bytes of a channel are granted back once they reach this fraction of its window."""
OBSERVE_EVERY_S = 0.005
"""Longest time a progress copy for the coordinator waits to be sent with the next ones."""


class Channel:
    """Sender side of one (edge, receiver) channel: bytes of credit left."""

    __slots__ = ("edge", "peer", "credit", "bytes_sent", "messages", "stalls")

    def __init__(self, edge: int, peer: str, credit: int) -> None:
        self.edge = edge
        self.peer = peer
        self.credit = credit
        self.bytes_sent = 0
        self.messages = 0
        self.stalls = 0  # times the channel ran out of credit (counted when credit returns)


def advertised(bind: str, toward: str | None = None) -> str:
    """The address peers should dial for a socket bound to `bind` (resolving 0.0.0.0 / *)."""
    url = urlparse(bind)
    host = url.hostname or "127.0.0.1"
    if host in ("0.0.0.0", "*", ""):
        host = "127.0.0.1"
        if toward:
            target = urlparse(toward).hostname or "127.0.0.1"
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.connect((target, 9))
                    host = s.getsockname()[0]
                except OSError:
                    pass
    return f"tcp://{host}:{url.port}"


class ZmqTransport:
    """Sockets and channels of one worker in one run."""

    def __init__(self, context: zmq.Context, name: str, bind: str = "tcp://127.0.0.1:0",
                 credit_window: int = DEFAULT_CREDIT_WINDOW, observer: zmq.Socket | None = None,
                 tag: str = "", security: Security = PLAINTEXT) -> None:
        reuse_freed_buffers()  # received frames' buffers serve the next frames (buffers.py)
        self.context = context
        self.security = security
        self.name = name
        self.credit_window = credit_window
        self.tag = tag.encode()  # the run generation, on the copies the coordinator observes
        self.closed = False  # after close, work still finishing off the loop sends nothing
        self.router = context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.RCVHWM, 0)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.MAXMSGSIZE, validate.MAX_FRAME_BYTES)
        security.server(self.router)
        url = urlparse(bind)
        if url.port in (None, 0):
            port = self.router.bind_to_random_port(f"tcp://{url.hostname or '127.0.0.1'}")
            bind = f"tcp://{url.hostname or '127.0.0.1'}:{port}"
        else:
            self.router.bind(bind)
        self.bind = bind
        self.peers: dict[str, zmq.Socket] = {}
        self.observer = observer  # the coordinator's control socket: receives progress copies
        self.channels: dict[tuple[int, str], Channel] = {}
        self.worker: Worker | None = None
        self._reach: dict[int, list[Channel]] = {}
        self._edge_dst: dict[int, tuple[Any, int]] = {}
        self._grants: dict[tuple[str, int], int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.bytes_received = 0
        self.progress_batches = 0
        self.drops = validate.Drops(f"worker {name}")
        self._n_locations = 0
        self._observed: list[int] = []  # flat progress items not yet copied to the observer
        self._observed_at = 0.0
        self._observe_timer: asyncio.TimerHandle | None = None

    # setup -------------------------------------------------------------------------------------
    def connect(self, peers: dict[str, str], keys: dict[str, str] | None = None) -> None:
        """Open a DEALER to every peer's data address (name -> tcp://host:port); with keys, as a
        CURVE client of the peer's public key (name -> z85)."""
        for name, address in peers.items():
            if name == self.name or name in self.peers:
                continue
            if self.security.enabled and not (keys and keys.get(name)):
                raise SecurityError(f"no public key for peer {name!r}: it runs without --keys")
            dealer = self.context.socket(zmq.DEALER)
            self.security.client(dealer, keys[name] if keys else None)
            dealer.setsockopt(zmq.IDENTITY, self.name.encode())
            dealer.setsockopt(zmq.SNDHWM, 0)
            dealer.setsockopt(zmq.LINGER, 2000)
            dealer.connect(address)
            self.peers[name] = dealer

    def attach(self, worker: "Worker") -> None:
        """Learn the worker's slots (after it wired its senders) and start reading."""
        self.worker = worker
        self._n_locations = len(worker.tracker.antichains)
        graph = worker.graph
        for e, edge in enumerate(graph.edges):
            dst = graph.index(edge.dst)
            if dst in worker.slots:
                self._edge_dst[e] = (worker.slots[dst], edge.dst_port)
        local_down: dict[int, set[int]] = {i: set() for i in worker.slots}
        direct: dict[int, list[Channel]] = {i: [] for i in worker.slots}
        for (e, _peer), ch in self.channels.items():
            direct[graph.index(graph.edges[e].src)].append(ch)
        for e, edge in enumerate(graph.edges):
            src, dst = graph.index(edge.src), graph.index(edge.dst)
            if src in worker.slots and dst in worker.slots:
                local_down[src].add(dst)
        for index in reversed(worker.topology.order):
            if index in worker.slots:
                reach = list(direct[index])
                for d in local_down[index]:
                    reach += [c for c in self._reach[d] if c not in reach]
                self._reach[index] = reach
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.router.getsockopt(zmq.FD), self._drain)
        self._loop.call_soon(self._drain)

    # sending -----------------------------------------------------------------------------------
    def sender(self, edge: int, peer: str, instance: int) -> Callable[[int, Any], None]:
        """A function sending (epoch, batch) on `edge` to the instance on `peer`."""
        dealer = self.peers[peer]
        channel = self.channels.setdefault((edge, peer), Channel(edge, peer, self.credit_window))
        send = dealer.send_multipart
        packb = msgpack.packb

        def push(epoch: int, batch: Any) -> None:
            if self.closed:  # an aborted generation's executor job finishing late: discarded
                return
            kind, meta, frames = encode(batch)
            size = nbytes(frames)
            send([packb((DATA, edge, epoch, kind, meta)), *frames], copy=False)
            channel.credit -= size
            channel.bytes_sent += size
            channel.messages += 1
        return push

    def blocked(self, op: int) -> bool:
        """Whether running `op` could push data into a channel that has no credit left."""
        for ch in self._reach.get(op, ()):
            if ch.credit <= 0:
                return True
        return False

    def broadcast_progress(self, items: list[tuple[int, int, int]]) -> None:
        """Send one atomic progress batch to every peer and to the observing coordinator."""
        if self.closed:
            return
        flat = [x for item in items for x in item]
        message = msgpack.packb((PROGRESS, flat))
        for dealer in self.peers.values():
            dealer.send(message)
        self.progress_batches += 1
        if self.observer is None:
            return
        self._observed += flat
        now = time.monotonic()
        if now - self._observed_at >= OBSERVE_EVERY_S:
            self.flush_observed(now)
        elif self._observe_timer is None and self._loop is not None:
            self._observe_timer = self._loop.call_later(OBSERVE_EVERY_S, self.flush_observed)

    def flush_observed(self, now: float | None = None) -> None:
        """Send the gathered progress copies to the coordinator as one batch."""
        if self._observe_timer is not None:
            self._observe_timer.cancel()
            self._observe_timer = None
        if self._observed and self.observer is not None and not self.closed:
            self.observer.send_multipart([b"progress", msgpack.packb((PROGRESS, self._observed)), self.tag])
            self._observed = []
        self._observed_at = time.monotonic() if now is None else now

    def grant(self, credits: list[tuple[str, int, int]]) -> None:
        """Give consumed bytes back to their senders, one credit message per (peer, edge) once
        a channel's consumed bytes reach GRANT_FRACTION of the window. No deadlock: a sender
        blocks only with no credit left, i.e. with a whole window in flight or ungranted, and
        at most a fraction of it is ever held back here, so some of it is still in flight and
        its consumption brings the channel over the threshold."""
        if self.closed:
            credits.clear()
            return
        grants = self._grants
        for peer, edge, size in credits:
            grants[(peer, edge)] = grants.get((peer, edge), 0) + size
        credits.clear()
        threshold = self.credit_window * GRANT_FRACTION
        sent = [key for key, size in grants.items() if size >= threshold]
        for key in sent:
            self.peers[key[0]].send(msgpack.packb((CREDIT, key[1], grants.pop(key))))

    # receiving ---------------------------------------------------------------------------------
    def _drain(self) -> None:
        router = self.router
        worker = self.worker
        if worker is None:
            return
        handled = 0
        try:
            while router.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                self.receive(router.recv_multipart(zmq.NOBLOCK, copy=False))
                handled += 1
                if handled >= 256:  # let the scheduler run; come back for the rest
                    assert self._loop is not None
                    self._loop.call_soon(self._drain)
                    break
        except zmq.ZMQError:
            return
        if handled:
            worker.wake()

    def receive(self, frames: list[zmq.Frame]) -> None:
        """Handle one message [peer identity, header, payload...]; what does not fit is dropped
        and logged (validate.py), never raised."""
        worker = self.worker
        assert worker is not None
        try:
            peer = frames[0].bytes.decode()
            if peer not in self.peers or not 2 <= len(frames) <= validate.MAX_FRAMES:
                raise validate.Invalid("not a peer of this run" if peer not in self.peers else "frame count")
            header = validate.header(frames[1].bytes)
            kind = header[0]
            if kind == DATA:
                _, edge, epoch, bkind, meta = header
                payload = [f.buffer for f in frames[2:]]
                size = nbytes(payload)
                slot, port = self._edge_dst[edge]
                batch = decode(bkind, list(meta), payload)
                slot.queues[port].append((validate.epoch(epoch), batch))
                slot.remote_credit.append((peer, edge, size))
                self.bytes_received += size
            elif kind == PROGRESS and len(header) == 2:
                flat = validate.progress(header[1], self._n_locations)
                worker.tracker.apply(zip(flat[0::3], flat[1::3], flat[2::3]))
            elif kind == CREDIT:
                channel = self.channels[(header[1], peer)]
                size = validate.credit(header)
                if channel.credit <= 0:
                    channel.stalls += 1
                channel.credit += size
            else:
                raise validate.Invalid(f"unknown message kind {kind!r}")
        except Exception as exc:  # noqa: BLE001 - any malformed message, never the run
            self.drops.drop(frames[0].bytes if frames else b"?", exc)

    def close(self, linger_ms: int = 2000) -> None:
        """`linger_ms` 0 when the generation was aborted: nothing of it may arrive later."""
        if not self.closed and linger_ms:
            self.flush_observed()
        elif self._observe_timer is not None:
            self._observe_timer.cancel()
        self.closed = True
        if self._loop is not None:
            try:
                self._loop.remove_reader(self.router.getsockopt(zmq.FD))
            except (ValueError, zmq.ZMQError):
                pass
        for dealer in self.peers.values():
            dealer.close(linger=linger_ms)
        self.router.close(linger=0)

    def link_bytes(self) -> dict[str, int]:
        """Data bytes sent to each peer so far."""
        out: dict[str, int] = {}
        for (_edge, peer), ch in self.channels.items():
            out[peer] = out.get(peer, 0) + ch.bytes_sent
        return out
