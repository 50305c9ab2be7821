"""What a worker reports about its operator instances and links while a run goes on."""
from __future__ import annotations

from typing import Any

from streamflow.dataflow.worker import Worker


def worker_stats(worker: Worker, transport: Any = None) -> dict[str, Any]:
    """Cumulative counters per operator instance, plus the service times measured since the
    last call (taken, so each sample is reported once)."""
    ops: dict[str, Any] = {}
    for slot in worker.ordered:
        st = slot.stats
        samples, st.service_ms = st.service_ms, []
        latency, st.latency_ms = st.latency_ms, []
        ops[slot.name] = {
            "records": st.records, "batches": st.batches, "records_out": st.records_out,
            "busy_s": round(st.busy_s, 6), "queue": sum(len(q) for q in slot.queues),
            "service_ms": [round(x, 4) for x in samples],
            "latency_ms": [round(x, 3) for x in latency],
        }
    out: dict[str, Any] = {"ops": ops, "steps": worker.steps, "quiescent": worker.quiescent(),
                           "progress_batches": worker.tracker.batches_applied}
    if transport is not None:
        out["links"] = transport.link_bytes()
        out["bytes_received"] = transport.bytes_received
        out["dropped"] = transport.drops.count  # malformed messages from the network
    return out
