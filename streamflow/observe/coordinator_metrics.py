"""The Prometheus collector of the coordinator (`streamflow run`, on by default).

It serves the whole run from what the coordinator already keeps: the workers' latest stats
(per operator and worker counters, channels, links, CPU and memory), its own progress view
(epochs completed and frontier lag per operator), the plan (variants, cost, the planner's
predictions) and the run's events (adaptations, recoveries, checkpoints). Counters of earlier
generations are kept, so they never go down during a run.
"""
from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import InfoMetricFamily

from streamflow.observe.metrics import LATENCY_BUCKETS, SERVICE_BUCKETS, Families, Frontiers, Histograms
from streamflow.observe.worker_metrics import CHANNEL_COUNTERS, OP_COUNTERS

EPOCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class CoordinatorCollector:
    """Run-wide metrics, labelled by operator and worker (the plan's names: bounded sets)."""

    def __init__(self, coordinator: Any) -> None:
        self.c = coordinator
        self.service = Histograms(SERVICE_BUCKETS)
        self.latency = Histograms(LATENCY_BUCKETS)
        self.epoch_latency = Histograms(EPOCH_BUCKETS)
        self._epochs_seen = 0
        self.frontiers = Frontiers()
        self.accuracy: dict[tuple[str, str], float] = {}  # (sink, measure) -> value, once evaluated

    def registry(self) -> CollectorRegistry:
        registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=registry)
        registry.register(self)
        return registry

    def observe_stats(self, role: str, stats: dict[str, Any]) -> None:
        """Bin one stats message's service and latency samples (called as stats arrive)."""
        for op, st in stats.get("ops", {}).items():
            self.service.add_ms((op, role), st.get("service_ms", ()))
            self.latency.add_ms((op, role), st.get("latency_ms", ()))

    def measured(self, accuracy: dict[str, Any]) -> None:
        """The accuracy the coordinator measured at the end of the run, per sink and measure."""
        for sink, block in accuracy.items():
            if isinstance(block, dict):
                for k, v in block.items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        self.accuracy[(sink, k)] = float(v)

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        c = self.c
        fams = Families()
        ops: dict[tuple[str, str], dict[str, float]] = {}
        channels: dict[tuple[str, str, str], list[float]] = {}
        links: dict[tuple[str, str], float] = {}
        for worker, stats in c.record.earlier + list(c.record.latest.items()):
            for op, st in stats.get("ops", {}).items():
                acc = ops.setdefault((op, worker), {})
                for _n, field, _h in OP_COUNTERS:
                    acc[field] = acc.get(field, 0.0) + st.get(field, 0)
            for edge, peer, *values in stats.get("channels", ()):
                acc_ch = channels.setdefault((worker, edge, peer), [0.0] * len(values))
                for i, v in enumerate(values):
                    acc_ch[i] += v
            for peer, nbytes in stats.get("links", {}).items():
                links[(worker, peer)] = links.get((worker, peer), 0.0) + nbytes
        for (op, worker), values in sorted(ops.items()):
            for name, field, doc in OP_COUNTERS:
                fams.counter(name, doc, {"operator": op, "worker": worker}, values[field])
        for worker, stats in sorted(c.record.latest.items()):
            for op, st in stats.get("ops", {}).items():
                fams.gauge("operator_queued_batches", "Batches waiting at an operator's inputs on a worker.",
                           {"operator": op, "worker": worker}, st.get("queue", 0))
            usage = stats.get("process")
            if usage:
                fams.counter("worker_cpu_seconds", "CPU seconds (user + system) of a worker process.",
                             {"worker": worker}, usage["cpu_s"])
                fams.gauge("worker_resident_memory_bytes", "Resident memory of a worker process.",
                           {"worker": worker}, usage["rss_bytes"])
        for (worker, edge, peer), values in sorted(channels.items()):
            for (name, _f, doc), v in zip(CHANNEL_COUNTERS, values):
                fams.counter(name, doc, {"worker": worker, "edge": edge, "peer": peer}, v)
        for (worker, peer), nbytes in sorted(links.items()):
            fams.counter("link_sent_bytes", "Data bytes a worker sent to another (all channels between them).",
                         {"src": worker, "dst": peer}, nbytes)
        self._progress(fams)
        self._run(fams)
        yield from fams
        yield self.service.family("streamflow_operator_service_seconds",
                                  "Time an operator took to handle one batch.", ("operator", "worker"))
        yield self.latency.family("streamflow_sink_record_latency_seconds",
                                  "Time from a record's source timestamp to a sink.", ("operator", "worker"))
        latencies = c.observer.epoch_latency_s
        if len(latencies) > self._epochs_seen:
            self.epoch_latency.add_ms(("",), [s * 1e3 for s in latencies[self._epochs_seen:]])
            self._epochs_seen = len(latencies)
        yield self.epoch_latency.family("streamflow_run_epoch_latency_seconds",
                                        "Time from the sources closing an epoch to the sinks completing it.", ())
        yield from self._infos()

    def _progress(self, fams: Families) -> None:
        c = self.c
        obs = c.observer
        n = len(c.graph.operators)
        frontiers = self.frontiers.read(c.graph, obs.topology, obs.tracker, range(n), obs.sources_reached())
        for i, (done, lag) in sorted(frontiers.items()):
            labels = {"operator": c.graph.operators[i].name}
            fams.counter("operator_epochs_completed", "Epochs an operator has completed on every instance "
                         "(the coordinator's view of progress).", labels, done)
            fams.gauge("operator_frontier_lag_epochs", "Epochs between the sources' frontier and the "
                       "operator's input frontier.", labels, lag)
        last = obs.last_complete_epoch()
        sinks_done = self.frontiers.high + 1 if obs.complete() else (last + 1 if last is not None else 0)
        fams.counter("run_epochs_completed", "Epochs the sinks have completed.", {}, sinks_done)
        fams.counter("run_progress_batches", "Progress batches the coordinator observed.", {}, obs.batches)

    def _run(self, fams: Families) -> None:
        c = self.c
        plan = c.plan
        used = plan.workers_used()
        for w in used:
            m = c.members.get(w)
            fams.gauge("worker_up", "1 while a worker of the plan takes part in the run, 0 once lost or done.",
                       {"worker": w}, 1.0 if m is not None and m.state in ("registered", "running") else 0.0)
            fams.gauge("worker_cost_per_hour", "The hourly price of a worker the plan uses.",
                       {"worker": w, "tier": plan.workers[w].tier}, plan.workers[w].cost_per_hour)
        fams.gauge("run_cost_per_hour", "The hourly price of the workers the running plan uses.", {},
                   sum(plan.workers[w].cost_per_hour for w in used))
        expected = plan.expected
        for key, name, doc in (("cost_per_hour", "run_expected_cost_per_hour",
                                "The planner's estimate of the hourly cost, network included."),
                               ("communication_cost_per_hour", "run_expected_network_cost_per_hour",
                                "The planner's estimate of the hourly network cost."),
                               ("accuracy", "run_expected_accuracy", "The accuracy the planner predicted."),
                               ("throughput_per_s", "run_expected_throughput_per_second",
                                "The source rate the plan was made for.")):
            if isinstance(expected.get(key), (int, float)):
                fams.gauge(name, doc, {}, expected[key])
        for (sink, measure), v in sorted(self.accuracy.items()):
            fams.gauge("run_accuracy", "Accuracy measured against ground truth at the end of the run.",
                       {"sink": sink, "measure": measure}, v)
        started = c.run_started
        fams.gauge("run_elapsed_seconds", "Seconds since the run's sources started.", {},
                   (time.monotonic() - started + c.elapsed_before) if started is not None else 0.0)
        fams.gauge("run_generation", "Deployments of the plan so far minus one (recoveries and switches).",
                   {}, c.generation)
        fams.counter("run_recoveries", "Lost workers the run recovered from.", {}, len(c.record.failures))
        fams.counter("run_adaptations", "Plan switches (adaptations and reconfigurations) carried out.", {},
                     sum(1 for a in c.record.adaptations if "refused" not in a))
        fams.counter("run_adaptations_refused", "Plan switches refused.", {},
                     sum(1 for a in c.record.adaptations if "refused" in a))
        fams.counter("run_checkpoints", "Checkpoints committed to the recovery store.", {},
                     c.record.recovery.get("checkpoints", 0))

    def _infos(self) -> Any:
        c = self.c
        run = InfoMetricFamily("streamflow_run", "The run: plan name, run id and status.")
        run.add_metric([], {"plan": c.plan.name, "run_id": c.run_id, "status": c.status})
        yield run
        variant = InfoMetricFamily("streamflow_operator_variant", "The variant an operator runs now.",
                                   labels=["operator"])
        for node in c.plan.nodes:
            if node.variant:
                variant.add_metric([node.name], {"variant": node.variant})
        yield variant
        worker = InfoMetricFamily("streamflow_worker", "A worker of the plan: tier, device and where it "
                                  "serves its own metrics.", labels=["worker"])
        for w in c.plan.workers_used():
            m = c.members.get(w)
            spec = c.plan.workers[w]
            worker.add_metric([w], {"tier": spec.tier, "device": spec.device,
                                    "metrics_url": str((m.info.get("metrics") if m else None) or "")})
        yield worker
