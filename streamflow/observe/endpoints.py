"""The coordinator's HTTP endpoints: Prometheus metrics (on by default, port 9464) and the web
view (`--ui PORT`, which also serves /metrics), bound to 127.0.0.1 unless told otherwise."""
from __future__ import annotations

from typing import Any

from streamflow.errors import StreamflowError
from streamflow.observe.coordinator_metrics import CoordinatorCollector
from streamflow.observe.http import HttpServer
from streamflow.observe.metrics import exposition
from streamflow.observe.webview import LiveState

DEFAULT_METRICS_PORT = 9464  # the port OpenTelemetry's Prometheus exporter uses by default
AUTO = "auto"                # the default port, or any free one when it is taken


class Endpoints:
    """Starts and stops the coordinator's metrics and web view servers."""

    def __init__(self, coordinator: Any, host: str, metrics_port: int | str | None, ui_port: int | None) -> None:
        self.c = coordinator
        self.host = host
        self.metrics_port = metrics_port  # AUTO, a port (0: any free one) or None (off)
        self.ui_port = ui_port
        self.collector = CoordinatorCollector(coordinator) if metrics_port is not None else None
        self.state = LiveState(coordinator, self.urls)
        self.metrics_server: HttpServer | None = None
        self.ui_server: HttpServer | None = None

    @property
    def workers_metrics(self) -> bool:
        """Whether workers started here (--local) serve metrics too."""
        return self.collector is not None

    async def start(self) -> None:
        registry = self.collector.registry() if self.collector is not None else None
        if self.ui_port is not None:
            from streamflow.ui import add_ui_routes
            self.ui_server = HttpServer(self.host, self.ui_port)
            add_ui_routes(self.ui_server, self.state.snapshot)
            if registry is not None:
                self.ui_server.route("/metrics", exposition(registry))
            await self.ui_server.start()
        port = self.metrics_port
        if registry is None or (port == AUTO and self.ui_server is not None) or \
                (self.ui_server is not None and port == self.ui_server.port):
            return
        if port == AUTO:
            try:
                self.metrics_server = await self._metrics(registry, DEFAULT_METRICS_PORT)
            except StreamflowError:  # another run has it: any free port (the coordinator says which)
                self.metrics_server = await self._metrics(registry, 0)
        else:
            self.metrics_server = await self._metrics(registry, int(port))  # type: ignore[arg-type]

    async def _metrics(self, registry: Any, port: int) -> HttpServer:
        server = HttpServer(self.host, port)
        server.route("/metrics", exposition(registry))
        return await server.start()

    def urls(self) -> dict[str, Any]:
        """Where the coordinator and each worker serve metrics, and the web view."""
        server = self.metrics_server or (self.ui_server if self.collector is not None else None)
        workers = {n: m.info.get("metrics") for n, m in self.c.members.items() if m.info.get("metrics")}
        return {"coordinator": f"{server.url}/metrics" if server else None, "workers": workers,
                "ui": f"{self.ui_server.url}/" if self.ui_server else None}

    def announce(self) -> str:
        """One line saying where to look."""
        urls = self.urls()
        parts = []
        if urls["ui"]:
            parts.append(f"web view {urls['ui']}")
        if urls["coordinator"]:
            parts.append(f"metrics {urls['coordinator']}")
        if urls["workers"]:
            parts.append("workers' metrics " + ", ".join(f"{n} {u}" for n, u in sorted(urls["workers"].items())))
        return "; ".join(parts)

    def observe_stats(self, role: str, stats: dict[str, Any]) -> None:
        self.state.observe_stats(role, stats)
        if self.collector is not None:
            self.collector.observe_stats(role, stats)

    def measured(self, accuracy: dict[str, Any]) -> None:
        self.state.accuracy = accuracy
        if self.collector is not None:
            self.collector.measured(accuracy)

    async def stop(self) -> None:
        for server in (self.ui_server, self.metrics_server):
            if server is not None:
                await server.stop()
