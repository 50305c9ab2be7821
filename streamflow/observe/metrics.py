"""Building blocks shared by the coordinator's and the workers' Prometheus collectors.

Both follow the collector pattern: nothing is incremented on the hot path; at scrape time the
collector reads the counters the runtime keeps anyway (per batch) and the stats a worker sends
twice a second, and turns them into metric families. Service and latency samples, which the
stats carry once each, are binned into fixed buckets as they arrive.
"""
from __future__ import annotations

import math
import os
import resource
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from streamflow.observe.http import HttpServer, Response
from streamflow.progress import DONE

PREFIX = "streamflow_"
# seconds; an operator batch takes from tens of microseconds (a filter) to seconds (a detector on a slow core)
SERVICE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0)
# seconds from a record's source timestamp to a sink
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class Buckets:
    """One histogram: counts per bucket (non-cumulative), the sum and the count."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = np.asarray(bounds, dtype=float)
        self.counts = np.zeros(len(bounds) + 1, dtype=np.int64)
        self.total = 0.0

    def add_ms(self, samples_ms: Sequence[float]) -> None:
        """Add samples given in milliseconds (as the worker stats carry them)."""
        if not samples_ms:
            return
        x = np.asarray(samples_ms, dtype=float) / 1e3
        # Prometheus buckets are "less than or equal to": searchsorted left puts x == bound in it
        self.counts += np.bincount(np.searchsorted(self.bounds, x, side="left"), minlength=len(self.counts))
        self.total += float(x.sum())

    def cumulative(self) -> list[tuple[str, float]]:
        running = np.cumsum(self.counts)
        out = [(_le(b), float(c)) for b, c in zip(self.bounds, running[:-1])]
        return out + [("+Inf", float(running[-1]))]


def _le(bound: float) -> str:
    return repr(float(bound))


class Histograms:
    """Histograms by label values, all with the same buckets."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.by_labels: dict[tuple[str, ...], Buckets] = {}

    def add_ms(self, labels: tuple[str, ...], samples_ms: Sequence[float]) -> None:
        if samples_ms:
            hist = self.by_labels.get(labels)
            if hist is None:
                hist = self.by_labels[labels] = Buckets(self.bounds)
            hist.add_ms(samples_ms)

    def family(self, name: str, doc: str, labels: Sequence[str]) -> HistogramMetricFamily:
        fam = HistogramMetricFamily(name, doc, labels=list(labels))
        for values, hist in sorted(self.by_labels.items()):
            fam.add_metric(list(values), hist.cumulative(), hist.total)
        return fam


class Families:
    """Metric families by name, created on first use, so a collector reads like a list of samples."""

    def __init__(self) -> None:
        self.families: dict[str, Any] = {}

    def _get(self, cls: type, name: str, doc: str, labels: Sequence[str]) -> Any:
        fam = self.families.get(name)
        if fam is None:
            fam = self.families[name] = cls(PREFIX + name, doc, labels=list(labels))
        return fam

    def counter(self, name: str, doc: str, labels: dict[str, str], value: float) -> None:
        """`name` without the `_total` suffix (prometheus-client adds it)."""
        self._get(CounterMetricFamily, name, doc, labels).add_metric(list(labels.values()), float(value))

    def gauge(self, name: str, doc: str, labels: dict[str, str], value: float) -> None:
        self._get(GaugeMetricFamily, name, doc, labels).add_metric(list(labels.values()), float(value))

    def __iter__(self) -> Any:
        return iter(self.families.values())


class Frontiers:
    """Per operator: epochs completed and frontier lag behind the sources, from a progress
    tracker's view. After the last epoch the frontier is DONE; epochs completed then counts up
    through the highest epoch the sources were seen at (so counters never go down)."""

    def __init__(self, start_epoch: int = 0) -> None:
        self.high = start_epoch  # the highest finite frontier the sources were seen at

    def read(self, graph: Any, topology: Any, tracker: Any, ops: Iterable[int],
             sources_reached: int | None = None) -> dict[int, tuple[int, int]]:
        """{operator index: (epochs completed, lag in epochs behind the sources)};
        `sources_reached`: the highest source frontier known from elsewhere (an observer that
        saw every progress batch)."""
        sources = [topology.output_location[(i, p)] for i, op in enumerate(graph.operators)
                   if op.n_inputs == 0 for p in range(op.n_outputs)]
        src = tracker.frontier_of(sources)
        if src != DONE:
            self.high = max(self.high, int(src))
        if sources_reached is not None:
            self.high = max(self.high, sources_reached)
        end = self.high + 1
        out = {}
        for i in ops:
            f = tracker.frontier(i)
            done = end if f == DONE or math.isinf(f) else int(f)
            out[i] = (done, max(0, (end if src == DONE else int(src)) - done))
        return out


def process_usage() -> dict[str, float]:
    """This process's CPU seconds (user + system) and resident memory, cheap enough for every
    stats message."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    rss = 0
    try:
        with open("/proc/self/statm", "rb") as f:
            rss = int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):  # not Linux: the peak is the best there is
        rss = ru.ru_maxrss * 1024
    return {"cpu_s": round(ru.ru_utime + ru.ru_stime, 3), "rss_bytes": rss}


def exposition(registry: Any) -> Callable[[str], Response]:
    """An HTTP handler serving `registry` in the Prometheus text exposition format."""
    def handler(_path: str) -> Response:
        return Response(generate_latest(registry), CONTENT_TYPE_LATEST)
    return handler


async def serve_metrics(registry: Any, host: str, port: int) -> HttpServer:
    """Start an HttpServer with `registry` at /metrics (port 0: any free port)."""
    server = HttpServer(host, port)
    server.route("/metrics", exposition(registry))
    return await server.start()
