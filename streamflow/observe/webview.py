"""What the web view shows, as one JSON document (`/api/run`): the dataflow graph with each
operator's placement across tiers and workers, live rates, latency percentiles, queues, link
bytes, cost, accuracy (measured against the planner's prediction) and the timeline.

`LiveState` builds it during a run from what the coordinator keeps anyway (the workers' stats,
the live model's windows, the progress observer); `report_state` builds it from a finished
run's report, so `streamflow ui run.json` shows the same page.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any

from streamflow.cluster.report import percentiles as _pct
from streamflow.progress import DONE

TIER_ORDER = ("device", "camera", "edge", "fog", "hub", "regional", "cloud")


def tier_order(tiers: set[str]) -> list[str]:
    """Tiers from the data's origin outwards (known names first), then the rest by name."""
    known = [t for t in TIER_ORDER if t in tiers]
    return known + sorted(tiers - set(known))


def dataflow_view(plan: Any) -> dict[str, Any]:
    """The plan as a graph: nodes (sources, operators, sinks) with their placement, and edges."""
    workers = {n: {"tier": w.tier, "device": w.device, "cost_per_hour": w.cost_per_hour}
               for n, w in plan.workers.items() if n in set(plan.workers_used())}
    nodes = [{"name": n.name, "role": n.role, "kind": n.kind, "variant": n.variant,
              "placement": [{"worker": w, "tier": plan.workers[w].tier, "share": s} for w, s in n.placement]}
             for n in plan.nodes]
    edges = [{"src": i.source, "dst": n.name, "partition": i.partition} for n in plan.nodes for i in n.inputs]
    return {"name": plan.name, "nodes": nodes, "edges": edges, "workers": workers,
            "tiers": tier_order({w["tier"] for w in workers.values()})}


class RateMeter:
    """Rates of cumulative counters over the last few seconds, sampled as the workers' stats
    arrive (twice a second), so what a page shows does not depend on how often it asks."""

    def __init__(self, span_s: float = 3.0) -> None:
        self.span_s = span_s
        self.history: dict[str, deque[tuple[float, float]]] = {}

    def add(self, key: str, value: float, now: float) -> None:
        h = self.history.setdefault(key, deque())
        if h and value < h[-1][1]:  # a counter that went down restarted (a new generation)
            h.clear()
        h.append((now, value))
        while len(h) > 2 and h[1][0] <= now - self.span_s:
            h.popleft()

    def rate(self, key: str, now: float) -> float:
        """Per second over the samples of the last `span_s`; 0 when the counter went silent."""
        h = self.history.get(key)
        if not h or now - h[-1][0] > self.span_s or h[-1][0] - h[0][0] < 0.4:
            return 0.0
        return round((h[-1][1] - h[0][1]) / (h[-1][0] - h[0][0]), 3)


def _events(failures: list[dict[str, Any]], adaptations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    events = [{"t_s": f["t_s"], "label": f"lost {f.get('worker')}"} for f in failures if "t_s" in f]
    events += [{"t_s": a["t_s"], "label": f"{a.get('reason', 'reconfigured')} -> {a.get('summary', a.get('to'))}"}
               for a in adaptations if "t_s" in a]
    return sorted(events, key=lambda e: e["t_s"])


def _timeline(windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = ("t_s", "rate_per_s", "service_ms", "latency_ms", "queue", "cost_per_hour", "link_bytes_per_s")
    return [{k: w[k] for k in keep if k in w} for w in windows]


def _accuracy(measured: dict[str, Any], predicted: Any) -> dict[str, Any]:
    blocks = {k: v for k, v in measured.items() if isinstance(v, dict) and k != "planner_predicted"}
    return {"predicted": predicted, "measured": blocks}


class LiveState:
    """The web view's document for a running coordinator, computed on each request."""

    def __init__(self, coordinator: Any, metrics_urls: Any) -> None:
        self.c = coordinator
        self.metrics_urls = metrics_urls  # () -> {"coordinator": url, "workers": {name: url}}
        self.rates = RateMeter()
        self.accuracy: dict[str, Any] = {}
        self.sources = {n.name for n in coordinator.plan.nodes if n.role == "source"}

    def observe_stats(self, role: str, stats: dict[str, Any]) -> None:
        """Sample one worker's counters for the rates shown (called as its stats arrive)."""
        now = time.monotonic()
        for op, st in stats.get("ops", {}).items():
            self.rates.add(f"op:{op}:{role}", st.get("records_out" if op in self.sources else "records", 0), now)
        if "process" in stats:
            self.rates.add(f"cpu:{role}", stats["process"]["cpu_s"], now)
        for peer, nbytes in stats.get("links", {}).items():
            self.rates.add(f"link:{role} -> {peer}", nbytes, now)

    def snapshot(self) -> dict[str, Any]:
        c = self.c
        now = time.monotonic()
        model = c.model
        last = model.windows[-1] if model.windows else {}
        ops: dict[str, Any] = {}
        roles = {n.name: n.role for n in c.plan.nodes}
        for name, t in c.record.operator_totals().items():
            counted = t["records_out"] if roles.get(name) == "source" else t["records"]
            service = model.service.get(name) or []
            latency = model.latency.get(name) or []
            ops[name] = {
                "records": counted,
                "rate_per_s": round(sum(self.rates.rate(f"op:{name}:{w}", now) for w in t["instances"]), 3),
                "service_ms": _pct(service) if len(service) >= 5 else last.get("service_ms", {}).get(name, _pct([])),
                "queue": t["queue"],
                "instances": {w: i["records"] or i["records_out"] for w, i in t["instances"].items()},
            }
            if latency or name in last.get("latency_ms", {}):
                ops[name]["latency_ms"] = _pct(latency) if len(latency) >= 5 else last["latency_ms"][name]
        urls = self.metrics_urls()
        workers: dict[str, Any] = {}
        for w in c.plan.workers_used():
            stats = c.record.latest.get(w, {})
            usage = stats.get("process", {})
            member = c.members.get(w)
            workers[w] = {"state": member.state if member else "waiting",
                          "cpu_percent": round(100 * self.rates.rate(f"cpu:{w}", now), 1) if usage else None,
                          "rss_bytes": usage.get("rss_bytes"), "metrics_url": urls["workers"].get(w)}
        links: dict[str, Any] = {}
        for worker, stats in c.record.earlier + list(c.record.latest.items()):
            for peer, nbytes in stats.get("links", {}).items():
                key = f"{worker} -> {peer}"
                links[key] = links.get(key, 0) + nbytes
        links_view = {k: {"bytes": v, "bytes_per_s": self.rates.rate(f"link:{k}", now)} for k, v in links.items()}
        frontier = c.observer.frontier()
        used = c.plan.workers_used()
        elapsed = (now - c.run_started + c.elapsed_before) if c.run_started is not None else 0.0
        return {
            "live": True, "name": c.plan.name, "run_id": c.run_id, "status": c.status,
            "elapsed_s": round(elapsed, 2), "generation": c.generation,
            "epochs": {"last_complete": c.observer.last_complete_epoch(),
                       "complete": frontier == DONE, "unit_ms": c.plan.epoch_size},
            "dataflow": dataflow_view(c.plan), "operators": ops, "workers": workers, "links": links_view,
            "cost": {"workers_per_hour": round(sum(c.plan.workers[w].cost_per_hour for w in used), 6),
                     "expected_per_hour": c.plan.expected.get("cost_per_hour"),
                     "expected_network_per_hour": c.plan.expected.get("communication_cost_per_hour")},
            "accuracy": _accuracy(self.accuracy, c.plan.expected.get("accuracy")),
            "timeline": _timeline(model.windows),
            "events": _events(c.record.failures, c.record.adaptations),
            "metrics": urls,
        }


def report_state(report: dict[str, Any], dataflow: dict[str, Any]) -> dict[str, Any]:
    """The web view's document for a finished run, from its report."""
    duration = report.get("duration_s") or 0.0
    ops = {}
    for name, op in report.get("operators", {}).items():
        ops[name] = {"records": op.get("records", 0), "rate_per_s": op.get("rate_per_s") or 0.0,
                     "service_ms": op.get("service_ms", _pct([])), "queue": 0, "queue_max": op.get("queue_max"),
                     "instances": {w: i.get("records") or i.get("records_out", 0)
                                   for w, i in op.get("instances", {}).items()}}
        if "record_latency_ms" in op:
            ops[name]["latency_ms"] = op["record_latency_ms"]
    links = {k: {"bytes": v, "bytes_per_s": round(v / duration, 1) if duration else 0.0}
             for k, v in report.get("links_bytes", {}).items()}
    metrics = report.get("metrics", {})
    cost = report.get("cost", {})
    return {
        "live": False, "name": report.get("plan"), "run_id": report.get("run_id"), "status": report.get("status"),
        "error": report.get("error"), "elapsed_s": duration, "generation": None,
        "epochs": {"last_complete": report.get("totals", {}).get("last_complete_epoch"),
                   "complete": report.get("status") == "completed", "unit_ms": None},
        "dataflow": dataflow, "operators": ops,
        "workers": {w: {"state": "done", "cpu_percent": None, "rss_bytes": None,
                        "metrics_url": metrics.get("workers", {}).get(w)} for w in report.get("workers", {})},
        "links": links,
        "cost": {"workers_per_hour": cost.get("workers_per_hour"),
                 "expected_per_hour": cost.get("total_per_hour_expected"),
                 "expected_network_per_hour": cost.get("network_per_hour_expected")},
        "accuracy": _accuracy(report.get("accuracy", {}), report.get("expected", {}).get("accuracy")),
        "timeline": _timeline(report.get("timeline", [])),
        "events": _events(report.get("failures", []), report.get("adaptations", [])),
        "metrics": metrics, "totals": report.get("totals"),
    }
