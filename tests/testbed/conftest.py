"""Testbed fixtures: skip with the reason when this machine cannot host one, a small infrastructure
(two edge hosts, one cloud host, a 20 Mbit/s 30 ms link), and a check that nothing is left."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from streamflow.testbed.topology import PREFIX

INFRA = {
    "tiers": ["edge", "cloud"],
    "workers": [
        {"name": "edge-0", "tier": "edge", "cpus": 0.25, "memory_mb": 768, "cost_per_hour": 0.05},
        {"name": "edge-1", "tier": "edge", "cpus": 0.5, "memory_mb": 768, "cost_per_hour": 0.05},
        {"name": "cloud-0", "tier": "cloud", "cpus": 1.0, "memory_mb": 1024, "cost_per_hour": 0.4},
    ],
    "links": {"edge->cloud": {"bandwidth_mbps": 20, "rtt_ms": 30, "cost_per_gb": 0.09}},
}


def _unavailable() -> str | None:
    """Why this machine cannot host a testbed, or None."""
    if os.geteuid() != 0:
        return "the testbed needs root (network namespaces, tc, cgroups)"
    probe = f"{PREFIX}pytest-probe"
    try:
        made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    except FileNotFoundError:
        return "iproute2 (ip) is not installed"
    if made.returncode != 0:
        return f"`ip netns add` fails here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    if not Path("/dev/net/tun").exists():
        return "no /dev/net/tun (the links' delay line needs TUN devices)"
    from streamflow.testbed.cgroups import detect
    from streamflow.testbed.state import TestbedError
    try:
        detect()
    except TestbedError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="session")
def testbed_host() -> None:
    reason = _unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def infra_file(tmp_path) -> Path:
    path = tmp_path / "infra.json"
    path.write_text(json.dumps(INFRA))
    return path


def leftovers() -> list[str]:
    """Namespaces, root-namespace interfaces, cgroups and processes a testbed could leave."""
    out = [f"netns {n}" for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
           .stdout.split() if n.startswith(PREFIX)]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    out += [f"link {line.split(':')[1].strip().split('@')[0]}" for line in links.splitlines()
            if line.split(":")[1].strip().startswith(PREFIX)]
    out += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob(f"*/{PREFIX}testbed")]
    out += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob(f"*/*/{PREFIX}testbed")]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "tcp://10.77." in cmd or "streamflow.testbed.delayline" in cmd:
            out.append(f"process {proc.name}: {cmd[:80]}")
    return out
