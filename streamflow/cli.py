"""The `streamflow` command: run, validate, ui, plan, trace, profile, testbed, keys.

Every error a user can cause ends as one line `error: ...` on stderr and a non-zero status
(2 for bad input, 3 for infeasible planning constraints); nothing already written is lost.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from streamflow.errors import StreamflowError


def _validate(args: argparse.Namespace) -> int:
    from streamflow.imports import restrict
    from streamflow.plan import build_graph, load_plan
    restrict(args.allow_import)  # what a worker would accept
    plan = load_plan(args.plan)
    graph, placement = build_graph(plan)
    print(f"{args.plan}: ok: {len(graph.operators)} operators, {len(graph.edges)} edges, "
          f"{len(plan.workers_used())} workers, {plan.cost_per_hour():.4f}/h of workers")
    return 0


def _keys_generate(args: argparse.Namespace) -> int:
    import socket

    from streamflow.communication.security import generate
    public, secret = generate(args.dir, args.name or socket.gethostname())
    print(f"public key: {public} (copy it into the --keys folder of every host that should admit this one)")
    print(f"secret key: {secret} (stays on this host)")
    return 0


def _delegate(module: str) -> Callable[[Sequence[str]], int]:
    """Subcommands owned by other packages get the rest of the command line."""
    def run(argv: Sequence[str]) -> int:
        import importlib
        return int(importlib.import_module(module).main(list(argv)) or 0)
    return run


DELEGATED = {
    "plan": ("streamflow_planner.cli", "plan a workflow: joint model selection and worker assignment"),
    "trace": ("streamflow_traces.cli", "import, record and inspect video traces"),
    "profile": ("streamflow_workers.profile", "profile operator variants on worker types into a planning problem"),
    "testbed": ("streamflow.testbed.cli", "emulate the infrastructure's hosts and links on this machine (root)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamflow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check a plan.json and its dataflow graph")
    p.add_argument("plan")
    p.add_argument("--allow-import", metavar="PREFIX", action="append", default=[],
                   help="modules the plan may import code from, beyond the project's operators (repeatable)")
    p.set_defaults(func=_validate)
    keys = sub.add_parser("keys", help="CURVE key pairs for --keys").add_subparsers(dest="keys_command", required=True)
    p = keys.add_parser("generate", help="make a key pair DIR/NAME.key (public) and DIR/NAME.key_secret")
    p.add_argument("dir", help="key folder (created if missing)")
    p.add_argument("--name", default=None, help="key name: coordinator, or the worker's --name (default: host name)")
    p.set_defaults(func=_keys_generate)
    from streamflow.cluster.cli import add_run_parser
    from streamflow.cluster.reconfigure import add_reconfigure_parser
    from streamflow.ui.cli import add_ui_parser
    add_run_parser(sub)
    add_reconfigure_parser(sub)
    add_ui_parser(sub)
    for name, (_module, help_) in DELEGATED.items():
        sub.add_parser(name, help=help_, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in DELEGATED:
            return _delegate(DELEGATED[argv[0]][0])(argv[1:])
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except StreamflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
