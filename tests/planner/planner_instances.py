"""Random small planning problems for property tests, and paths to the shared data."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "data"
VQA_MEDIUM = SHARED / "planner" / "vqa_medium.json"

SHAPES = {
    # name: list of (operator, inputs)
    "chain": [("a", ["src"]), ("b", ["a"]), ("c", ["b"])],
    "join": [("a", ["src"]), ("b", ["src2"]), ("c", ["a", "b"])],
    "diamond": [("a", ["src"]), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])],
    "pair": [("a", ["src"]), ("b", ["a"])],
}


@st.composite
def small_problems(draw, shapes=tuple(SHAPES), per_pair_prices: bool = False, max_workers: int = 6,
                   bandwidth: bool = False, slo: bool = False, twins: bool = False) -> dict:
    """A problem document with 2..max_workers workers in 1..3 tiers and random profiles.

    Link prices are per-tier potential differences unless `per_pair_prices` (then every pair gets
    its own price; use only with shapes without joins, where the MILP stays exact). With
    `bandwidth`, every tier pair may get a bandwidth (Mbit/s) that binds at these rates. With
    `twins`, a worker may copy the latencies of the one before it on its tier at another price
    (one worker type with a price ladder in the MILP). With
    `slo`, latencies at batch sizes 1 and 2, round trips between tiers (or none), a p95 or p99 latency SLO,
    periodic (bursts of 1 or 4) or Poisson sources, a service-time spread and per-hop overhead,
    CPU quotas on some workers, and three utilisation levels (so brute force stays small)."""
    shape = draw(st.sampled_from(shapes))
    ops = SHAPES[shape]
    tiers = draw(st.integers(1, 3))
    n = draw(st.integers(max(2, tiers), max_workers))
    worker_tiers = sorted(draw(st.lists(st.integers(0, tiers - 1), min_size=n, max_size=n)))
    worker_tiers[: tiers] = list(range(tiers))
    worker_tiers.sort()
    workers = [{"name": f"w{i}", "tier": t, "cost_per_hour": draw(st.sampled_from([0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 2.0]))}
               for i, t in enumerate(worker_tiers)]
    if slo:   # some workers under a CPU quota, whose latency the model takes on the quota's clock
        for w in workers:
            cpus = draw(st.sampled_from([None, None, 0.25, 0.5]))
            if cpus is not None:
                w["cpus"] = cpus
    rate = float(draw(st.sampled_from([5.0, 10.0, 20.0])))
    sources = sorted({u for _, ins in ops for u in ins if u.startswith("src")})
    nodes = [{"name": s, "kind": "source", "injection_rate_per_s": rate} for s in sources]
    if slo:
        for node in nodes:
            node["arrivals"] = draw(st.sampled_from(["periodic", "poisson"]))
            node["burst"] = draw(st.sampled_from([1, 4]))
    variants = {o: [f"{o}{k}" for k in range(draw(st.integers(1, 3)))] for o, _ in ops}
    twin_of = {w["name"]: workers[i - 1]["name"] for i, w in enumerate(workers)
               if twins and i and workers[i - 1]["tier"] == w["tier"] and draw(st.booleans())}
    latency = {}
    for o, ins in ops:
        nodes.append({"name": o, "kind": "ml_operator", "input_operators": ins, "variants": variants[o]})
        latency[o] = {}
        for v in variants[o]:
            row = {}
            for w in workers:
                cap = draw(st.sampled_from([None, 3.0, 6.0, 12.0, 25.0]))
                row[w["name"]] = row[twin_of[w["name"]]] if w["name"] in twin_of else (
                    None if cap is None else 1000.0 / cap)
            latency[o][v] = row
    by_batch = {o: {v: {} for v in per} for o, per in latency.items()}
    for o, per in latency.items():
        for v, row in per.items():
            for w, ms in row.items():
                by_batch[o][v][w] = by_batch[o][v][twin_of[w]] if w in twin_of else (
                    None if ms is None else {"1": ms, "2": ms * draw(st.sampled_from([0.5, 0.8, 1.1]))})
    edges = []
    for o, ins in ops:
        for u in ins:
            src_vars = variants.get(u, ["default"])
            sizes = [{"from_variant": a, "to_variant": b, "message_size_kb": draw(st.sampled_from([1.0, 50.0, 400.0]))}
                     for a in src_vars for b in variants[o]]
            edges.append({"from": u, "to": o, "throughput_normalization_ratio": 1.0,
                          "message_size_kb_by_variant": sizes})
    phi = [0.0]
    for _ in range(1, tiers):
        phi.append(phi[-1] + draw(st.sampled_from([0.5, 1.0, 3.0])))
    links: dict = {"comm_cost_scaling_factor": 1.0,
                   "tier_cost_per_gb": [[max(0.0, phi[q] - phi[p]) if q > p else (10.0 if q < p else 0.0)
                                         for q in range(tiers)] for p in range(tiers)]}
    if per_pair_prices:
        links["worker_to_worker_cost_per_gb"] = [
            {"from_worker": a["name"], "to_worker": b["name"], "cost_per_gb": draw(st.sampled_from([0.2, 1.0, 4.0]))}
            for a in workers for b in workers if b["tier"] > a["tier"]]
    if bandwidth:
        links["tier_bandwidth_mbps"] = [[None if p == q else draw(st.sampled_from([None, 0.5, 5.0, 50.0]))
                                         for q in range(tiers)] for p in range(tiers)]
    if slo:
        delays = draw(st.booleans())
        links["tier_rtt_ms"] = [[0.0 if p == q or not delays else draw(st.sampled_from([2.0, 30.0, 120.0]))
                                 for q in range(tiers)] for p in range(tiers)]
    op_names = [o for o, _ in ops]
    table = []
    for combo in itertools.product(*(variants[o] for o in op_names)):
        acc = sum(int(v[-1]) for v in combo) + draw(st.sampled_from([0.0, 0.5]))
        table.append({**dict(zip(op_names, combo)), "end_to_end_accuracy": acc})
    threshold = float(draw(st.sampled_from([0.0, 1.0, 2.0])))
    extra: dict = {}
    if slo:
        extra = {"latency_slo_ms": float(draw(st.sampled_from([400, 900, 2000, 5000]))),
                 "latency_slo_percentile": draw(st.sampled_from(["p95", "p99"])),
                 "latency_model": {"utilization_levels": [0.3, 0.6, 0.9],
                                   "service_cv": draw(st.sampled_from([0.0, 0.3])),
                                   "overhead_ms": draw(st.sampled_from([0.0, 5.0]))},
                 "execution_latency_ms_by_batch": {o: {v: {w: b for w, b in row.items() if b is not None}
                                                       for v, row in per.items()} for o, per in by_batch.items()}}
    return {
        **extra,
        "problem": f"random_{shape}",
        "workers": workers,
        "dataflow": {"operators": nodes, "edges": edges},
        "execution_latency_ms": latency,
        "links": links,
        "accuracy": {"threshold": threshold, "end_to_end_operators": op_names, "end_to_end_table": table},
    }
