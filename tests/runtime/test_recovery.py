"""Recovery: checkpoints restored in one process, workers SIGKILLed mid-run over real processes
(spare, survivor, nobody), a killed coordinator and --resume; outputs equal undisturbed runs."""
from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamflow.cluster.localcluster import LocalCluster
from streamflow.communication.codec import pack_value, unpack_value
from streamflow.dataflow.worker import Worker
from streamflow.errors import StreamflowError
from streamflow.plan import build_graph, load_plan
from streamflow.recovery.checkpoint import Checkpointer
from streamflow.recovery.store import RecoveryStore

from tools.chaos_run import kill, rows

from tests.runtime.diffcheck import as_counter, random_pipeline, read_sink

REPO = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(REPO))


# one process: crash anywhere, restore the newest complete checkpoint, finish ---------------------
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), every=st.sampled_from([1, 2, 3, 5]), crash=st.integers(1, 8))
def test_restoring_a_checkpoint_after_a_crash_gives_the_reference(tmp_path_factory, seed, every, crash) -> None:
    pipeline = random_pipeline(random.Random(seed), ["w0", "w1", "w2"])
    folder = tmp_path_factory.mktemp("ck")
    (folder / "plan.json").write_text(json.dumps(pipeline.plan(str(folder))))
    snaps: dict[int, dict] = defaultdict(dict)
    graph, _ = build_graph(load_plan(folder / "plan.json"))
    first = Worker(graph, check_records=True, source_budget=1)
    first.checkpointer = Checkpointer(first, every, 0, lambda s: snaps[s.epoch].__setitem__(
        (s.operator, s.instance), pack_value([s.state, s.notify])))
    stateful = {(s.name, s.ctx.instance) for s in first.checkpointer.slots}
    first.run(until=lambda: first.steps >= crash)  # the "crash": this worker is simply dropped
    complete = [c for c, got in snaps.items() if set(got) == stateful]
    graph, _ = build_graph(load_plan(folder / "plan.json"))
    if complete:
        c = max(complete)
        states, notify = {}, {}
        for (op, inst), blob in snaps[c].items():
            states[op], notify.setdefault(op, {})[inst] = unpack_value(blob)
        second = Worker(graph, check_records=True, start_epoch=c + 1, restore=states, restored_notify=notify)
    else:
        second = Worker(graph, check_records=True)
    second.checkpointer = Checkpointer(second, every, second.start_epoch, lambda s: None)
    second.run()
    got = {name: as_counter(read_sink(folder, name)) for name in ("agg_out", "join_out")}
    want = pipeline.reference()
    assert got == want, pipeline


def logged_graph(epochs: int, log: list[tuple[str, int]]):
    """A source of one record per epoch into an operator that logs ("batch", epoch) for each
    batch it handles and ("snapshot", epoch) for each snapshot taken of it."""
    from streamflow import Operator
    from streamflow.dataflow.graph import EdgeSpec, Graph, OperatorSpec
    from streamflow.dataflow.source import IterableSource

    class Logged(Operator):
        n_outputs = 0

        def on_batch(self, epoch, batch, output) -> None:
            log.append(("batch", epoch))

        def snapshot(self, epoch):
            log.append(("snapshot", epoch))
            return len(log)

    g = Graph()
    g.add_operator(OperatorSpec("src", "source", 0, 1, lambda: IterableSource([(e, [e]) for e in range(epochs)])))
    g.add_operator(OperatorSpec("log", "log", 1, 0, Logged))
    g.add_edge(EdgeSpec("src", "log"))
    return g


def test_input_after_a_checkpoint_waits_for_the_snapshot() -> None:
    """An aligned operator never handles epoch c+1 before its snapshot of c is taken."""
    seen: list[tuple[str, int]] = []
    w = Worker(logged_graph(9, seen), source_budget=9)
    w.checkpointer = Checkpointer(w, 3, 0, lambda s: None)
    w.run()
    snaps = [i for i, (k, _e) in enumerate(seen) if k == "snapshot"]
    assert [seen[i][1] for i in snaps] == [2, 5]  # none at 8: the input ended, the state is final
    for i in snaps:
        c = seen[i][1]
        assert all(e <= c for k, e in seen[:i] if k == "batch")


# over processes ------------------------------------------------------------------------------
def relational_plan(folder: Path, count: int = 6000, utilization: float | None = None) -> Path:
    plan = json.loads((REPO / "examples" / "relational" / "plan.json").read_text())
    for s in plan["sources"]:
        s.update(count=count, rate_per_s=1000)
    plan["recovery"] = {"every_epochs": 1}
    if utilization is not None:
        plan["expected"]["utilization"] = utilization
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plan.json").write_text(json.dumps(plan))
    return folder / "plan.json"


def reference_rows(tmp_path: Path, **kw) -> list[str]:
    path = relational_plan(tmp_path / "reference", **kw)
    graph, _ = build_graph(load_plan(path, speed=0))
    Worker(graph, check_records=True).run()
    return rows(tmp_path / "reference" / "out" / "lanes.jsonl")


def committed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as c:
            return c.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    except sqlite3.OperationalError:  # the coordinator is creating it
        return 0


@pytest.mark.parametrize("seed, kills", [(0, 1), (1, 2), (2, 1)])
def test_killed_workers_are_replaced_and_the_output_is_the_undisturbed_one(tmp_path, seed, kills) -> None:
    """`run --local --spares 1`, SIGKILL cloud-0 (or whoever plays it) at random times: exit 0,
    the sink holds exactly the undisturbed run's records, the report lists every failure."""
    want = reference_rows(tmp_path)
    path = relational_plan(tmp_path / "run")
    proc = subprocess.Popen([sys.executable, "-m", "streamflow.cli", "run", str(path), "--local", "--spares", "1",
                             "--quiet", "--speed", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV)
    db = tmp_path / "run" / "out" / "vehicle-speeds-recovery" / "recovery.sqlite"
    rng = random.Random(seed)
    try:
        deadline = time.monotonic() + 60
        while committed(db) == 0 and time.monotonic() < deadline:  # deployed and under way
            time.sleep(0.05)
        players = ["cloud-0", "spare-1", "spare-2"]
        for k in range(kills):
            time.sleep(rng.uniform(0.2, 2.0))
            assert kill(players[k]), f"no process {players[k]}"
            if k + 1 < kills:
                time.sleep(2.0)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert rows(tmp_path / "run" / "out" / "lanes.jsonl") == want
    report = json.loads((tmp_path / "run" / "out" / "vehicle-speeds-run.json").read_text())
    assert [f["worker"] for f in report["failures"]] == players[:kills]
    for f in report["failures"]:
        assert f["recovery_s"] < 10 and f["detected_after_s"] < 5


def test_a_survivor_takes_over_when_there_is_no_spare(tmp_path) -> None:
    """Workers started by hand, no spare: edge-1's operators move to edge-0 (same tier, room)."""
    want = reference_rows(tmp_path)
    path = relational_plan(tmp_path / "run")
    with LocalCluster([("edge-0", "edge"), ("edge-1", "edge"), ("cloud-0", "cloud")]) as cluster:
        import threading

        def killer() -> None:
            db = tmp_path / "run" / "out" / "vehicle-speeds-recovery" / "recovery.sqlite"
            while committed(db) == 0:
                time.sleep(0.05)
            cluster.kill("edge-1")
        threading.Thread(target=killer, daemon=True).start()
        report = cluster.run(path, speed=0.5)
    assert report["status"] == "completed"
    assert [(f["worker"], f["taken_over_by"]) for f in report["failures"]] == [("edge-1", "edge-0")]
    assert rows(tmp_path / "run" / "out" / "lanes.jsonl") == want


def test_no_spare_and_no_room_ends_with_one_line_and_whole_committed_epochs(tmp_path) -> None:
    """A plan planned to 90 % utilisation leaves no survivor room: one line names the lost worker
    and the last committed epoch; the sink holds exactly the epochs up to it."""
    want = reference_rows(tmp_path, utilization=0.9)
    path = relational_plan(tmp_path / "run", utilization=0.9)
    with LocalCluster([("edge-0", "edge"), ("edge-1", "edge"), ("cloud-0", "cloud")]) as cluster:
        import threading

        def killer() -> None:
            db = tmp_path / "run" / "out" / "vehicle-speeds-recovery" / "recovery.sqlite"
            while committed(db) < 2:
                time.sleep(0.05)
            cluster.kill("edge-1")
        threading.Thread(target=killer, daemon=True).start()
        with pytest.raises(StreamflowError) as info:
            cluster.run(path, speed=0.5)
    message = str(info.value)
    assert "\n" not in message and "worker 'edge-1'" in message and "no spare" in message, message
    last = int(message.split("last committed epoch: ")[1].split()[0])
    got = rows(tmp_path / "run" / "out" / "lanes.jsonl")
    assert got == [r for r in want if json.loads(r)["epoch"] <= last] and got


def test_a_killed_coordinator_leaves_no_workers_and_resume_completes_the_run(tmp_path) -> None:
    want = reference_rows(tmp_path, count=8000)
    path = relational_plan(tmp_path / "run", count=8000)
    before = set(subprocess.run(["pgrep", "-f", "streamflow_workers.main"], capture_output=True, text=True).stdout.split())
    proc = subprocess.Popen([sys.executable, "-m", "streamflow.cli", "run", str(path), "--local", "--spares", "1",
                             "--quiet", "--speed", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    recovery_dir = tmp_path / "run" / "out" / "vehicle-speeds-recovery"
    try:
        deadline = time.monotonic() + 60
        while committed(recovery_dir / "recovery.sqlite") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = set(subprocess.run(["pgrep", "-f", "streamflow_workers.main"], capture_output=True,
                                     text=True).stdout.split()) - before
        assert len(workers) == 4  # three plan workers and the spare
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = time.monotonic()
        while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() - killed < 15:
            time.sleep(0.1)
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "orphaned workers"
        assert time.monotonic() - killed < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    store = RecoveryStore(recovery_dir)
    assert store.latest_run().status == "running"
    store.close()
    result = subprocess.run([sys.executable, "-m", "streamflow.cli", "run", "--resume", str(recovery_dir), "--local",
                             "--quiet"], capture_output=True, text=True, timeout=120, env=ENV)
    assert result.returncode == 0, result.stderr
    assert rows(tmp_path / "run" / "out" / "lanes.jsonl") == want
    again = subprocess.run([sys.executable, "-m", "streamflow.cli", "run", "--resume", str(recovery_dir)],
                           capture_output=True, text=True, timeout=60, env=ENV)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "already completed" in again.stderr


# live reconfiguration -----------------------------------------------------------------------------
def switched_plan(path: Path) -> Path:
    """The same computation placed otherwise: the per-lane aggregate on three workers instead of
    two (re-sharded), the speeders count and the join moved, the speeding filter rewritten."""
    plan = json.loads(path.read_text())
    ops = {o["name"]: o for o in plan["operators"]}
    ops["per-lane"]["placement"] = [{"worker": w, "share": 1} for w in ("edge-0", "edge-1", "cloud-0")]
    ops["speeders-per-camera"]["placement"] = [{"worker": "edge-1", "share": 1}, {"worker": "edge-0", "share": 1}]
    ops["lanes-vs-speeders"]["placement"] = [{"worker": "edge-1", "share": 1}]
    ops["speeding"]["params"]["where"] = {"expr": "110 < r['speed_kmh']"}
    plan["name"] = "vehicle-speeds-moved"
    out = path.with_name("moved.json")
    out.write_text(json.dumps(plan))
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_a_live_switch_with_resharding_gives_the_static_output(tmp_path, seed) -> None:
    import threading

    from streamflow.cluster.reconfigure import request
    want = reference_rows(tmp_path)
    path = relational_plan(tmp_path / "run")
    moved = switched_plan(path)
    answers: list[str] = []
    with LocalCluster([("edge-0", "edge"), ("edge-1", "edge"), ("cloud-0", "cloud")]) as cluster:
        def switcher() -> None:
            db = tmp_path / "run" / "out" / "vehicle-speeds-recovery" / "recovery.sqlite"
            while committed(db) == 0:
                time.sleep(0.05)
            time.sleep(random.Random(seed).uniform(0.0, 3.0))
            answers.append(request(cluster.listen, json.loads(moved.read_text()), str(moved), str(moved.parent), 10))
        threading.Thread(target=switcher, daemon=True).start()
        report = cluster.run(path, speed=0.5)
    assert answers and "switching" in answers[0]
    assert report["status"] == "completed", report["error"]
    assert [a["to"] for a in report["adaptations"]] == ["vehicle-speeds-moved"]
    switch = report["adaptations"][0]
    assert 0 < switch["switch_s"] < 10 and switch["output_pause_s"] is not None
    assert set(report["operators"]["per-lane"]["instances"]) == {"edge-0", "edge-1", "cloud-0"}
    assert rows(tmp_path / "run" / "out" / "lanes.jsonl") == want


def test_a_reconfiguration_naming_unknown_workers_is_refused_with_one_line(tmp_path) -> None:
    import threading

    from streamflow.cluster.reconfigure import ReconfigureRefused, request
    path = relational_plan(tmp_path / "run", count=3000)
    plan = json.loads(path.read_text())
    plan["workers"].append({"name": "cloud-9", "tier": "cloud"})
    plan["sinks"][0]["worker"] = "cloud-9"
    errors: list[str] = []
    with LocalCluster([("edge-0", "edge"), ("edge-1", "edge"), ("cloud-0", "cloud")]) as cluster:
        def switcher() -> None:
            time.sleep(2.0)
            try:
                request(cluster.listen, plan, str(path), str(path.parent), 10)
            except ReconfigureRefused as exc:
                errors.append(str(exc))
        threading.Thread(target=switcher, daemon=True).start()
        report = cluster.run(path, speed=0.5)
    assert report["status"] == "completed" and not report["adaptations"]
    assert errors == ["reconfigure: workers cloud-9 have not registered"]


def variant_plan(path: Path, variant: str, workers: list[str]) -> dict:
    """The relational example with a `scale` operator of the given variant before the filters."""
    plan = json.loads(path.read_text())
    plan["operators"].insert(0, {"name": "scale", "kind": "python", "inputs": [{"from": "cam-a", "partition": "weighted"}],
                                 "placement": [{"worker": w, "share": 1} for w in workers],
                                 "params": {"class": "tests.runtime.variants:SleepyScale", "args": {"variant": variant}}})
    ops = {o["name"]: o for o in plan["operators"]}
    ops["valid-a"]["inputs"] = [{"from": "scale", "partition": "weighted"}]
    ops["valid-a"]["placement"] = [{"worker": "edge-0", "share": 1}]
    return plan


@pytest.mark.parametrize("seed", [0, 1])
def test_a_live_variant_switch_gives_the_static_output(tmp_path, seed) -> None:
    """The `scale` operator switches from its slow variant on edge-0 to its fast one on edge-1
    and cloud-0 at a random point; the sink equals a static run's."""
    import threading

    from streamflow.cluster.reconfigure import request
    static = tmp_path / "static"
    static.mkdir()
    (static / "plan.json").write_text(json.dumps(variant_plan(relational_plan(tmp_path / "base"), "slow", ["edge-0"])))
    graph, _ = build_graph(load_plan(static / "plan.json", speed=0))
    Worker(graph, check_records=True).run()
    want = rows(static / "out" / "lanes.jsonl")
    run = tmp_path / "run"
    run.mkdir()
    (run / "plan.json").write_text(json.dumps(variant_plan(relational_plan(tmp_path / "base"), "slow", ["edge-0"])))
    fast = variant_plan(relational_plan(tmp_path / "base"), "fast", ["edge-1", "cloud-0"])
    with LocalCluster([("edge-0", "edge"), ("edge-1", "edge"), ("cloud-0", "cloud")]) as cluster:
        def switcher() -> None:
            db = run / "out" / "vehicle-speeds-recovery" / "recovery.sqlite"
            while committed(db) == 0:
                time.sleep(0.05)
            time.sleep(random.Random(seed).uniform(0.0, 3.0))
            request(cluster.listen, fast, str(run / "fast.json"), str(run), 10)
        threading.Thread(target=switcher, daemon=True).start()
        report = cluster.run(run / "plan.json", speed=0.5)
    assert report["status"] == "completed", report["error"]
    assert len(report["adaptations"]) == 1
    assert set(report["operators"]["scale"]["instances"]) == {"edge-0", "edge-1", "cloud-0"}
    assert rows(run / "out" / "lanes.jsonl") == want


def test_paused_sources_complete_the_epochs_before_the_pause_and_hold_the_rest() -> None:
    """The sources' side of a drain (cluster/handover.py): epochs before e complete downstream,
    none at or after e is emitted, the checkpoint announced at e-1 is taken, lifting emits the rest."""
    log: list[tuple[str, int]] = []
    w = Worker(logged_graph(10, log), source_budget=1)
    w.checkpointer = Checkpointer(w, 100, 0, lambda s: None)
    w.start()
    for _ in range(3):
        w.step()
    assert w.late_sources(1) and not w.late_sources(6)  # it has emitted epoch 1, not 6 yet
    w.pause_sources(6)
    w.checkpointer.announce(5)
    while w.step():
        pass
    assert log == [("batch", e) for e in range(6)] + [("snapshot", 5)] and w.last_complete_epoch() == 5
    w.pause_sources(float("inf"))
    while not w.done():
        w.step()
    w.close()
    assert [e for k, e in log if k == "batch"] == list(range(10))
