"""No notification fires early across a live switch: random small dataflows with a notifying,
keyed operator (tests/runtime/notifyaudit.py) over three real worker processes, switched through
the coordinator (`streamflow reconfigure`'s request) to a random other placement (re-sharding
its keyed state) and variant at a random time; every notification for a window comes after all
of the window's records, in whichever configuration, and exactly once."""
from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamflow.cluster.localcluster import LocalCluster
from streamflow.cluster.reconfigure import request
from streamflow.dataflow.worker import Worker
from streamflow.plan import build_graph, load_plan

WORKERS = [("edge-0", "edge"), ("edge-1", "edge"), ("cloud-0", "cloud")]
NAMES = [w for w, _t in WORKERS]


def random_plan(rng: random.Random) -> dict:
    """One or two generator sources, maybe a union and a filter, the audit (keyed, windowed,
    on one to three workers), a JSON Lines sink; every operator placed at random."""
    n_sources = rng.choice((1, 2))
    sources = [{"name": f"cam-{i}", "kind": "generator", "worker": rng.choice(NAMES), "count": 2400,
                "rate_per_s": 800, "batch_size": rng.choice((20, 50, 100)), "seed": rng.randrange(1000),
                "fields": {"camera": {"const": f"cam-{i}"}, "lane": {"int": [0, 6]},
                           "speed_kmh": {"normal": [90, 20]}}} for i in range(n_sources)]
    ops: list[dict] = []
    upstream = "cam-0"
    if n_sources == 2:
        ops.append({"name": "both", "kind": "union", "inputs": [{"from": "cam-0"}, {"from": "cam-1"}],
                    "placement": [{"worker": rng.choice(NAMES), "share": 1}]})
        upstream = "both"
    if rng.random() < 0.5:
        ops.append({"name": "valid", "kind": "filter", "params": {"where": {"expr": "r['speed_kmh'] > 70"}},
                    "inputs": [{"from": upstream}], "placement": [{"worker": rng.choice(NAMES), "share": 1}]})
        upstream = "valid"
    key = rng.choice([["lane"], ["camera", "lane"]])
    ops.append({"name": "audit", "kind": "python", "variant": rng.choice(("fast", "slow")),
                "inputs": [{"from": upstream, "partition": "hash", "key": key}],
                "placement": [{"worker": w, "share": 1} for w in rng.sample(NAMES, rng.randint(1, 3))],
                "params": {"class": "tests.runtime.notifyaudit:NotificationAudit",
                           "args": {"key": key, "window": rng.choice((1, 2, 3))}}})
    ops.append({"name": "audit2", "kind": "python",
                "inputs": [{"from": "audit", "partition": "hash", "key": "window_end"}],
                "placement": [{"worker": w, "share": 1} for w in rng.sample(NAMES, rng.randint(1, 3))],
                "params": {"class": "tests.runtime.notifyaudit:NotificationAudit",
                           "args": {"key": ["window_end"], "window": 1}}})
    return {"version": 1, "name": "audit", "epoch": {"unit": "ms", "size": 250},
            "workers": [{"name": w, "tier": t, "cost_per_hour": 0.05} for w, t in WORKERS],
            "sources": sources, "operators": ops,
            "sinks": [{"name": "rows", "from": "audit", "path": "out/rows.jsonl", "worker": rng.choice(NAMES)},
                      {"name": "rows2", "from": "audit2", "path": "out/rows2.jsonl", "worker": rng.choice(NAMES)}],
            "recovery": {"every_epochs": rng.choice((1, 2, 3))}}


def switched(plan: dict, rng: random.Random) -> dict:
    """The same computation, the audit on another set of workers (its keyed state re-sharded)
    and maybe the other variant; the stateless operators maybe moved too."""
    new = json.loads(json.dumps(plan))
    new["name"] = "audit-switched"
    ops = {o["name"]: o for o in new["operators"]}
    audit = ops["audit"]
    before = [p["worker"] for p in audit["placement"]]
    while True:
        after = rng.sample(NAMES, rng.randint(1, 3))
        variant = rng.choice(("fast", "slow"))
        if after != before or variant != audit["variant"]:
            break
    audit["placement"] = [{"worker": w, "share": 1} for w in after]
    audit["variant"] = variant
    for name in ("both", "valid"):
        if name in ops and rng.random() < 0.5:
            ops[name]["placement"] = [{"worker": rng.choice(NAMES), "share": 1}]
    if rng.random() < 0.5:
        ops["audit2"]["placement"] = [{"worker": w, "share": 1} for w in rng.sample(NAMES, rng.randint(1, 3))]
    return new


def sink_rows(folder: Path, name: str = "rows") -> list[dict]:
    out = []
    for path in sorted((folder / "out").glob(f"{name}.*jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines()]
    return out


def committed(db: Path) -> int:
    try:
        with sqlite3.connect(db) as c:
            return c.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    except sqlite3.OperationalError:  # not there yet, or being created
        return 0


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(WORKERS) as c:
        yield c


@pytest.mark.parametrize("drain", [True, False], ids=["drain", "at-checkpoint"])
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1), delay=st.floats(0.0, 1.2))
def test_no_notification_fires_early_or_twice_across_a_live_switch(cluster, tmp_path_factory, drain, seed,
                                                                   delay) -> None:
    """Both switch protocols: the drain to an epoch boundary and its fallback, the switch at
    the next periodic checkpoint with a replay from it."""
    rng = random.Random(seed)
    plan = random_plan(rng)
    new = switched(plan, rng)
    static = tmp_path_factory.mktemp("static")
    (static / "plan.json").write_text(json.dumps(plan))
    graph, _ = build_graph(load_plan(static / "plan.json", speed=0))
    Worker(graph, check_records=True).run()
    want = {name: Counter((json.dumps(r["key"]), r["window_end"], r["n"]) for r in sink_rows(static, name))
            for name in ("rows", "rows2")}
    assert want["rows"] and not any("late" in r for name in want for r in sink_rows(static, name))

    run = tmp_path_factory.mktemp("run")
    (run / "plan.json").write_text(json.dumps(plan))
    answers: list[str] = []

    def switcher() -> None:
        db = run / "out" / "audit-recovery" / "recovery.sqlite"
        deadline = time.monotonic() + 30
        while committed(db) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(delay)
        answers.append(request(cluster.listen, new, str(run / "switched.json"), str(run), 10))
    thread = threading.Thread(target=switcher, daemon=True)
    thread.start()
    report = cluster.run(run / "plan.json", speed=1.0, drain_switch=drain)
    thread.join(5)
    assert report["status"] == "completed", report["error"]
    assert answers and "switching" in answers[0], answers
    assert [a["to"] for a in report["adaptations"]] == ["audit-switched"], report["adaptations"]
    assert report["adaptations"][0]["drained"] == drain
    for name in ("rows", "rows2"):  # the first audit's rows, and the second one's over them
        rows = sink_rows(run, name)
        late = [r for r in rows if "late" in r]
        assert not late, f"{name}: records arrived after the notification for their epoch: {late[:3]}"
        got = Counter((json.dumps(r["key"]), r["window_end"], r["n"]) for r in rows)
        windows = Counter((json.dumps(r["key"]), r["window_end"]) for r in rows)
        assert not [w for w, n in windows.items() if n > 1], f"{name}: a window notified twice"
        assert got == want[name], (name, plan, new, report["adaptations"])
