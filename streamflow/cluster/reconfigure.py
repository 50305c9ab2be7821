"""`streamflow reconfigure NEW_PLAN --coordinator ADDR`: switch a running plan live.

The coordinator checks the new plan at once (it parses, its workers have registered) and
answers; the switch happens at the run's next committed checkpoint: the current generation
stops, keyed operator state is re-sharded to the new placement, and the run goes on under the
new plan from the epoch after the checkpoint, with nothing lost or written twice (the recovery
protocol; docs/recovery.md).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import zmq

from streamflow.cluster.protocol import pack, unpack
from streamflow.communication.security import PLAINTEXT, Security, require_keys, security_for
from streamflow.errors import StreamflowError
from streamflow.jsonfile import read_json


class ReconfigureRefused(StreamflowError):
    exit_status = 3


def add_reconfigure_parser(sub: Any) -> None:
    p = sub.add_parser("reconfigure", help="switch a running plan to another at its next checkpoint")
    p.add_argument("plan", help="the new plan.json")
    p.add_argument("--coordinator", default="tcp://127.0.0.1:7077", help="the running coordinator's address")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the coordinator's answer")
    p.add_argument("--keys", metavar="DIR", default=None,
                   help="CURVE keys: a key pair the coordinator admits, and its coordinator.key")
    p.add_argument("--insecure", action="store_true", help="plaintext to a non-loopback coordinator")
    p.set_defaults(func=reconfigure_command)


def request(coordinator: str, plan: dict[str, Any], source_path: str, base_dir: str, timeout: float,
            security: Security = PLAINTEXT) -> str:
    """Send the new plan; the coordinator's one-line answer, or ReconfigureRefused."""
    context = zmq.Context.instance()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    security.client(sock)
    try:
        sock.connect(coordinator)
        sock.send_multipart(pack("reconfigure", {"plan": plan, "source_path": source_path, "base_dir": base_dir}))
        if not sock.poll(int(timeout * 1000)):
            raise ReconfigureRefused(f"no answer from a coordinator at {coordinator} within {timeout:g} s")
        kind, body = unpack(sock.recv_multipart())
    finally:
        sock.close()
    if kind != "reconfigure-accepted":
        raise ReconfigureRefused(body.get("message", kind))
    return str(body.get("message"))


def reconfigure_command(args: argparse.Namespace) -> int:
    from streamflow.errors import PlanError
    path = Path(args.plan)
    raw = read_json(path, PlanError)
    require_keys(args.keys, args.insecure, [args.coordinator], "--coordinator")
    security = security_for(args.keys, "reconfigure")
    print(request(args.coordinator, raw, str(path), str(path.resolve().parent), args.timeout, security))
    return 0
