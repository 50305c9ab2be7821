"""Network namespaces, veth pairs, bridges and addresses, through the `ip` command.

Every helper raises TestbedError carrying the failing command and its message; the `delete_*`
helpers are idempotent (what is already gone is fine), which is what lets `down` replay a
state file that lists more than was made.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from streamflow.testbed.state import TestbedError

NETNS_DIR = Path("/run/netns")


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a system command; on failure a TestbedError names it and quotes its error."""
    if shutil.which(cmd[0]) is None:
        raise TestbedError(f"'{cmd[0]}' is not installed (the testbed needs iproute2: ip, tc)")
    result = subprocess.run(cmd, capture_output=True, text=True)
    if check and result.returncode != 0:
        msg = (result.stderr or result.stdout).strip().splitlines()
        raise TestbedError(f"`{' '.join(cmd)}` failed: {msg[-1] if msg else f'status {result.returncode}'}")
    return result


def ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("ip", *(("-n", ns) if ns else ()), *args, check=check)


def namespaces() -> list[str]:
    """Names of the network namespaces `ip netns` knows."""
    out = run("ip", "netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def add_namespace(name: str) -> None:
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", ns=name)


def delete_namespace(name: str) -> None:
    if name in namespaces():
        ip("netns", "delete", name)


def link_exists(name: str, ns: str | None = None) -> bool:
    return ip("link", "show", "dev", name, ns=ns, check=False).returncode == 0


def delete_link(name: str, ns: str | None = None) -> None:
    if (ns is None or ns in namespaces()) and link_exists(name, ns):
        ip("link", "delete", "dev", name, ns=ns)


def add_bridge(name: str, ns: str | None, address: str | None) -> None:
    ip("link", "add", "name", name, "type", "bridge", ns=ns)
    if address:
        ip("addr", "add", address, "dev", name, ns=ns)
    ip("link", "set", name, "up", ns=ns)


def add_veth(end_a: str, ns_a: str | None, end_b: str, ns_b: str | None) -> None:
    """A veth pair created directly with each end in its namespace (None: the root namespace)."""
    args = ["link", "add", end_a, *(("netns", ns_a) if ns_a else ()), "type", "veth", "peer", "name", end_b,
            *(("netns", ns_b) if ns_b else ())]
    ip(*args)


def up(dev: str, ns: str | None, address: str | None = None, master: str | None = None,
       isolated: bool = False) -> None:
    """Bring a device up, optionally with an address or enslaved to a bridge."""
    if address:
        ip("addr", "add", address, "dev", dev, ns=ns)
    if master:
        ip("link", "set", dev, "master", master, ns=ns)
        if isolated:  # a port that can reach the bridge itself but no other isolated port
            ip("link", "set", "dev", dev, "type", "bridge_slave", "isolated", "on", ns=ns)
    ip("link", "set", dev, "up", ns=ns)


def enable_forwarding(ns: str) -> None:
    run("ip", "netns", "exec", ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")


def route(ns: str, destination: str, *via: str) -> None:
    ip("route", "add", destination, *via, ns=ns)
