"""The run report: per operator records, rate and service latency; per link bytes; totals and
the hourly cost of the workers used. Written as JSON even when a run fails."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from streamflow.cluster.shares import share_match
from streamflow.plan import Plan


def percentiles(samples: list[float]) -> dict[str, float | None]:
    if not samples:
        return {"p50": None, "p95": None, "p99": None}
    arr = np.asarray(samples)
    return {f"p{q}": round(float(np.percentile(arr, q)), 4) for q in (50, 95, 99)}


def sink_latency(plan: Plan, samples: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    """Per sink: source-to-sink record latency p50/p95/p99, and against the plan's latency SLO the
    fraction of records within it and the planner's prediction (for sinks of its sink operator)."""
    expected = plan.expected.get("latency") or {}
    slo = expected.get("slo_ms")
    out: dict[str, dict[str, Any]] = {}
    for node in plan.nodes:
        got = samples.get(node.name)
        if node.role != "sink" or not got:
            continue
        entry: dict[str, Any] = {"records": len(got), **percentiles(got)}
        if slo is not None:
            entry["slo_ms"] = slo
            entry["within_slo"] = round(float(np.mean(np.asarray(got) <= slo)), 4)
        if node.inputs and node.inputs[0].source == expected.get("sink_operator"):
            entry["predicted"] = {expected.get("percentile", "p99"): expected.get("predicted_ms")}
        out[node.name] = entry
    return out


class RunRecord:
    """Accumulates worker stats as they arrive; `build` turns them into the report."""

    MAX_SAMPLES = 200_000

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.latest: dict[str, dict[str, Any]] = {}          # worker -> its latest stats
        self.samples: dict[str, list[float]] = {}             # operator -> service ms samples
        self.latency: dict[str, list[float]] = {}             # sink -> end-to-end record latency ms
        self.queue_max: dict[str, int] = {}
        self.registered: dict[str, dict[str, Any]] = {}
        self.earlier: list[tuple[str, dict[str, Any]]] = []  # (worker, last stats) of earlier generations
        self.failures: list[dict[str, Any]] = []
        self.adaptations: list[dict[str, Any]] = []
        self.recovery: dict[str, Any] = {}
        self.plan_since = 0  # the first of `earlier` that ran `plan` (a live switch changes it)

    def new_generation(self, plan: Plan | None = None) -> None:
        """The run goes on in fresh worker instances (after a recovery, or under a new `plan`
        after a live switch): keep what the old ones counted, and count the new ones from zero."""
        self.earlier += list(self.latest.items())
        self.latest = {}
        if plan is not None:
            self.plan, self.plan_since = plan, len(self.earlier)

    def add_stats(self, worker: str, stats: dict[str, Any]) -> None:
        self.latest[worker] = stats
        for op, st in stats.get("ops", {}).items():
            bucket = self.samples.setdefault(op, [])
            if len(bucket) < self.MAX_SAMPLES:
                bucket.extend(st.get("service_ms", []))
            if st.get("latency_ms"):
                self.latency.setdefault(op, []).extend(st["latency_ms"])
            self.queue_max[op] = max(self.queue_max.get(op, 0), st.get("queue", 0))

    def operator_totals(self, since: int = 0) -> dict[str, dict[str, Any]]:
        """Per operator, summed over its instances (of the generations from `earlier[since]` on)."""
        out: dict[str, dict[str, Any]] = {}
        for worker, stats in self.earlier[since:] + list(self.latest.items()):
            for op, st in stats.get("ops", {}).items():
                agg = out.setdefault(op, {"records": 0, "records_out": 0, "batches": 0, "busy_s": 0.0,
                                          "queue": 0, "instances": {}})
                for key in ("records", "records_out", "batches", "busy_s", "queue"):
                    agg[key] += st.get(key, 0)
                inst = agg["instances"].setdefault(worker, {"records": 0, "records_out": 0, "batches": 0})
                for key in inst:
                    inst[key] += st.get(key, 0)
        return out

    def build(self, status: str, error: str | None, duration_s: float, observer: Any,
              started_at: float) -> dict[str, Any]:
        plan = self.plan
        nodes = {n.name: n for n in plan.nodes}
        ops = {}
        for name, agg in self.operator_totals().items():
            node = nodes.get(name)
            role = node.role if node else "operator"
            counted = agg["records_out"] if role == "source" else agg["records"]
            ops[name] = {
                "role": role, "kind": node.kind if node else None,
                "variant": node.variant if node else None,
                "records": counted, "records_out": agg["records_out"], "batches": agg["batches"],
                "rate_per_s": round(counted / duration_s, 3) if duration_s > 0 else None,
                "service_ms": percentiles(self.samples.get(name, [])),
                **({"record_latency_ms": percentiles(self.latency[name])} if name in self.latency else {}),
                "busy_s": round(agg["busy_s"], 4), "queue_max": self.queue_max.get(name, 0),
                "instances": agg["instances"],
            }
        links: dict[str, int] = {}
        for worker, stats in self.earlier + list(self.latest.items()):
            for peer, nbytes in stats.get("links", {}).items():
                links[f"{worker} -> {peer}"] = links.get(f"{worker} -> {peer}", 0) + nbytes
        source_records = sum(o["records"] for o in ops.values() if o["role"] == "source")
        used = plan.workers_used()
        worker_cost = sum(plan.workers[w].cost_per_hour for w in used)
        expected = plan.expected
        latency = percentiles([x * 1000 for x in observer.epoch_latency_s]) if observer else percentiles([])
        return {
            "plan": plan.name, "plan_path": plan.source_path, "status": status, "error": error,
            "started_at": started_at, "duration_s": round(duration_s, 3),
            "workers": {w: {"tier": plan.workers[w].tier, "device": plan.workers[w].device,
                            "cost_per_hour": plan.workers[w].cost_per_hour,
                            **{k: self.registered.get(w, {}).get(k) for k in ("host", "pid", "cores")}}
                        for w in used},
            "operators": ops,
            # the plan's shares against what its own generations did (not earlier plans')
            "shares": share_match(plan, self.operator_totals(self.plan_since)),
            "links_bytes": links,
            "sink_latency_ms": sink_latency(plan, self.latency),
            "totals": {
                "unit": "frames" if all(n.kind == "trace" for n in plan.nodes if n.role == "source") else "records",
                "source_records": source_records,
                "throughput_per_s": round(source_records / duration_s, 3) if duration_s > 0 else None,
                "epoch_latency_ms": latency,
                "last_complete_epoch": observer.last_complete_epoch() if observer else None,
                "progress_batches_seen": observer.batches if observer else 0,
            },
            "cost": {
                "workers_per_hour": round(worker_cost, 6),
                "network_per_hour_expected": expected.get("communication_cost_per_hour"),
                "total_per_hour_expected": expected.get("cost_per_hour"),
            },
            "expected": expected,
            "recovery": self.recovery,
            "failures": self.failures,
            "adaptations": self.adaptations,
        }


def write_report(path: str | Path, report: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path
