"""Stalls, operator failures and NaN, with the exact expected output, in one process and across
worker processes: a stalled run ends with the stall message, a failed run keeps every epoch that
completed before the failure and no other, and aggregates over NaN do not depend on order."""
from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import streamflow.operators as op
from streamflow import Dataflow, Operator

REPO = Path(__file__).resolve().parents[2]
WORKERS = [{"name": "w0", "tier": "edge"}, {"name": "w1", "tier": "edge"}, {"name": "w2", "tier": "edge"}]


class Holder(Operator):
    """Keeps a capability forever: the dataflow can never complete."""

    def __init__(self) -> None:
        self.cap = None

    def on_batch(self, epoch, batch, output) -> None:  # noqa: ANN001
        if self.cap is None:
            self.cap = self.ctx.retain()
        output.give(batch)


def fail_at_29(record: dict) -> dict:
    if record["seq"] == 29:
        raise ValueError("bad record 29")
    return record


def plan(operator: dict, sink_worker: str = "w2") -> dict:
    return {"version": 1, "name": "case", "epoch": {"unit": "frame", "size": 1}, "workers": WORKERS,
            "sources": [{"name": "g", "kind": "generator", "worker": "w0", "count": 40, "rate_per_s": 1000,
                         "batch_size": 1, "speed": 0, "fields": {}}],
            "operators": [{**operator, "inputs": [{"from": "g"}], "placement": [{"worker": "w1"}]}],
            "sinks": [{"name": "out", "from": operator["name"], "path": "out.jsonl", "worker": sink_worker}]}


def run(plan_doc: dict, folder: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plan.json").write_text(json.dumps(plan_doc))
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "streamflow.cli", "run", str(folder / "plan.json"), *args,
                             "--allow-import", "tests"],  # the plans import this module's operators
                            capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(REPO)))
    return result, time.monotonic() - start


HOLD = {"name": "hold", "kind": "python", "params": {"class": "tests.runtime.test_failures:Holder"}}
FAIL = {"name": "m", "kind": "map", "params": {"fn": {"import": "tests.runtime.test_failures:fail_at_29"}}}


def test_a_stall_in_one_process_names_the_capability() -> None:
    result, _ = run(plan(HOLD), Path(os.environ.get("TMPDIR", "/tmp")) / "sf-stall-one", "--inprocess")
    assert result.returncode == 1
    assert result.stderr == "error: dataflow stalled: capabilities still held at hold.out0 at epoch 0\n"


def test_a_distributed_stall_ends_within_seconds_with_the_same_message(tmp_path) -> None:
    result, took = run(plan(HOLD), tmp_path, "--local", "--quiet", "--report", str(tmp_path / "r.json"))
    assert result.returncode == 1
    assert result.stderr.startswith("error: dataflow stalled: capabilities still held at hold.out0 at epoch 0 (report: ")
    assert took < 20, f"the stalled run took {took:.1f} s to end"
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["status"] == "failed" and report["error"].startswith("dataflow stalled")


def sink_rows(folder: Path) -> list[int]:
    return [json.loads(line)["seq"] for line in (folder / "out.jsonl").read_text().splitlines()]


def test_a_failure_in_one_process_keeps_every_epoch_before_it() -> None:
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / "sf-fail-one"
    result, _ = run(plan(FAIL), folder, "--inprocess")
    assert result.returncode == 1
    assert result.stderr == ("error: operator 'm' failed at epoch 29: ValueError('bad record 29'); "
                             "last complete epoch: 28\n")
    assert sink_rows(folder) == list(range(29))


@pytest.mark.parametrize("sink_worker", ["w1", "w2"])
def test_a_failure_across_processes_keeps_every_epoch_before_it_every_time(tmp_path, sink_worker) -> None:
    for attempt in range(2):
        folder = tmp_path / f"run{attempt}"
        result, _ = run(plan(FAIL, sink_worker), folder, "--local", "--quiet", "--speed", "0",
                        "--report", str(folder / "r.json"))
        assert result.returncode == 1
        assert result.stderr.startswith("error: worker 'w1' failed: operator 'm' failed at epoch 29: "
                                        "ValueError('bad record 29'); last complete epoch: 28 (report: "), result.stderr
        assert sink_rows(folder) == list(range(29))
        report = json.loads((folder / "r.json").read_text())
        assert report["status"] == "failed" and report["totals"]["last_complete_epoch"] == 28


NAN = float("nan")


def aggregate_all(values: list[float]) -> dict:
    """Every aggregate of `values` under one key (and of an all-NaN key) in one process."""
    out = {}
    for agg in ("count", "sum", "mean", "min", "max", "topk", "distinct"):
        flow = Dataflow(agg)
        rows = [{"k": "a", "v": v} for v in values] + [{"k": "nan-only", "v": NAN}] * 2
        src = op.source("src", flow, rows, batch_size=2, epoch_of=lambda r: 0)
        got = op.collect("out", op.aggregate("agg", src, "k", agg, value="v", k=2))
        flow.run()
        out[agg] = {r[0]: r[1] for _e, r in got}
    return out


def same(a, b) -> bool:  # noqa: ANN001
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def test_nan_is_skipped_by_every_value_aggregate_whatever_the_order() -> None:
    values = [3.0, NAN, 1.0, NAN, 0.1, 0.2]
    expected = {
        "count": {"a": 6, "nan-only": 2},
        "sum": {"a": 4.3, "nan-only": NAN},
        "mean": {"a": 4.3 / 4, "nan-only": NAN},
        "min": {"a": 0.1, "nan-only": NAN},
        "max": {"a": 3.0, "nan-only": NAN},
        "topk": {"a": [3.0, 1.0], "nan-only": []},
        "distinct": {"a": 5, "nan-only": 1},
    }
    seen = set()
    for order in itertools.permutations(values):
        got = aggregate_all(list(order))
        for agg, want in expected.items():
            for key in want:
                assert same(got[agg][key], want[key]), (order, agg, key, got[agg][key])
        seen.add(json.dumps(got, sort_keys=True, default=str))
    assert len(seen) == 1  # bit for bit the same in all 720 orders
