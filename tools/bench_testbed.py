"""Records/s of the relational example over the emulated testbed vs `--local`, in one invocation
(root; brings up its own testbed from examples/relational/infra.json and takes it down).

    heavy python tools/bench_testbed.py [--records 200000] [--repeat 2]

Both modes run the same plan (sources as fast as they go, `--speed 0`, RECORDS per source)
through `streamflow run`: `--local` starts three worker processes on this machine's cores over
loopback; `--testbed` runs on the testbed's long-lived workers, two edge hosts at 0.5 cores and a
cloud host at 1 core, with every record from the edge crossing a 100 Mbit/s, 20 ms link. The
figure is source records / run time (best of --repeat), as the run report states it.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamflow.testbed import Testbed  # noqa: E402
from tools.testbed_runs import run_plan  # noqa: E402

EXAMPLE = REPO / "examples" / "relational"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000, help="records per source (two sources)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--state", default="/run/streamflow-testbed-bench")
    args = ap.parse_args(argv)
    plan = json.loads((EXAMPLE / "plan.json").read_text())
    for s in plan["sources"]:
        s["count"] = args.records
        s["batch_size"] = 1000
    with tempfile.TemporaryDirectory(prefix="bench-testbed-") as tmp:
        path = Path(tmp) / "plan.json"
        path.write_text(json.dumps(plan))
        best: dict[str, dict] = {}
        with Testbed(EXAMPLE / "infra.json", args.state) as state:
            for i in range(args.repeat):
                for mode in ("local", "testbed"):
                    report = run_plan(path, Path(tmp) / f"{mode}-{i}.json", local=mode == "local",
                                      state=state.dir, speed=0)
                    rate = report["totals"]["throughput_per_s"]
                    print(f"{mode:8s} run {i + 1}: {rate:,.0f} records/s ({report['totals']['source_records']:,} "
                          f"records in {report['duration_s']:.2f} s; epoch latency p99 "
                          f"{report['totals']['epoch_latency_ms']['p99']} ms)", flush=True)
                    if mode not in best or rate > best[mode]["totals"]["throughput_per_s"]:
                        best[mode] = report
    local, testbed = (best[m]["totals"]["throughput_per_s"] for m in ("local", "testbed"))
    print(f"\nrelational example, {2 * args.records:,} records, best of {args.repeat}:")
    print(f"  --local   (3 processes, loopback, no quotas):                  {local:,.0f} records/s")
    print(f"  --testbed (0.5/0.5/1.0 cores, 100 Mbit/s 20 ms edge<->cloud):  {testbed:,.0f} records/s "
          f"({testbed / local:.2f} x local)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
