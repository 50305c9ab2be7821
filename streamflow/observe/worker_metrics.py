"""The Prometheus collector of one worker process (`streamflow-worker --metrics-port`).

At scrape time it reads the live counters of the operator instances and channels of the
deployment running now, plus what earlier deployments of this process counted (so counters
never go down while the process lives); service and record-latency samples arrive through
`observe_stats`, fed with the stats the worker sends the coordinator anyway.
"""
from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import InfoMetricFamily

from streamflow.observe.metrics import (LATENCY_BUCKETS, SERVICE_BUCKETS, Families, Frontiers, Histograms)

OP_COUNTERS = (  # (metric name without _total, OperatorStats field, help)
    ("operator_records_in", "records", "Records an operator instance has taken in."),
    ("operator_records_out", "records_out", "Records an operator instance has emitted."),
    ("operator_batches_in", "batches", "Batches an operator instance has taken in."),
    ("operator_batches_out", "batches_out", "Batches an operator instance has emitted."),
    ("operator_busy_seconds", "busy_s", "Seconds an operator instance spent handling batches on the event loop."),
)
CHANNEL_COUNTERS = (  # (metric name, Channel field, help)
    ("channel_sent_bytes", "bytes_sent", "Data bytes sent on a channel (one edge, to one peer worker)."),
    ("channel_sent_messages", "messages", "Data messages (batches) sent on a channel."),
    ("channel_credit_stalls", "stalls", "Times a channel ran out of flow-control credit, so its upstream "
                                        "operators waited (counted when credit came back)."),
)


class WorkerCollector:
    """Metrics of the operator instances and channels of this worker process."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.parts: list[tuple[Any, Any]] = []          # (Worker, ZmqTransport) of the running deployment
        self.base: dict[tuple[str, ...], dict[str, float]] = {}  # counters of finished deployments
        self.service = Histograms(SERVICE_BUCKETS)
        self.latency = Histograms(LATENCY_BUCKETS)
        self.frontiers: dict[str, Frontiers] = {}
        self.deployments = 0

    def registry(self) -> CollectorRegistry:
        """A registry with this collector and the process's CPU, memory and file descriptors."""
        registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=registry)
        registry.register(self)
        return registry

    # the worker daemon's hooks ----------------------------------------------------------------------
    def deployed(self, parts: list[tuple[Any, Any]]) -> None:
        self.parts = list(parts)
        self.deployments += 1
        for worker, _t in parts:
            self.frontiers[worker.name] = Frontiers(worker.start_epoch)

    def retire(self) -> None:
        """The deployment ended: keep what it counted as the base of the next one."""
        for key, values in self._live_counters().items():
            acc = self.base.setdefault(key, {})
            for field, v in values.items():
                acc[field] = acc.get(field, 0.0) + v
        self.parts = []

    def observe_stats(self, role: str, stats: dict[str, Any]) -> None:
        """Bin the service and latency samples of one stats message; sample the frontiers (so
        epochs completed counts the last epoch even when nobody scraped just before the end)."""
        for op, st in stats.get("ops", {}).items():
            self.service.add_ms((role, op), st.get("service_ms", ()))
            self.latency.add_ms((role, op), st.get("latency_ms", ()))
        for worker, _t in self.parts:
            if worker.name == role:
                self.frontiers[role].read(worker.graph, worker.topology, worker.tracker, ())

    # scraping -------------------------------------------------------------------------------------
    def _live_counters(self) -> dict[tuple[str, ...], dict[str, float]]:
        out: dict[tuple[str, ...], dict[str, float]] = {}
        for worker, transport in self.parts:
            for slot in worker.ordered:
                st = slot.stats
                out[("op", worker.name, slot.name, str(slot.ctx.instance))] = {
                    f: getattr(st, f) for _n, f, _h in OP_COUNTERS}
            if transport is not None:
                edges = worker.graph.edges
                for (e, peer), ch in transport.channels.items():
                    out[("ch", worker.name, f"{edges[e].src}->{edges[e].dst}", peer)] = {
                        f: getattr(ch, f) for _n, f, _h in CHANNEL_COUNTERS}
                out[("tr", worker.name)] = {"bytes_received": transport.bytes_received,
                                            "progress_batches": transport.progress_batches}
        return out

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        fams = Families()
        counters = {k: dict(v) for k, v in self.base.items()}
        for key, values in self._live_counters().items():
            acc = counters.setdefault(key, {})
            for field, v in values.items():
                acc[field] = acc.get(field, 0.0) + v
        for key, values in sorted(counters.items()):
            if key[0] == "op":
                labels = {"worker": key[1], "operator": key[2], "instance": key[3]}
                for name, field, doc in OP_COUNTERS:
                    fams.counter(name, doc, labels, values.get(field, 0))
            elif key[0] == "ch":
                labels = {"worker": key[1], "edge": key[2], "peer": key[3]}
                for name, field, doc in CHANNEL_COUNTERS:
                    fams.counter(name, doc, labels, values.get(field, 0))
            else:
                labels = {"worker": key[1]}
                fams.counter("worker_received_bytes", "Data bytes this worker received from its peers.",
                             labels, values.get("bytes_received", 0))
                fams.counter("worker_progress_batches", "Progress batches this worker broadcast.",
                             labels, values.get("progress_batches", 0))
        for worker, transport in self.parts:
            frontiers = self.frontiers[worker.name].read(worker.graph, worker.topology, worker.tracker,
                                                         [s.index for s in worker.ordered])
            for slot in worker.ordered:
                labels = {"worker": worker.name, "operator": slot.name, "instance": str(slot.ctx.instance)}
                fams.gauge("operator_queued_batches", "Batches waiting at an operator instance's inputs.",
                           labels, sum(len(q) for q in slot.queues))
                done, lag = frontiers[slot.index]
                fams.counter("operator_epochs_completed", "Epochs this instance's input frontier has passed "
                             "(in this worker's view of progress).", labels, done)
                fams.gauge("operator_frontier_lag_epochs", "Epochs between the sources' frontier and this "
                           "instance's input frontier.", labels, lag)
            if transport is not None:
                edges = worker.graph.edges
                for (e, peer), ch in transport.channels.items():
                    fams.gauge("channel_credit_bytes", "Flow-control credit left on a channel (<= 0: stalled).",
                               {"worker": worker.name, "edge": f"{edges[e].src}->{edges[e].dst}", "peer": peer},
                               ch.credit)
        yield from fams
        yield self.service.family("streamflow_operator_service_seconds",
                                  "Time an operator instance took to handle one batch.", ("worker", "operator"))
        yield self.latency.family("streamflow_sink_record_latency_seconds",
                                  "Time from a record's source timestamp to a sink.", ("worker", "operator"))
        me = {"worker": str(self.info.get("name", ""))}
        info = InfoMetricFamily("streamflow_worker", "This worker process: its tier and device.", labels=["worker"])
        info.add_metric(list(me.values()), {k: str(self.info.get(k, "")) for k in ("tier", "device")})
        yield info
        fams = Families()
        fams.gauge("worker_cost_per_hour", "The hourly price of this worker.", me, self.info.get("cost_per_hour", 0.0))
        fams.counter("worker_deployments", "Deployments (run generations) this process has run.", me, self.deployments)
        yield from fams
