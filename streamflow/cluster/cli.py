"""`streamflow run plan.json [--local] [--speed X] [--report run.json] [--timeout S] ...`"""
from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from streamflow.cluster.coordinator import Coordinator, Options


def add_run_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="run a plan on its workers (or start them here with --local)")
    p.add_argument("plan", nargs="?", help="plan.json (omit with --resume)")
    p.add_argument("--local", action="store_true", help="start the plan's workers on this machine")
    p.add_argument("--testbed", action="store_true",
                   help="run on the workers of the testbed that is up (streamflow testbed up INFRA.json)")
    p.add_argument("--state", default=None, help="with --testbed: its state directory (default as testbed up)")
    p.add_argument("--speed", type=float, default=None,
                   help="replay speed for sources (1 = recorded pace, 0 = as fast as possible)")
    p.add_argument("--report", default=None, help="where to write the run report (JSON); "
                   "default: out/<plan>-run.json next to the plan")
    p.add_argument("--timeout", type=float, default=None, help="give up after S seconds")
    p.add_argument("--listen", default="tcp://0.0.0.0:7077",
                   help="coordinator address workers connect to (default tcp://0.0.0.0:7077)")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for workers to register")
    p.add_argument("--credit-window", type=int, default=16 << 20,
                   help="flow control: bytes in flight per channel (default 16 MiB)")
    p.add_argument("--quiet", action="store_true", help="no live progress")
    p.add_argument("--recovery-dir", default=None,
                   help="where checkpoints are kept (SQLite); default out/<plan>-recovery next to the plan")
    p.add_argument("--spares", type=int, default=0,
                   help="with --local: start N spare workers that take over from a lost one")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the latest run recorded in RUN_DIR (a --recovery-dir) from its last checkpoint")
    p.add_argument("--adapt", action="store_true",
                   help="re-plan online when the load, latency or capacity changes (needs --problem)")
    p.add_argument("--problem", default=None, help="with --adapt: the planning problem the plan was made from")
    p.add_argument("--slo-ms", type=float, default=None,
                   help="with --adapt: p99 latency to every sink to keep under (ms)")
    p.add_argument("--ui", nargs="?", type=int, const=8765, default=None, metavar="PORT",
                   help="serve the live web view at http://HOST:PORT/ (default port 8765); it serves "
                        "/metrics too")
    p.add_argument("--metrics-port", default="auto", metavar="PORT",
                   help="serve Prometheus metrics at http://HOST:PORT/metrics (default 9464, or a free port "
                        "when that is taken; 0: any free port; off: no metrics, also not from --local workers)")
    p.add_argument("--http-host", default="127.0.0.1",
                   help="address the web view and metrics listen on (default 127.0.0.1; 0.0.0.0 for "
                        "every interface)")
    add_security_arguments(p, "the coordinator's key pair (coordinator.key_secret) and the public keys it admits")
    p.add_argument("--inprocess", action="store_true",
                   help="debug: run every operator in this process, ignoring the placement")
    p.set_defaults(func=run_command)


def add_security_arguments(p: argparse.ArgumentParser, keys_help: str) -> None:
    """--keys, --insecure and --allow-import, alike for the coordinator and the workers."""
    p.add_argument("--keys", metavar="DIR", default=None,
                   help=f"CURVE keys (streamflow keys generate DIR): {keys_help}")
    p.add_argument("--insecure", action="store_true",
                   help="allow plaintext, unauthenticated sockets on a non-loopback address")
    p.add_argument("--allow-import", metavar="PREFIX", action="append", default=[],
                   help="modules plans may import code from, beyond the project's operators (repeatable)")


def run_command(args: argparse.Namespace) -> int:
    from streamflow.communication.security import require_keys
    from streamflow.errors import PlanError
    from streamflow.imports import restrict
    from streamflow.plan import build_graph, load_plan
    from streamflow.runtime import run_coroutine
    restrict(args.allow_import)  # reconfigured plans arrive over the network; ours obeys the same rule
    if args.speed is not None and args.speed < 0:
        raise PlanError("--speed: must be >= 0")
    if args.spares < 0 or (args.spares and not args.local):
        raise PlanError("--spares: a number >= 0, with --local (elsewhere start streamflow-worker --spare)")
    if args.adapt and not args.problem:
        raise PlanError("--adapt: give --problem PROBLEM.json, the problem the planner re-plans from")
    if args.slo_ms is not None and not args.slo_ms > 0:
        raise PlanError("--slo-ms: must be > 0")
    metrics_port = metrics_port_option(args.metrics_port)
    if args.ui is not None and not 0 <= args.ui <= 65535:
        raise PlanError(f"--ui: a port 0..65535, got {args.ui}")
    if args.resume:
        plan = resumed_plan(args.resume, args.speed)
        args.recovery_dir = args.resume
    elif args.plan is None:
        raise PlanError("run: give a plan.json, or --resume RUN_DIR")
    else:
        plan = load_plan(args.plan, speed=args.speed)
    graph, placement = build_graph(plan)
    if args.inprocess:
        from streamflow.dataflow.worker import Worker
        Worker(graph, check_records=True).run()
        print(f"{plan.name}: completed in this process (no run report: placement ignored)")
        return 0
    listen = args.listen
    if args.testbed:
        from streamflow.testbed.attach import coordinator_address
        if args.local:
            raise PlanError("--testbed and --local: choose one (the testbed's workers, or workers started here)")
        listen = coordinator_address(plan, args.state)
        if args.keys is None and not args.insecure:
            from streamflow.testbed.attach import testbed_keys
            args.keys = testbed_keys(args.state)
    if not args.local:
        require_keys(args.keys, args.insecure, [listen], "--listen")
    options = Options(listen=listen, local=args.local, report=args.report, timeout=args.timeout,
                      wait=args.wait, credit_window=args.credit_window, quiet=args.quiet,
                      recovery_dir=args.recovery_dir, spares=args.spares, resume=bool(args.resume),
                      adapt=args.adapt, problem=args.problem, slo_ms=args.slo_ms,
                      http_host=args.http_host, metrics_port=metrics_port, ui_port=args.ui, keys=args.keys,
                      insecure=args.insecure, allow_import=tuple(args.allow_import))
    coordinator = Coordinator(plan, graph, placement, options)
    report = run_coroutine(coordinator.run())
    print_summary(report, str(coordinator.report_path))
    return 0


def metrics_port_option(value: str) -> int | str | None:
    """--metrics-port: "auto", "off" or a port number."""
    from streamflow.errors import PlanError
    if value in ("auto", "off"):
        return None if value == "off" else value
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise PlanError(f"--metrics-port: a port 0..65535, auto or off, got {value!r}")
    return int(value)


def resumed_plan(run_dir: str, speed: float | None) -> Any:
    """The plan of the latest run recorded in a recovery directory."""
    from pathlib import Path

    from streamflow.errors import PlanError
    from streamflow.plan import parse_plan
    from streamflow.recovery.store import RecoveryStore
    if not (Path(run_dir) / RecoveryStore.FILE).is_file():
        raise PlanError(f"--resume {run_dir}: no {RecoveryStore.FILE} there (a run's --recovery-dir)")
    store = RecoveryStore(run_dir)
    try:
        stored = store.latest_run()
    finally:
        store.close()
    if stored is None:
        raise PlanError(f"--resume {run_dir}: no run recorded there")
    if stored.status == "completed":
        raise PlanError(f"--resume {run_dir}: run {stored.run_id} already completed")
    return parse_plan(stored.plan, stored.source_path, speed if speed is not None else stored.speed, stored.base_dir)


def print_summary(report: dict[str, Any], path: str) -> None:
    console = Console()
    table = Table(title=f"{report['plan']}: {report['status']} in {report['duration_s']:.2f} s",
                  title_justify="left")
    for col in ("operator", "kind", "records", "records/s", "service p50 ms", "service p99 ms", "workers"):
        table.add_column(col, justify="left" if col in ("operator", "kind", "workers") else "right")
    for name, op in report["operators"].items():
        lat = op["service_ms"]
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        kind = op["kind"] + (f" {op['variant']}" if op.get("variant") else "")
        table.add_row(name, kind, f"{op['records']:,}", f"{op['rate_per_s'] or 0:,.1f}",
                      fmt(lat["p50"]), fmt(lat["p99"]), ",".join(op["instances"]))
    console.print(table)
    t = report["totals"]
    ms = lambda v: "-" if v is None else f"{v:,.1f}"  # noqa: E731
    lat = t["epoch_latency_ms"]
    console.print(f"throughput: {t['throughput_per_s'] or 0:,.1f} {t.get('unit', 'records')}/s from the sources; "
                  f"epoch latency (sources close an epoch -> sinks complete it) p50 {ms(lat['p50'])} ms, "
                  f"p99 {ms(lat['p99'])} ms", highlight=False)
    for name, r in report.get("sink_latency_ms", {}).items():
        line = (f"latency, source -> {name}: p50 {ms(r['p50'])} ms, p95 {ms(r['p95'])} ms, p99 {ms(r['p99'])} ms "
                f"per {t.get('unit', 'record').rstrip('s')}")
        if "within_slo" in r:
            line += f"; {r['within_slo'] * 100:.1f} % within the SLO of {r['slo_ms']:g} ms"
        for pct, value in r.get("predicted", {}).items():
            line += f" (planner predicted {pct} {ms(value)} ms)"
        console.print(line, highlight=False)
    from streamflow.cluster.shares import describe
    for text in describe(report.get("shares", {})):
        console.print(text, highlight=False)
    cost = report["cost"]
    line = f"cost: {cost['workers_per_hour']:.4f}/h for {len(report['workers'])} workers"
    if cost.get("total_per_hour_expected") is not None:
        line += f" (planner's estimate with network: {cost['total_per_hour_expected']}/h)"
    console.print(line, highlight=False)
    for sink, block in report.get("accuracy", {}).items():
        if sink == "planner_predicted" or not isinstance(block, dict):
            continue
        if "error" in block:
            console.print(f"accuracy ({sink}): {block['error']}", highlight=False)
            continue
        shown = {k: v for k, v in block.items() if k not in ("per_camera", "task") and v is not None}
        text = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items())
        console.print(f"accuracy ({sink}, {block['task']}): {text}", highlight=False)
    if "planner_predicted" in report.get("accuracy", {}):
        console.print(f"accuracy the planner predicted: {report['accuracy']['planner_predicted']}", highlight=False)
    for f in report.get("failures", []):
        pause = "-" if f.get("output_pause_s") is None else f"{f['output_pause_s']:.2f} s"
        rec = "-" if f.get("recovery_s") is None else f"{f['recovery_s']:.2f} s"
        console.print(f"failure: {f['worker']} ({f['reason']}) detected after {f['detected_after_s']:.2f} s; "
                      f"taken over by {f['taken_over_by']}; checkpoint epoch {f['checkpoint_epoch']}, "
                      f"{f['epochs_replayed']} epochs replayed; recovery time {rec}, output pause {pause}",
                      highlight=False)
    windows = report.get("timeline", [])
    for op in sorted({op for w in windows for op, q in w["queue"].items() if q}):
        series = " ".join(str(w["queue"].get(op, 0)) for w in windows)
        console.print(f"backlog at {op} (batches queued, every {windows[0]['span_s']:.0f} s): {series}", highlight=False)
    for a in report.get("adaptations", []):
        if "refused" in a:
            console.print(f"adaptation at {a['at_s']:.1f} s refused: {a['refused']}", highlight=False)
            continue
        why = f"{a['reason']}; " if a.get("reason") else ""
        console.print(f"adaptation at {a['at_s']:.1f} s (epoch {a['epoch']}): {why}now {a.get('summary', a['to'])}; "
                      f"expected {_num(a.get('expected_cost_per_hour'), 3)}/h, "
                      f"accuracy {_num(a.get('expected_accuracy'), 2)}"
                      f"{' (degraded: no plan met the accuracy floor)' if a.get('degraded') else ''}", highlight=False)
    if report.get("timeline_png"):
        console.print(f"timeline: {report['timeline_png']}", highlight=False)
    console.print(f"web view of this run: streamflow ui {path}", highlight=False)
    console.print(f"report: {path}", highlight=False)


def _num(value: Any, digits: int) -> str:
    """A planned figure as people read it ('-' when the plan has none)."""
    return "-" if not isinstance(value, (int, float)) else f"{value:.{digits}f}"
