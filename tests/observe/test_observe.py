"""Prometheus metrics from the coordinator and from --local workers during a real run, the web
view in headless Chromium, and `streamflow ui` on the run's report."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamflow.cluster.local import worker_env
from streamflow.observe.metrics import Buckets

from tools import headless

REPO = Path(__file__).resolve().parents[2]
SECONDS = 10  # how long the fixture's run lasts: two cameras at 1000 records/s


def get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def families(text: str) -> dict[str, object]:
    """Parsed with prometheus-client's own parser (raises on invalid exposition text)."""
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(text: str, name: str, **labels: str) -> dict[tuple, float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


class Run:
    """`streamflow run PLAN --local --ui 0` in the background; the addresses it announces."""

    def __init__(self, plan: Path, report: Path) -> None:
        self.report = report
        self.proc = subprocess.Popen([sys.executable, "-m", "streamflow.cli", "run", str(plan), "--local",
                                      "--ui", "0", "--report", str(report)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=worker_env(),
                                     cwd=REPO)
        self.lines: list[str] = []
        self.announced = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.announced.wait(60):
            self.proc.kill()
            raise AssertionError(f"the run never said where its web view is: {self.lines} {self.proc.stderr.read()}")
        line = next(x for x in self.lines if x.startswith("web view "))
        self.ui = re.search(r"web view (http://\S+/)", line).group(1)
        self.metrics = re.search(r"; metrics (http://\S+/metrics)", line).group(1)
        self.workers = dict(re.findall(r"(\S+) (http://\S+/metrics)", line.split("workers' metrics ", 1)[1]))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("web view "):
                self.announced.set()

    def finish(self) -> dict:
        _out, err = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, err[-2000:]
        return json.loads(self.report.read_text())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A small plan (the relational example, two cameras for SECONDS s) running on 3 processes."""
    folder = tmp_path_factory.mktemp("observe")
    plan = json.loads((REPO / "examples" / "relational" / "plan.json").read_text())
    for source in plan["sources"]:
        source["count"] = SECONDS * source["rate_per_s"]
    (folder / "plan.json").write_text(json.dumps(plan))
    r = Run(folder / "plan.json", folder / "run.json")
    r.plan = plan
    yield r
    if r.proc.poll() is None:
        r.proc.kill()
        r.proc.wait()


def plan_operators(plan: dict) -> list[str]:
    return [n["name"] for key in ("sources", "operators", "sinks") for n in plan[key]]


def test_coordinator_and_worker_metrics_grow_between_scrapes(run) -> None:
    deadline = time.monotonic() + 20
    while not sum(samples(first := get(run.metrics), "streamflow_operator_records_in_total", operator="all").values()):
        assert time.monotonic() < deadline, "no operator counters 20 s into the run"
        time.sleep(0.2)  # the workers' first stats come half a second after the sources start
    fams = families(first)
    for name in ("streamflow_operator_records_in", "streamflow_operator_service_seconds",
                 "streamflow_operator_queued_batches", "streamflow_operator_frontier_lag_epochs",
                 "streamflow_channel_credit_stalls", "streamflow_link_sent_bytes", "streamflow_worker_cpu_seconds",
                 "streamflow_run_cost_per_hour", "streamflow_run_recoveries", "process_cpu_seconds"):
        assert name in fams, f"{name} missing from the coordinator's metrics"
    worker_url = run.workers["cloud-0"]
    worker_first = get(worker_url)
    assert "streamflow_channel_sent_bytes" in families(worker_first)
    time.sleep(2.0)
    second, worker_second = get(run.metrics), get(worker_url)
    before = samples(first, "streamflow_operator_records_in_total", operator="all")
    after = samples(second, "streamflow_operator_records_in_total", operator="all")
    assert sum(after.values()) > sum(before.values()) > 0, (before, after)
    w_before = samples(worker_first, "streamflow_operator_records_in_total", operator="speeding", worker="cloud-0")
    w_after = samples(worker_second, "streamflow_operator_records_in_total", operator="speeding", worker="cloud-0")
    assert sum(w_after.values()) > sum(w_before.values()), (w_before, w_after)
    assert set(run.workers) == {"edge-0", "edge-1", "cloud-0"}
    for url in run.workers.values():  # every worker serves valid exposition text
        assert "streamflow_operator_records_out_total" in get(url)


def test_web_view_in_headless_chromium_shows_every_operator_and_live_rates(run, tmp_path) -> None:
    if headless.chromium() is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    rate = re.compile(r'data-op="([^"]+)" data-rate="([0-9.]+)"')
    first = dict(rate.findall(headless.dump_dom(run.ui)))
    time.sleep(1.5)
    second = dict(rate.findall(headless.dump_dom(run.ui)))
    shot = headless.screenshot(run.ui, tmp_path / "webview.png")
    assert set(first) == set(second) == set(plan_operators(run.plan)), (first, second)
    assert any(float(v) > 0 for v in second.values())
    assert first != second, "the rates shown did not change while the run went on"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_report_keeps_addresses_and_graph_and_streamflow_ui_serves_it(run, tmp_path) -> None:
    report = run.finish()
    assert report["status"] == "completed"
    assert set(report["metrics"]["workers"]) == {"edge-0", "edge-1", "cloud-0"}
    assert {n["name"] for n in report["dataflow"]["nodes"]} == set(plan_operators(run.plan))
    ui = subprocess.Popen([sys.executable, "-m", "streamflow.cli", "ui", str(run.report), "--port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=worker_env())
    try:
        line = ui.stdout.readline()
        url = re.search(r"(http://\S+/)", line).group(1)
        state = json.loads(get(url + "api/run"))
        assert state["status"] == "completed" and not state["live"]
        assert state["operators"]["cam-a"]["records"] == SECONDS * 1000
        assert "<svg" not in get(url) and "/app.js" in get(url)
        with pytest.raises(urllib.error.HTTPError):
            get(url + "nothing-here")
    finally:
        ui.terminate()
        ui.wait(10)


def test_bad_options_and_reports_are_one_line_errors(tmp_path) -> None:
    (tmp_path / "not-a-report.json").write_text("{}")
    for args in (["run", "examples/relational/plan.json", "--local", "--metrics-port", "x"],
                 ["ui", str(tmp_path / "not-a-report.json")], ["ui", str(tmp_path / "missing.json")]):
        r = subprocess.run([sys.executable, "-m", "streamflow.cli", *args], capture_output=True, text=True,
                           env=worker_env(), cwd=REPO)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("error: "), (args, r.stderr)


def test_histogram_buckets_are_inclusive_and_cumulative() -> None:
    b = Buckets([0.001, 0.01])
    b.add_ms([0.5, 1.0, 5.0, 10.0, 50.0])
    assert b.cumulative() == [("0.001", 2.0), ("0.01", 4.0), ("+Inf", 5.0)]
    assert b.total == pytest.approx(0.0665)


def test_worker_counters_keep_earlier_deployments_and_read_the_runtime_counters() -> None:
    import streamflow.operators as op
    from prometheus_client import generate_latest

    from streamflow import Dataflow
    from streamflow.cluster.stats import worker_stats
    from streamflow.observe.worker_metrics import WorkerCollector

    collector = WorkerCollector({"name": "w", "tier": "edge", "device": "cpu", "cost_per_hour": 0.5})
    registry = collector.registry()
    for _ in range(2):  # two deployments of one worker process
        flow = Dataflow("f")
        op.sink("out", op.source("inp", flow, range(5000), batch_size=100).filter(lambda x: x % 2 == 0),
                lambda epoch, batch: None)
        worker = flow.worker(collect_service_times=True)
        collector.deployed([(worker, None)])
        worker.run()
        collector.observe_stats(worker.name, worker_stats(worker))
        text = generate_latest(registry).decode()
        collector.retire()
    by_op = {dict(k)["operator"]: v for k, v in samples(text, "streamflow_operator_records_in_total").items()}
    out = {dict(k)["operator"]: v for k, v in samples(text, "streamflow_operator_batches_out_total").items()}
    assert by_op["out"] == 2 * 2500 and out["inp"] == 2 * 50
    service = samples(text, "streamflow_operator_service_seconds_count")
    assert sum(service.values()) >= 2 * 100  # every batch of the filter and the sink, binned once
    assert samples(text, "streamflow_worker_deployments_total") == {(("worker", "w"),): 2.0}
    epochs = samples(text, "streamflow_operator_epochs_completed_total", operator="out")
    assert list(epochs.values()) == [1.0]  # the one epoch of the second deployment's source, done
