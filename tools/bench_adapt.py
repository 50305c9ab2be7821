"""What adapting costs: the output pause of a live switch, and how fast the controller reacts.

1. Live switch (no root needed): the relational example over three worker processes, switched
   at a random point to the same computation placed otherwise (an aggregate re-sharded from two
   workers to three, another aggregate and the join moved): switch time (abort -> new generation
   started), output pause (the sinks' last epoch before the switch -> their first after it; its
   peer: the epoch period, the gap between the sinks' epochs in any run), whether the old plan
   drained to the switch epoch (cluster/handover.py) or fell back to replaying from a periodic
   checkpoint, and records lost and duplicated against a static run. `--switches N` runs of it.
2. With --testbed (root): examples/adaptive on the testbed of examples/adaptive/infra.json with
   --adapt: reaction time (cameras 3 and 4 join at stream second 8, on the replay's clock ->
   the first new plan active), the time the new models took to load beside the running plan
   and the output pause of each switch, frames lost and duplicated over (camera, frame
   index) in the detections sink (examples/adaptive/check.py). Brings the testbed up and down.

Each switch runs twice, with the drain protocol and with the fallback that switches at the next
periodic checkpoint and replays from it, so the two compare in one run.

Usage: python tools/bench_adapt.py [--switches N] [--testbed]
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamflow.cluster.localcluster import LocalCluster  # noqa: E402
from streamflow.cluster.reconfigure import request  # noqa: E402
from streamflow.dataflow.worker import Worker  # noqa: E402
from streamflow.plan import build_graph, load_plan  # noqa: E402
from tools.benchutil import table  # noqa: E402
from tools.chaos_run import rows  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WORKERS = [("edge-0", "edge"), ("edge-1", "edge"), ("cloud-0", "cloud")]
SPEED = 0.5
PERIOD_S = 1.0 / SPEED  # 1000 ms epochs replayed at SPEED: the sinks move once per period


def relational(folder: Path, moved: bool) -> Path:
    plan = json.loads((REPO / "examples" / "relational" / "plan.json").read_text())
    for s in plan["sources"]:
        s.update(count=8000, rate_per_s=1000)
    plan["recovery"] = {"every_epochs": 1}
    if moved:
        ops = {o["name"]: o for o in plan["operators"]}
        ops["per-lane"]["placement"] = [{"worker": w, "share": 1} for w, _t in WORKERS]
        ops["speeders-per-camera"]["placement"] = [{"worker": "edge-1", "share": 1}]
        ops["lanes-vs-speeders"]["placement"] = [{"worker": "edge-1", "share": 1}]
        plan["name"] = "vehicle-speeds-moved"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("moved.json" if moved else "plan.json")
    path.write_text(json.dumps(plan))
    return path


def live_switch(cluster: LocalCluster, folder: Path, seed: int, want: Counter, drain: bool = True) -> dict:
    path, moved = relational(folder, False), relational(folder, True)

    def switcher() -> None:
        time.sleep(2.5 + random.Random(seed).uniform(0, 4))  # deployed, then somewhere in 8 s of stream
        request(cluster.listen, json.loads(moved.read_text()), str(moved), str(folder), 10)
    threading.Thread(target=switcher, daemon=True).start()
    report = cluster.run(path, speed=SPEED, drain_switch=drain)
    got = Counter(rows(folder / "out" / "lanes.jsonl"))
    a = report["adaptations"][0] if report["adaptations"] else {}
    return {"switch_s": a.get("switch_s"), "pause_s": a.get("output_pause_s"), "epoch": a.get("epoch"),
            "drained": a.get("drained"), "drain_s": a.get("drain_s"),
            "lost": sum((want - got).values()), "duplicated": sum((got - want).values())}


def testbed_run() -> None:
    def sh(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), capture_output=True, text=True)
    up = sh("streamflow", "testbed", "up", str(REPO / "examples" / "adaptive" / "infra.json"))
    if up.returncode != 0:
        print(f"testbed: could not bring it up: {(up.stderr or up.stdout).strip().splitlines()[-1:]}")
        return
    try:
        report_path = REPO / "examples" / "adaptive" / "out" / "bench-adapt-run.json"
        sh("streamflow", "run", str(REPO / "examples" / "adaptive" / "plan.json"), "--testbed", "--quiet", "--adapt",
           "--problem", str(REPO / "examples" / "adaptive" / "problem.json"), "--slo-ms", "3000",
           "--report", str(report_path))
        check = sh(sys.executable, str(REPO / "examples" / "adaptive" / "check.py"), str(report_path))
    finally:
        sh("streamflow", "testbed", "down")
    report = json.loads(report_path.read_text())
    plan = json.loads((REPO / "examples" / "adaptive" / "plan.json").read_text())
    from streamflow_traces.schedule import parse_schedule
    raw = plan["sources"][0]["schedule"]
    step = parse_schedule(raw).due(min(c["start_s"] for c in raw["cameras"].values()))
    ups = [a for a in report["adaptations"] if "at_s" in a and a["at_s"] >= step]
    print(f"adaptive on the testbed: {len(report['adaptations'])} adaptations; reaction time (load step at "
          f"{step:g} s -> new plan active): {ups[0]['at_s'] - step + (ups[0].get('switch_s') or 0):.1f} s"
          if ups else "adaptive on the testbed: no adaptation")
    for a in report["adaptations"]:
        print(f"  at {a['at_s']:.1f} s: {a.get('reason')} -> {a.get('summary')}; planned in {a.get('plan_s')} s, "
              f"models loaded beside the running plan in {a.get('preload_s')} s, switch {a.get('switch_s')} s, "
              f"output pause {a.get('output_pause_s')} s, "
              f"{'drained to' if a.get('drained') else 'epochs redone from'} checkpoint {a.get('checkpoint_epoch')}")
    print("  " + check.stdout.strip().replace("\n", "\n  "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=5, help="live switches of the relational example")
    parser.add_argument("--testbed", action="store_true", help="also run examples/adaptive on the testbed (root)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-adapt-") as tmp:
        ref = relational(Path(tmp) / "static", False)
        graph, _ = build_graph(load_plan(ref, speed=0))
        Worker(graph, check_records=True).run()
        want = Counter(rows(Path(tmp) / "static" / "out" / "lanes.jsonl"))
        results: list[tuple[str, dict]] = []
        with LocalCluster(WORKERS) as cluster:
            for i in range(args.switches):
                for mode in ("drain", "checkpoint"):
                    results.append((mode, live_switch(cluster, Path(tmp) / f"run-{mode}{i}", i, want, mode == "drain")))
        print(table([[mode, f"{r['epoch']}", "drained" if r["drained"] else "replayed", f"{r['drain_s']}",
                      f"{r['switch_s']}", f"{r['pause_s']}", str(r["lost"]), str(r["duplicated"])]
                     for mode, r in results],
                    ["protocol", "at epoch", "old plan", "drain s", "switch s", "output pause s", "lost", "duplicated"]))
        for mode in ("drain", "checkpoint"):
            runs = [r for m, r in results if m == mode]
            pauses = sorted(r["pause_s"] for r in runs if r["pause_s"] is not None)
            switches = sorted(r["switch_s"] for r in runs if r["switch_s"] is not None)
            if pauses and switches:
                print(f"live switch, {mode} protocol (relational, re-sharding over 3 processes): switch "
                      f"{switches[len(switches) // 2] * 1000:.0f} ms median, output pause {pauses[len(pauses) // 2] * 1000:.0f} ms "
                      f"median, {pauses[-1] * 1000:.0f} ms worst (epoch period: {PERIOD_S * 1000:.0f} ms, the sinks' gap "
                      f"without a switch); records lost {sum(r['lost'] for r in runs)}, duplicated "
                      f"{sum(r['duplicated'] for r in runs)}")
    if args.testbed:
        testbed_run()


if __name__ == "__main__":
    main()
