"""Real worker processes over real ZeroMQ sockets: the same results and notifications as in
one process, every partitioning kind, plan errors, a worker killed mid-run, and flow control."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from streamflow.cluster.local import free_port, worker_command, worker_env
from streamflow.cluster.localcluster import LocalCluster
from streamflow.dataflow.worker import Worker
from streamflow.plan import build_graph, load_plan

from tools.bench_flow_control import rss_bytes

from .dagcheck import check_logs, random_spec, to_plan

REPO = Path(__file__).resolve().parents[2]
WORKERS = [("w0", "edge"), ("w1", "edge"), ("w2", "cloud")]


def start_worker(name: str, tier: str, listen: str, *extra: str) -> subprocess.Popen:
    """`streamflow-worker` started by hand, as a user would on each host (the installed console
    script when there is one, else the same entry point through `python -m streamflow_workers.main`)."""
    cmd = worker_command(name, tier, listen, once="--once" in extra, allow_import=("tests", "tools"))
    script = shutil.which("streamflow-worker")
    if script is not None:
        cmd = [script, *cmd[3:]]
    return subprocess.Popen(cmd, env=worker_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def cluster():
    """Three worker daemons started by hand, serving one run after another."""
    with LocalCluster(WORKERS) as c:
        yield c


def run_in_process(plan: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plan.json"
    path.write_text(json.dumps(plan))
    graph, _ = build_graph(load_plan(path))
    Worker(graph, check_records=True).run()


def workers_block() -> list[dict]:
    return [{"name": n, "tier": t, "cost_per_hour": 0.1} for n, t in WORKERS]


@pytest.mark.parametrize("seed", range(6))
def test_random_dags_across_three_processes(cluster, tmp_path, seed) -> None:
    rng = random.Random(1000 + seed)
    spec = random_spec(rng, max_sources=2, max_ops=5)
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    plan, copies = to_plan(spec, [n for n, _ in WORKERS], rng, str(log_dir))
    plan["workers"] = workers_block()
    report = cluster.run(plan, folder=tmp_path)
    assert report["status"] == "completed"
    check_logs(spec, copies, str(log_dir))


def partition_plan() -> dict:
    """forward, weighted, hash and broadcast edges feeding an aggregate and a join."""
    gen = {"count": 3000, "rate_per_s": 3000, "batch_size": 50, "speed": 0,
           "fields": {"lane": {"int": [0, 5]}, "speed": {"normal": [90, 15]}}}
    return {
        "version": 1, "name": "partitions", "epoch": {"unit": "ms", "size": 100},
        "workers": workers_block(),
        "sources": [{"name": "g", "kind": "generator", "placement": [{"worker": "w0"}, {"worker": "w1"}], **gen}],
        "operators": [
            {"name": "fwd", "kind": "map", "params": {"fn": {"expr": "{**r, 'fast': r['speed'] > 100}"}},
             "inputs": [{"from": "g", "partition": "forward"}],
             "placement": [{"worker": "w0"}, {"worker": "w1"}]},
            {"name": "spread", "kind": "filter", "params": {"where": {"expr": "r['lane'] != 2"}},
             "inputs": [{"from": "fwd", "partition": "weighted"}],
             "placement": [{"worker": "w1", "share": 1}, {"worker": "w2", "share": 3}]},
            {"name": "per-lane", "kind": "aggregate",
             "params": {"key": "lane", "agg": "sum", "value": "speed", "as": "total"},
             "inputs": [{"from": "spread", "partition": "hash", "key": "lane"}],
             "placement": [{"worker": "w0"}, {"worker": "w1"}, {"worker": "w2"}]},
            {"name": "lanes", "kind": "aggregate", "params": {"key": "lane", "agg": "count", "as": "n"},
             "inputs": [{"from": "fwd", "partition": "broadcast"}],
             "placement": [{"worker": "w2"}]},
            {"name": "joined", "kind": "join", "params": {"left_key": "lane", "how": "outer"},
             "inputs": [{"from": "per-lane"}, {"from": "lanes"}], "placement": [{"worker": "w0"}, {"worker": "w2"}]},
        ],
        "sinks": [{"name": "out", "from": "joined", "path": "out/joined.jsonl", "worker": "w2"}],
    }


def rows(path: Path) -> Counter:
    return Counter(json.dumps({k: (round(v, 6) if isinstance(v, float) else v) for k, v in json.loads(line).items()},
                              sort_keys=True) for line in path.read_text().splitlines())


def test_every_partition_kind_gives_the_in_process_results(cluster, tmp_path) -> None:
    plan = partition_plan()
    report = cluster.run(plan, folder=tmp_path / "dist")
    assert report["status"] == "completed"
    assert report["operators"]["g"]["records"] == 3000
    assert set(report["operators"]["per-lane"]["instances"]) == {"w0", "w1", "w2"}
    assert any(b > 0 for b in report["links_bytes"].values())
    run_in_process(plan, tmp_path / "one")
    distributed = rows(tmp_path / "dist" / "out" / "joined.jsonl")
    assert distributed == rows(tmp_path / "one" / "out" / "joined.jsonl")
    assert sum(distributed.values()) > 0


def test_one_slow_loading_worker_does_not_make_the_others_drop_the_run(cluster, tmp_path) -> None:
    """w2 takes 8 s to build its operator, past the 6 s after which a worker gives up on a silent
    coordinator; the coordinator pings w0 and w1 while it waits, so nobody drops the run."""
    gen = {"count": 200, "rate_per_s": 2000, "batch_size": 20, "speed": 0, "fields": {"x": {"int": [0, 9]}}}
    plan = {
        "version": 1, "name": "slow-load", "epoch": {"unit": "ms", "size": 100}, "workers": workers_block(),
        "sources": [{"name": "g", "kind": "generator", "placement": [{"worker": "w0"}], **gen}],
        "operators": [{"name": "slow", "kind": "map", "params": {"fn": {"import": "tests.runtime.slowload:tag"}},
                       "inputs": [{"from": "g"}], "placement": [{"worker": "w2"}]}],
        "sinks": [{"name": "out", "from": "slow", "path": "out/slow.jsonl", "worker": "w1"}],
    }
    report = cluster.run(plan, folder=tmp_path)
    assert report["status"] == "completed" and report["failures"] == []
    lines = (tmp_path / "out" / "slow.jsonl").read_text().splitlines()
    assert len(lines) == 200 and all(json.loads(line)["slow"] for line in lines)


def test_a_worker_that_drops_a_run_says_so(tmp_path) -> None:
    """A coordinator (a bare socket here) that deploys and then says nothing: the worker gives the
    run up after COORDINATOR_SILENCE_S and tells the coordinator, which can fail the run at once."""
    import msgpack
    import zmq
    from streamflow.cluster.worker_process import COORDINATOR_SILENCE_S
    port = free_port()
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(f"tcp://127.0.0.1:{port}")
    worker = start_worker("w0", "edge", f"tcp://127.0.0.1:{port}")
    plan = {"version": 1, "name": "silent", "workers": [{"name": "w0", "tier": "edge"}],
            "sources": [{"name": "g", "kind": "generator", "placement": [{"worker": "w0"}], "count": 10,
                         "speed": 0, "fields": {"x": {"int": [0, 9]}}}],
            "operators": [], "sinks": [{"name": "out", "from": "g", "path": str(tmp_path / "out.jsonl")}]}
    got: dict[bytes, tuple[float, dict]] = {}
    try:
        while True:
            assert router.poll(20_000), "the worker never registered"
            identity, kind, _body = router.recv_multipart()
            if kind == b"register":
                break
        router.send_multipart([identity, b"deploy", msgpack.packb({"run": "r0", "plan": plan})])
        deadline = time.monotonic() + COORDINATOR_SILENCE_S + 10
        while time.monotonic() < deadline and b"failed" not in got:
            if not router.poll(500):
                continue
            frames = router.recv_multipart()
            if frames[0] == identity and len(frames) == 3:
                got[frames[1]] = (time.monotonic(), msgpack.unpackb(frames[2]))
    finally:
        worker.kill()
        worker.wait(timeout=10)
        router.close()
        context.term()
    assert b"deployed" in got and b"failed" in got, sorted(got)
    deployed_at, failed_at = got[b"deployed"][0], got[b"failed"][0]
    assert COORDINATOR_SILENCE_S - 1 <= failed_at - deployed_at <= COORDINATOR_SILENCE_S + 3
    body = got[b"failed"][1]
    assert body["run"] == "r0" and "no word from the coordinator" in body["error"] and "'wire'" in body["error"]


def test_local_cli_runs_the_example_and_matches_in_process(tmp_path) -> None:
    plan = json.loads((REPO / "examples" / "relational" / "plan.json").read_text())
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "plan.json").write_text(json.dumps(plan))
    result = subprocess.run([sys.executable, "-m", "streamflow.cli", "run", str(tmp_path / "dist" / "plan.json"),
                             "--local", "--speed", "0", "--quiet"], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr
    assert "completed" in result.stdout and "cost: 0.5000/h" in result.stdout
    report = json.loads((tmp_path / "dist" / "out" / "vehicle-speeds-run.json").read_text())
    assert report["status"] == "completed" and report["totals"]["source_records"] == 8000
    run_in_process(plan, tmp_path / "one")
    assert rows(tmp_path / "dist" / "out" / "lanes.jsonl") == rows(tmp_path / "one" / "out" / "lanes.jsonl")


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p["sinks"][0].update({"worker": "hub-9"}), "sinks[0].worker: no such worker 'hub-9'"),
    (lambda p: p["operators"][0].pop("kind"), "operators[0].kind: missing"),
    (lambda p: p["operators"][2]["inputs"][0].update({"from": "lanes-vs-speeders"}), "operators: cycle"),
    (lambda p: p["operators"][3].update({"kind": "teleport"}), "operators[3].kind: unknown operator kind 'teleport'"),
])
def test_run_rejects_bad_plans_with_one_line(tmp_path, mutate, message) -> None:
    plan = json.loads((REPO / "examples" / "relational" / "plan.json").read_text())
    mutate(plan)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    result = subprocess.run([sys.executable, "-m", "streamflow.cli", "run", str(tmp_path / "plan.json"), "--local"],
                            capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_a_worker_killed_mid_run_is_named_within_5s(tmp_path) -> None:
    """Without checkpoints (recovery off) a lost worker ends the run, naming it."""
    listen = f"tcp://127.0.0.1:{free_port()}"
    procs = {name: start_worker(name, tier, listen, "--once") for name, tier in WORKERS}
    plan = partition_plan()
    plan["recovery"] = False
    plan["sources"][0].update({"count": 200_000, "rate_per_s": 2000, "speed": 1})
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    coordinator = subprocess.Popen([sys.executable, "-m", "streamflow.cli", "run", str(path), "--listen", listen,
                                    "--quiet", "--report", str(tmp_path / "run.json")],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        time.sleep(5)  # registration, deployment, then a few epochs of data
        assert coordinator.poll() is None, coordinator.communicate()
        procs["w1"].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        _out, err = coordinator.communicate(timeout=30)
        noticed = time.monotonic() - killed
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        if coordinator.poll() is None:
            coordinator.kill()
    assert coordinator.returncode not in (0, None)
    assert "worker 'w1'" in err and "last complete epoch" in err, err
    assert noticed < 5 + 3, f"took {noticed:.1f} s to end the run"  # named within 5 s, plus teardown
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["status"] == "failed" and "w1" in report["error"]
    assert report["operators"]["g"]["records"] > 0
    assert (tmp_path / "out" / "joined.jsonl").exists()


def test_flow_control_keeps_memory_flat(tmp_path) -> None:
    listen = f"tcp://127.0.0.1:{free_port()}"
    procs = {name: start_worker(name, tier, listen, "--once") for name, tier in WORKERS[:2]}
    plan = {"version": 1, "name": "flow", "workers": workers_block()[:2],
            "sources": [{"name": "frames", "kind": "python", "worker": "w0",
                         "params": {"class": "tools.bench_ops:FrameSource", "args": {"count": 1_000_000, "shape": [1 << 20]}}}],
            "operators": [],
            "sinks": [{"name": "slow", "kind": "python", "from": "frames", "worker": "w1",
                       "params": {"class": "tools.bench_ops:SleepySink", "args": {"ms": 10}}}]}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    coordinator = subprocess.Popen([sys.executable, "-m", "streamflow.cli", "run", str(path), "--listen", listen,
                                    "--quiet", "--timeout", "12", "--report", str(tmp_path / "run.json"),
                                    "--credit-window", str(8 << 20), "--allow-import", "tools"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=dict(os.environ, PYTHONPATH=str(REPO)))
    peak = 0
    try:
        while coordinator.poll() is None:
            peak = max(peak, sum(rss_bytes(p.pid) for p in procs.values()))
            time.sleep(0.2)
    finally:
        for p in procs.values():
            p.wait(timeout=20)
    report = json.loads((tmp_path / "run.json").read_text())
    sent = report["operators"]["frames"]["records"]
    slept = report["operators"]["slow"]["records"]
    assert report["status"] == "failed" and "timed out" in report["error"]
    assert 300 < slept <= sent, (sent, slept)  # ~100 frames/s for ~10 s reached the sink
    assert sent - slept < 40, f"the source ran {sent - slept} frames ahead of the sink"
    assert peak < 500 << 20, f"resident memory peaked at {peak / 2**20:.0f} MB"
    print(f"flow control: {sent} frames sent, {slept} consumed, peak RSS of both workers {peak / 2**20:.0f} MB")


def test_a_sink_with_a_forward_partition_takes_its_own_workers_records(cluster) -> None:
    """`"partition": "forward"` on a sink placed with its upstream: each instance counts what its
    own worker made and no record crosses (the default splits by share across workers)."""
    from tools.bench_channels import split_pipeline
    plan = split_pipeline(20_000)
    report = cluster.run(plan)
    assert report["status"] == "completed" and report["operators"]["count"]["records"] == 20_000
    assert {w: i["records"] for w, i in report["operators"]["count"]["instances"].items()} == \
        {"w0": 10_000, "w1": 10_000}
    assert report["links_bytes"].get("w0 -> w1", 0) == 0  # no data crossed
    plan["sinks"][0].pop("partition")
    report = cluster.run(plan)
    assert report["links_bytes"]["w0 -> w1"] > 10_000  # half of w0's batches crossed


def test_a_sink_partition_is_checked_like_an_inputs() -> None:
    from streamflow.errors import PlanError
    from streamflow.plan import parse_plan
    from tools.bench_channels import split_pipeline
    plan = split_pipeline(10)
    plan["sinks"][0]["partition"] = "round-robin"
    with pytest.raises(PlanError, match=r"sinks\[0\]\.partition: expected one of forward, weighted, hash, broadcast"):
        parse_plan(plan)
    plan["sinks"][0]["partition"] = "hash"
    with pytest.raises(PlanError, match=r"sinks\[0\]\.key: a hash partition needs a key"):
        parse_plan(plan)
    plan["sinks"][0]["key"] = {"expr": "r % 3"}
    graph, _placement = build_graph(parse_plan(plan))
    (edge,) = [e for e in graph.edges if e.dst == "count"]
    assert edge.partition == "hash" and edge.key(7) == 1
