"""Per worker statistics sent to the coordinator while a run goes on: operator counters, queue
depths, service times, channels and links, and the process's CPU and memory."""
from __future__ import annotations

from typing import Any

from streamflow.dataflow.worker import Worker
from streamflow.observe.metrics import process_usage


def worker_stats(worker: Worker, transport: Any = None) -> dict[str, Any]:
    """Cumulative counters per operator instance, plus the service times measured since the
    last call (taken, so each sample is reported once)."""
    ops: dict[str, Any] = {}
    for slot in worker.ordered:
        st = slot.stats
        samples, st.service_ms = st.service_ms, []
        latency, st.latency_ms = st.latency_ms, []
        served, st.served = st.served, 0
        ops[slot.name] = {
            "records": st.records, "batches": st.batches, "records_out": st.records_out,
            "batches_out": st.batches_out,
            "busy_s": round(st.busy_s, 6), "queue": sum(len(q) for q in slot.queues),
            "service_ms": [round(x, 4) for x in samples], "service_records": served,
            "latency_ms": [round(x, 3) for x in latency],
        }
    out: dict[str, Any] = {"ops": ops, "steps": worker.steps, "quiescent": worker.quiescent(),
                           "progress_batches": worker.tracker.batches_applied, "process": process_usage()}
    if transport is not None:
        out["links"] = transport.link_bytes()
        out["bytes_received"] = transport.bytes_received
        edges = worker.graph.edges
        out["channels"] = [[f"{edges[e].src}->{edges[e].dst}", peer, ch.bytes_sent, ch.messages, ch.stalls]
                           for (e, peer), ch in transport.channels.items()]
        out["dropped"] = transport.drops.count  # malformed messages from the network
    return out
