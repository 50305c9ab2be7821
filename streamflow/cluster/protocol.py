"""Control messages between coordinator and workers, and an asyncio inbox for a zmq socket.

Messages are two frames: a type (bytes) and a msgpack body. Worker -> coordinator: register,
deployed, ready, stats, done, failed, aborted, progress (a copy of each progress batch).
Coordinator -> worker: deploy, wire, start, ping, abort, release, shutdown.
A separate heartbeat socket per worker sends `hb` from a thread, so a busy loop is not a dead one.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import Any

import msgpack
import zmq

from streamflow.communication.security import PLAINTEXT, Security

HEARTBEAT_S = 0.5
DEAD_AFTER_S = 3.0


def pack(kind: str, body: Any = None) -> list[bytes]:
    return [kind.encode(), msgpack.packb(body, use_bin_type=True)]


def unpack(frames: list[bytes]) -> tuple[str, Any]:
    return frames[0].decode(), msgpack.unpackb(frames[1], raw=False, strict_map_key=False) if len(frames) > 1 else None


class Inbox:
    """Receives from a zmq socket on the running event loop (edge-triggered FD, fully drained)."""

    def __init__(self, sock: zmq.Socket, router: bool = False) -> None:
        self.sock = sock
        self.router = router
        self.queue: deque[tuple[bytes | None, list[bytes]]] = deque()
        self.event = asyncio.Event()
        self._interrupted = False
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(sock.getsockopt(zmq.FD), self._drain)
        self.loop.call_soon(self._drain)

    def _drain(self) -> None:
        try:
            while self.sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
                if self.router:
                    self.queue.append((frames[0], frames[1:]))
                else:
                    self.queue.append((None, frames))
        except zmq.ZMQError:
            return
        if self.queue:
            self.event.set()

    async def get(self, timeout: float | None = None) -> tuple[bytes | None, list[bytes]] | None:
        """The next message (sender identity for ROUTER sockets), or None after `timeout`."""
        while not self.queue:
            if self._interrupted:
                self._interrupted = False
                return None
            self.event.clear()
            self._drain()  # edge-triggered FD: re-check after every send on this socket
            if self.queue:
                break
            try:
                await asyncio.wait_for(self.event.wait(), timeout)
            except asyncio.TimeoutError:
                return None
        return self.queue.popleft()

    def interrupt(self) -> None:
        """Make a pending (or the next) `get` return None now: something else needs attention."""
        self._interrupted = True
        self.event.set()

    def close(self) -> None:
        try:
            self.loop.remove_reader(self.sock.getsockopt(zmq.FD))
        except (ValueError, zmq.ZMQError):
            pass


class Heartbeat(threading.Thread):
    """Sends `hb` every HEARTBEAT_S from its own socket and thread, until stopped."""

    def __init__(self, context: zmq.Context, coordinator: str, name: str, security: Security = PLAINTEXT) -> None:
        super().__init__(name=f"heartbeat-{name}", daemon=True)
        self.context = context
        self.security = security
        self.coordinator = coordinator
        self.identity = f"{name}#hb".encode()
        self.stopped = threading.Event()

    def run(self) -> None:
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, self.identity)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 10)
        self.security.client(sock)
        sock.connect(self.coordinator)
        try:
            while not self.stopped.is_set():
                try:
                    sock.send_multipart(pack("hb", time.time()), zmq.NOBLOCK)
                except zmq.Again:
                    pass
                self.stopped.wait(HEARTBEAT_S)
        finally:
            sock.close(linger=0)

    def stop(self) -> None:
        self.stopped.set()
