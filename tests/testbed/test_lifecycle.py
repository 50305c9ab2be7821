"""up / status / down leave nothing behind: after a clean run, after a SIGKILLed `up`, and when
`down` runs twice. Each test brings up its own testbed (a couple of seconds each)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamflow.testbed.down import take_down

from .conftest import leftovers

REPO = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamflow.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


@pytest.fixture
def state_dir(testbed_host, tmp_path):
    """A state directory whose testbed is taken down after the test, whatever happened."""
    assert not leftovers(), f"a testbed is already up here: {leftovers()}"
    path = tmp_path / "state"
    yield path
    take_down(path)


def test_up_status_down(infra_file, state_dir) -> None:
    up = cli("testbed", "up", str(infra_file), "--state", str(state_dir))
    assert up.returncode == 0, up.stderr
    state = json.loads((state_dir / "state.json").read_text())
    assert state["status"] == "up" and set(state["hosts"]) == {"edge-0", "edge-1", "cloud-0"}
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for ns in ("sf-h-edge-0", "sf-h-edge-1", "sf-h-cloud-0", "sf-r-edge", "sf-r-cloud"):
        assert ns in names
    # data addresses exist only inside the namespaces
    assert "10.77.0." not in subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
    qdisc = subprocess.run(["tc", "-n", "sf-r-edge", "qdisc", "show"], capture_output=True, text=True).stdout
    assert "tbf" in qdisc and "20Mbit" in qdisc
    status = cli("testbed", "status", "--state", str(state_dir))
    assert status.returncode == 0, status.stderr
    assert "edge-0" in status.stdout and "10.77.0.10" in status.stdout
    again = cli("testbed", "up", str(infra_file), "--state", str(state_dir))
    assert again.returncode != 0 and again.stderr.startswith("error: a testbed is already up")
    down = cli("testbed", "down", "--state", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert leftovers() == []
    twice = cli("testbed", "down", "--state", str(state_dir))
    assert twice.returncode == 0 and "nothing to take down" in twice.stdout
    status = cli("testbed", "status", "--state", str(state_dir))
    assert status.returncode == 1 and status.stderr.startswith("error: no testbed is up")


def _up_until_a_worker_starts(infra_file: Path, state_dir: Path) -> subprocess.Popen:
    """`testbed up` started and caught while it starts the workers (namespaces, links, cgroups
    and some processes made)."""
    up = subprocess.Popen([sys.executable, "-m", "streamflow.cli", "testbed", "up", str(infra_file),
                           "--state", str(state_dir)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            res = json.loads((state_dir / "state.json").read_text())["resources"]
        except (OSError, ValueError, KeyError):
            res = []
        if any(r["kind"] == "process" and r.get("what") == "edge-0" and r.get("pid") for r in res):
            return up
        time.sleep(0.01)
    up.kill()
    pytest.fail("up never started a worker")


def test_down_after_sigkill_of_up(infra_file, state_dir) -> None:
    up = _up_until_a_worker_starts(infra_file, state_dir)
    up.send_signal(signal.SIGKILL)
    up.wait()
    assert leftovers(), "the killed up should have left a half-built testbed for down to find"
    down = cli("testbed", "down", "--state", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert leftovers() == []
    assert not (state_dir / "state.json").exists()


def test_ctrl_c_during_up_takes_down_what_it_made(infra_file, state_dir) -> None:
    up = _up_until_a_worker_starts(infra_file, state_dir)
    up.send_signal(signal.SIGINT)
    _, err = up.communicate(timeout=60)
    assert up.returncode == 130 and err.strip().splitlines()[-1] == "error: interrupted"
    assert leftovers() == []


def test_user_errors_are_one_line(tmp_path, testbed_host) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"tiers": ["edge"], "workers": [{"name": "e", "tier": "edge", "cpus": -1,
                                                               "cost_per_hour": 0}]}))
    result = cli("testbed", "up", str(bad), "--state", str(tmp_path / "s"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {bad}: workers[0].cpus: expected a number > 0, got -1"
    run = cli("run", str(REPO / "examples" / "relational" / "plan.json"), "--testbed", "--state", str(tmp_path / "s"))
    assert run.returncode == 1 and run.stderr.startswith("error: no testbed is up")


def test_up_needs_root(monkeypatch, infra_file, tmp_path) -> None:
    from streamflow.testbed.state import TestbedError
    from streamflow.testbed.up import bring_up
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(TestbedError, match="needs root"):
        bring_up(infra_file, tmp_path / "s")
