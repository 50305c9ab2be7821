"""Kill a worker mid-run and check that the run's output is exactly an undisturbed run's.

    python tools/chaos_run.py examples/traffic/plan.json --role hub-1 --kills 1 --spares 1
    python tools/chaos_run.py examples/relational/plan.json --role cloud-0 --kills 3

Runs the plan undisturbed with --local (or takes --reference DIR, sink files of such a run),
then again with --local --spares N, sending SIGKILL to the process that plays `--role` (the plan
worker, or whoever took its operators over after an earlier kill) at random points between 30 %
and 70 % of the undisturbed run's duration. Prints each failure as the run report lists it, and
compares every JSON Lines sink with the undisturbed run's after sorting (fields that hold wall
clock times, `emitted_at`, are left out). Exit status 0 when the run completed and every sink is
identical.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLOCK_FIELDS = ("emitted_at",)


def sink_paths(plan_path: Path) -> list[Path]:
    plan = json.loads(plan_path.read_text())
    return [(plan_path.parent / s["path"]).resolve() for s in plan.get("sinks", []) if "path" in s]


def rows(path: Path) -> list[str]:
    """A sink file's records, canonical JSON without wall-clock fields, sorted."""
    out = []
    for files in sorted(path.parent.glob(f"{path.stem}*{path.suffix}")):
        for line in files.read_text().splitlines():
            record = json.loads(line)
            for f in CLOCK_FIELDS:
                record.pop(f, None)
            out.append(json.dumps(record, sort_keys=True))
    return sorted(out)


def run(plan: Path, extra: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "streamflow.cli", "run", str(plan), "--local", "--quiet", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def holder(recovery_db: Path, role: str) -> str:
    """The worker process that plays `role` now: the plan worker, or who took it over."""
    name = role
    if not recovery_db.exists():
        return name
    try:
        with sqlite3.connect(recovery_db) as db:
            run = db.execute("SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 1").fetchone()
            if run is None:
                return name
            for (info,) in db.execute("SELECT info FROM failures WHERE run_id=? ORDER BY at", run):
                f = json.loads(info)
                takers = f["taken_over_by"].split(",")
                if role in f["roles"]:
                    name = takers[f["roles"].index(role)]
    except sqlite3.OperationalError:  # the coordinator is creating the store
        pass
    return name


def kill(process_name: str) -> bool:
    out = subprocess.run(["pgrep", "-f", "--", f"--name {process_name} "], capture_output=True, text=True).stdout.split()
    for pid in out:
        os.kill(int(pid), signal.SIGKILL)
    return bool(out)


def disturbed_run(plan: Path, name: str, args: argparse.Namespace, duration: float, rng: random.Random,
                  reference: Path, sinks: list[Path], extra: list[str], env: dict[str, str]) -> bool:
    """One run with kills at random times; True when it completed with every sink identical."""
    lo, hi = args.window
    times = sorted(rng.uniform(lo * duration, hi * duration) for _ in range(args.kills))
    for i in range(1, len(times)):  # give each recovery a few seconds before the next kill
        times[i] = max(times[i], times[i - 1] + args.gap)
    db = plan.parent / "out" / f"{name}-recovery" / "recovery.sqlite"
    for f in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        f.unlink(missing_ok=True)
    t0 = time.monotonic()
    proc = run(plan, ["--spares", str(args.spares), *extra], env)
    for at in times:
        while time.monotonic() - t0 < at and proc.poll() is None:
            time.sleep(0.05)
        if proc.poll() is not None:
            break
        target = holder(db, args.role)
        killed = kill(target)
        print(f"t={time.monotonic() - t0:5.1f} s: SIGKILL {target} (playing {args.role})"
              f"{'' if killed else ' - no such process'}", flush=True)
    _out, err = proc.communicate()
    print(f"disturbed run: exit status {proc.returncode}, {time.monotonic() - t0:.1f} s")
    if proc.returncode != 0:
        print(err.strip().splitlines()[-1] if err.strip() else "")
    report = json.loads((plan.parent / "out" / f"{name}-run.json").read_text())
    for f in report.get("failures", []):
        print(f"  lost {f['worker']} ({f['reason']}): detected after {f['detected_after_s']} s, taken over by "
              f"{f['taken_over_by']}, checkpoint epoch {f['checkpoint_epoch']}, {f['epochs_replayed']} epochs "
              f"replayed, recovery time {f.get('recovery_s')} s, output pause {f.get('output_pause_s')} s")
    same = True
    for s in sinks:
        want, got = Counter(rows(reference / s.name)), Counter(rows(s))
        equal = want == got
        same &= equal
        missing = sum((want - got).values())
        duplicated = sum(n - want[k] for k, n in got.items() if k in want and n > want[k])
        unexpected = sum(n for k, n in got.items() if k not in want)
        print(f"  sink {s.name}: {sum(got.values())} records, {'identical to' if equal else 'DIFFERS from'} the "
              f"undisturbed run (lost {missing}, duplicated {duplicated}, unexpected {unexpected})")
    return proc.returncode == 0 and same


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("plan", type=Path)
    ap.add_argument("--role", required=True, help="the plan worker whose process is killed")
    ap.add_argument("--kills", type=int, default=1)
    ap.add_argument("--spares", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1, help="disturbed runs, each with fresh random kill times")
    ap.add_argument("--gap", type=float, default=6.0, help="least seconds between two kills of one run")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--window", type=float, nargs=2, default=(0.3, 0.7), help="kill between these fractions of the run")
    ap.add_argument("--reference", type=Path, default=None, help="sink files of an undisturbed run (skips that run)")
    ap.add_argument("--speed", type=float, default=None)
    args = ap.parse_args()
    plan = args.plan.resolve()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    extra = ["--speed", str(args.speed)] if args.speed is not None else []
    sinks = sink_paths(plan)
    rng = random.Random(args.seed)
    keep = Path(tempfile.mkdtemp(prefix="chaos-reference-"))
    try:
        if args.reference is None:
            t = time.monotonic()
            proc = run(plan, extra, env)
            _out, err = proc.communicate()
            duration = time.monotonic() - t
            if proc.returncode != 0:
                print(f"undisturbed run failed: {err.strip().splitlines()[-1] if err.strip() else proc.returncode}")
                return 1
            for s in sinks:
                for f in s.parent.glob(f"{s.stem}*{s.suffix}"):
                    shutil.copy(f, keep / f.name)
            reference = keep
            print(f"undisturbed run: {duration:.1f} s")
        else:
            reference, duration = args.reference, float(json.loads(
                (plan.parent / "out" / f"{json.loads(plan.read_text())['name']}-run.json").read_text())["duration_s"])
        name = json.loads(plan.read_text())["name"]
        results = [disturbed_run(plan, name, args, duration, rng, reference, sinks, extra, env)
                   for _ in range(args.runs)]
        if args.runs > 1:
            print(f"{sum(results)} of {args.runs} disturbed runs completed with every sink identical")
        return 0 if all(results) else 1
    finally:
        shutil.rmtree(keep, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
