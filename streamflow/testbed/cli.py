"""`streamflow testbed up INFRA.json | status | down [--state DIR]`: emulate the infrastructure's
hosts and links on this machine (root only); see streamflow/testbed/__init__.py."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from streamflow.errors import StreamflowError
from streamflow.testbed.state import DEFAULT_DIR, State, TestbedError


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other streamflow error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise TestbedError(f"{message} (see streamflow testbed --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="streamflow testbed", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="action", required=True)
    up = sub.add_parser("up", help="build the namespaces, links and cgroups; start and register the workers")
    up.add_argument("infra", help="infra.json: tiers, hosts (cpus, memory_mb, threads), links between tiers")
    up.add_argument("--wait", type=float, default=180.0, help="seconds to wait for the workers to register")
    sub.add_parser("status", help="hosts, addresses, quotas and links of the testbed that is up")
    sub.add_parser("down", help="remove every namespace, link, qdisc, cgroup and process the testbed made")
    for action in sub.choices.values():
        action.add_argument("--state", default=str(DEFAULT_DIR),
                            help=f"state directory (default {DEFAULT_DIR}, or $STREAMFLOW_TESTBED_STATE)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    if args.action == "up":
        from streamflow.testbed.up import bring_up
        state = bring_up(args.infra, args.state, args.wait, progress=lambda m: console.print(f"testbed: {m}"))
        show(console, state)
        console.print("testbed up; run a plan on it: streamflow run PLAN.json --testbed"
                      + (f" --state {args.state}" if args.state != str(DEFAULT_DIR) else ""))
        return 0
    if args.action == "down":
        from streamflow.testbed.down import take_down
        from streamflow.testbed.up import require_root
        require_root()
        left = take_down(args.state)
        if left is None:
            console.print(f"testbed: nothing to take down (no state in {args.state})")
            return 0
        if left:
            raise TestbedError(f"could not remove: {'; '.join(left)} (state kept in {args.state})")
        console.print("testbed down: namespaces, links, qdiscs, cgroups and processes removed")
        return 0
    from streamflow.testbed.state import running
    state = running(args.state)
    problems = show(console, state)
    if problems:
        raise TestbedError(f"testbed degraded: {'; '.join(problems)}")
    return 0


def show(console: Console, state: State) -> list[str]:
    """Print the hosts and links of a testbed; returns its problems."""
    from streamflow.testbed.infra import parse_infra
    from streamflow.testbed.status import check
    rows, problems = check(state)
    table = Table(title=f"testbed ({state.doc['infra']}); coordinator {state.doc.get('coordinator')}",
                  title_justify="left")
    for col in ("host", "tier", "namespace", "address", "cpus", "memory MB", "threads", "pid", "running"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        table.add_row(r["host"], r["tier"], r["namespace"], r["address"],
                      "-" if r["cpus"] is None else f"{r['cpus']:g}",
                      "-" if r["memory_mb"] is None else str(r["memory_mb"]), str(r["threads"]),
                      str(r["pid"]), "yes" if r["running"] else "NO")
    console.print(table)
    infra = parse_infra(state.doc["infra_doc"], state.doc["infra"])
    links = Table(title="links (each direction)", title_justify="left")
    for col in ("tiers", "bandwidth Mbit/s", "rtt ms", "price per GB (upward)"):
        links.add_column(col)
    for lo, hi in infra.pairs():
        link = infra.link(lo, hi)
        links.add_row(f"{lo} <-> {hi}", "unshaped" if link.bandwidth_mbps is None else f"{link.bandwidth_mbps:g}",
                      f"{link.rtt_ms:g}", f"{link.cost_per_gb:g}")
    console.print(links)
    for p in problems:
        console.print(f"problem: {p}")
    return problems


if __name__ == "__main__":  # pragma: no cover
    try:
        sys.exit(main())
    except StreamflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_status)
