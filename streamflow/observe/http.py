"""A small HTTP/1.1 server on the process's own asyncio loop, for /metrics and the web view.

It runs on the loop rather than in a thread so that a scrape reads the runtime's counters
between two steps of the loop, never while they change (no locks on the hot path), and costs
nothing while nobody scrapes. Only GET and HEAD; each response closes its connection.
"""
from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from streamflow.errors import StreamflowError

log = logging.getLogger("streamflow.observe")

DEFAULT_HOST = "127.0.0.1"
MAX_REQUEST_BYTES = 16 << 10
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           500: "Internal Server Error"}


@dataclass
class Response:
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    status: int = 200


Handler = Callable[[str], Response | Awaitable[Response]]


class HttpServer:
    """Exact paths to handlers; any other path is 404."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = 0) -> None:
        self.host = host
        self.port = port
        self.routes: dict[str, Handler] = {}
        self._server: asyncio.base_events.Server | None = None

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "*") else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> "HttpServer":
        """Bind (port 0: any free port, read back into `port`); a taken port is one clear error."""
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StreamflowError(f"cannot serve HTTP on {self.host}:{self.port}: the port is in use") from None
            raise StreamflowError(f"cannot serve HTTP on {self.host}:{self.port}: {exc.strerror or exc}") from None
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10.0)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
            writer.close()
            return
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or len(head) > MAX_REQUEST_BYTES:
            response, method = Response(b"bad request\n", status=400), "GET"
        else:
            method, target = parts[0], parts[1]
            response = await self._respond(method, target.split("?", 1)[0])
        try:
            writer.write(
                f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'OK')}\r\n"
                f"Content-Type: {response.content_type}\r\nContent-Length: {len(response.body)}\r\n"
                f"Cache-Control: no-store\r\nConnection: close\r\n\r\n".encode("latin-1"))
            if method != "HEAD":
                writer.write(response.body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _respond(self, method: str, path: str) -> Response:
        if method not in ("GET", "HEAD"):
            return Response(b"only GET\n", status=405)
        handler = self.routes.get(path)
        if handler is None:
            return Response(b"not found\n", status=404)
        try:
            result = handler(path)
            if asyncio.iscoroutine(result):
                result = await result
            return result  # type: ignore[return-value]
        except Exception:  # a bug in a view must not take the run down
            log.exception("serving %s failed", path)
            return Response(b"internal error\n", status=500)
