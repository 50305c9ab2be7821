"""The web view: static files (plain HTML, CSS and a small SVG-drawing script, no build step)
and the HTTP routes that serve them with the run's JSON document at /api/run."""
from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

from streamflow.observe.http import HttpServer, Response

TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def static_files() -> dict[str, Response]:
    """Every file under static/, read once, by URL path ("/" is index.html)."""
    root = resources.files("streamflow.ui") / "static"
    out: dict[str, Response] = {}
    for entry in root.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in TYPES:
            out["/" + entry.name] = Response(entry.read_bytes(), TYPES[suffix])
    out["/"] = out["/index.html"]
    return out


def add_ui_routes(server: HttpServer, state: Callable[[], dict[str, Any]]) -> None:
    """The page and its assets, and /api/run from `state()`."""
    for path, response in static_files().items():
        server.route(path, lambda _p, r=response: r)
    server.route("/api/run", lambda _p: Response(json.dumps(state(), default=str, allow_nan=False).encode(),
                                                 "application/json"))
