"""`streamflow ui run.json [--port 8765] [--host 127.0.0.1]`: the web view of a finished run."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from streamflow.errors import PlanError


def add_ui_parser(sub: Any) -> None:
    p = sub.add_parser("ui", help="serve the web view of a finished run's report (run.json)")
    p.add_argument("report", help="a run report, as `streamflow run` writes it")
    p.add_argument("--port", type=int, default=8765, help="port to serve on (default 8765; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.set_defaults(func=ui_command)


def load_report_state(path: str) -> dict[str, Any]:
    """The web view's document for a report; the graph from the report, else from its plan file."""
    from streamflow.jsonfile import read_json
    from streamflow.observe.webview import dataflow_view, report_state
    report = read_json(path, PlanError)
    if not isinstance(report, dict) or "operators" not in report or "status" not in report:
        raise PlanError(f"{path}: not a run report (no operators or status)")
    dataflow = report.get("dataflow")
    if dataflow is None:  # a report from before the web view: the graph from its plan
        from streamflow.plan import load_plan
        plan_path = report.get("plan_path")
        if not plan_path or not Path(plan_path).is_file():
            raise PlanError(f"{path}: the report has no graph and its plan {plan_path!r} is not there")
        dataflow = dataflow_view(load_plan(plan_path))
    return report_state(report, dataflow)


def ui_command(args: argparse.Namespace) -> int:
    from streamflow.runtime import run_coroutine
    if not 0 <= args.port <= 65535:
        raise PlanError(f"--port: 0..65535, got {args.port}")
    state = load_report_state(args.report)
    try:
        run_coroutine(serve(state, args.host, args.port))
    except KeyboardInterrupt:
        pass
    return 0


async def serve(state: dict[str, Any], host: str, port: int) -> None:
    import asyncio

    from streamflow.observe.http import HttpServer
    from streamflow.ui import add_ui_routes
    server = HttpServer(host, port)
    add_ui_routes(server, lambda: state)
    await server.start()
    print(f"web view of {state['name']} ({state['status']}): {server.url}/  (Ctrl-C to stop)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
