"""Assembling the planning problem (the planner's format, see docs/planner.md) from measurements.

Every source becomes a planner source on its host (a zero-cost camera host unless the workflow
puts it on an infrastructure worker), every ML operator an `ml_operator` whose `runtime` block
turns back into a runnable plan operator, and everything else travels in `plan_extras`.
"""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

from streamflow_workers.profiling.spec import Infrastructure, Workflow

UNITS = {
    "execution_latency": "ms per request (frame) on the worker, at the operator's batch size",
    "execution_latency_by_batch": "ms per request (frame) on the worker when it runs batches of that size",
    "latency_slo": "milliseconds from a frame's capture to the sink operator's output, at latency_slo_percentile",
    "rates_and_throughputs": "frames per second",
    "message_size": "KB per frame received downstream (the transport's encoding)",
    "worker_cost": "money per hour",
    "link_cost": "money per GB before comm_cost_scaling_factor",
    "link_bandwidth": "Mbit/s (10^6 bits per second) per direction from one tier to another; null: unlimited",
    "link_rtt": "milliseconds, round trip between two tiers",
    "accuracy": "percent: AP50 x 100 against ground truth (F1 x 100 against the most expensive variant "
                "where a trace has none)",
}


def rebase(path: str, base: Path, out_dir: Path) -> str:
    """A workflow-relative path made relative to the folder the problem (and plan) live in."""
    p = Path(path)
    absolute = p if p.is_absolute() else (base / p).resolve()
    return os.path.relpath(absolute, out_dir.resolve())


def link_figures(infra: Infrastructure, measured: dict[str, dict[str, float]] | None) -> dict[str, Any]:
    """tier_bandwidth_mbps and tier_rtt_ms: measured on the testbed where given, else as infra.json
    states; nothing when the file describes no link."""
    model = infra.model
    bandwidth, rtt = model.bandwidth_matrix(), model.rtt_matrix()
    for key, m in (measured or {}).items():
        a, _, b = key.partition("->")
        p, q = model.tier_index(a), model.tier_index(b)
        if bandwidth[p][q] is not None:  # an unshaped link stays unlimited, whatever a probe got through
            bandwidth[p][q] = round(m["mbps"], 3)
        rtt[p][q] = round(m["rtt_ms"], 3)
    if not model.links and not measured:
        return {}
    return {"tier_bandwidth_mbps": bandwidth, "tier_rtt_ms": rtt}


def assemble(workflow: Workflow, infra: Infrastructure, out_dir: Path, rates: dict[str, float],
             latency: dict[str, dict[str, dict[str, dict[int, float]]]],
             sizes_in: dict[str, dict[str, float]], sizes_out: dict[str, dict[str, float]],
             accuracy: dict[str, dict[str, float]], settings: dict[str, Any],
             measured_links: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """The problem document. latency[op][variant][worker][batch] = ms per request;
    sizes_in[source] = {"default": KB, variant: KB for variants filtered on the camera host};
    measured_links["edge->cloud"] = {"mbps", "rtt_ms"} replaces what infra.json states."""
    wf = workflow.doc
    operators: list[dict[str, Any]] = []
    for s in wf["sources"]:
        params = {k: v for k, v in s.items() if k not in ("name", "kind", "worker", "tier")}
        for key in ("path",):
            if key in params:
                params[key] = rebase(params[key], workflow.base_dir, out_dir)
        if "paths" in params:
            params["paths"] = [rebase(p, workflow.base_dir, out_dir) for p in params["paths"]]
        operators.append({"name": s["name"], "kind": "source", "injection_rate_per_s": round(rates[s["name"]], 6),
                          "located_on_tier": infra.tiers.index(s.get("tier", infra.tiers[0])),
                          "worker": s.get("worker", f"{s['name']}-host"),
                          "runtime": {"kind": s["kind"], "params": params}})
    edges = []
    batch_of = {}
    for op in workflow.ml_operators:
        inputs = [i if isinstance(i, str) else i["from"] for i in op["inputs"]]
        runtime = {"kind": op["kind"], "params": op.get("params", {})}
        if "batch" in op:
            runtime["batch"] = op["batch"]
        batch_of[op["name"]] = int(op.get("batch", {}).get("max_size", 1))
        operators.append({"name": op["name"], "kind": "ml_operator", "input_operators": inputs,
                          "variants": list(op["variants"]), "runtime": runtime})
        for up in inputs:
            if up in sizes_out:  # from an ML operator: size depends on the upstream variant
                rows = [{"from_variant": uv, "to_variant": "default", "message_size_kb": round(kb, 4)}
                        for uv, kb in sizes_out[up].items()]
            else:  # from a source: filtered (+diff) variants receive less
                rows = [{"from_variant": "default", "to_variant": v, "message_size_kb": round(kb, 4)}
                        for v, kb in sizes_in[up].items() if v == "default" or v in op["variants"]]
            edges.append({"from": up, "to": op["name"], "message_size_kb_by_variant": rows})
    sink = wf.get("accuracy", {}).get("operator", workflow.ml_operators[-1]["name"])
    execution = {op: {v: {w.name: round(latency[op][v][str(w.machine)][batch_of[op]], 4) for w in infra.workers}
                      for v in variants} for op, variants in latency.items()}
    by_batch = {op: {v: {w.name: {str(b): round(ms, 4) for b, ms in machines[str(w.machine)].items()}
                         for w in infra.workers}
                     for v, machines in variants.items()} for op, variants in latency.items()}
    profiles = []
    for op in workflow.ml_operators:
        ups = [i if isinstance(i, str) else i["from"] for i in op["inputs"]]
        ml_ups = [u for u in ups if u in accuracy]
        variants = {}
        for v, acc in accuracy[op["name"]].items():
            if ml_ups:  # an ML operator after another: measured on the best upstream output, passed through
                samples = [{"inputs_accuracy": [a], "output_accuracy": round(min(a, acc), 4)}
                           for a in sorted(set(accuracy[ml_ups[0]].values()))]
            else:
                samples = [{"inputs_accuracy": [], "output_accuracy": round(acc, 4)}]
            variants[v] = {"samples": samples}
        profiles.append({"operator": op["name"], "input_operators": ml_ups, "variants": variants})
    return {
        "problem": workflow.name,
        "description": wf.get("description", f"profiled by streamflow profile from {workflow.name}"),
        "units": UNITS,
        "tier_names": infra.tiers,
        "workers": [{"name": w.name, "tier": w.tier, "cost_per_hour": w.cost_per_hour, "device": w.device,
                     "threads": w.threads, **({"cpus": w.cpus} if w.cpus is not None else {})}
                    for w in infra.workers],
        "links": {"comm_cost_scaling_factor": infra.comm_cost_scaling_factor,
                  "tier_cost_per_gb": infra.model.price_matrix(), "unlisted_pair_cost_per_gb": 0.0,
                  **link_figures(infra, measured_links)},
        "dataflow": {"operators": operators, "edges": edges, "sink": sink},
        "execution_latency_ms": execution,
        "execution_latency_ms_by_batch": by_batch,
        "accuracy": {"threshold": wf["accuracy"]["threshold"], "sink": sink, "per_operator_profiles": profiles},
        **{k: wf[k] for k in ("latency_slo_ms", "latency_slo_percentile", "latency_model") if k in wf},
        "epoch": wf.get("epoch", {"unit": "frame", "size": 1}),
        "plan_extras": {"operators": workflow.other_operators, "sinks": wf.get("sinks", [])},
        "profile": {"host": platform.node(), "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
                    **settings},
    }
