"""The coordinator's live model of a run: per window (4 s), what each operator was offered and
how fast it served it, how long records took to each sink, and what the links carried.

Built from the stats every worker sends twice a second (cumulative counters per operator
instance, plus the service and latency samples since the last message). Counters restart when
a new generation starts (recovery, reconfiguration); a counter that went down is a restart.
The controller (`--adapt`) reads the windows; the report keeps them as `timeline` and
`write_timeline_png` draws them.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

WINDOW_S = 4.0
GLANCE_S = 0.5  # how often the controller looks for a load step between window ends (stats come twice a second)


def _p(samples: list[float], q: float) -> float | None:
    return round(float(np.percentile(samples, q)), 3) if samples else None


class LiveModel:
    """Windows of measured rates, service times, queues, latencies and link bytes."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self.t0 = time.monotonic()
        self.window_start = self.t0
        self.windows: list[dict[str, Any]] = []
        self._last: dict[tuple[str, str, str], float] = {}  # (role, op, counter) -> last cumulative value
        self._links_last: dict[tuple[str, str], int] = {}
        # (when, role, op, records) as stats came in, over the last window: rates over the last
        # seconds may span the window boundary
        self.arrivals: list[tuple[float, str, str, float]] = []
        self.queue_now: dict[str, dict[str, int]] = {}  # op -> role -> queued batches, latest
        self.last_glance = self.t0
        self._reset_window()

    def _reset_window(self) -> None:
        self.records: dict[str, float] = {}
        self.batches: dict[str, float] = {}
        self.busy: dict[str, float] = {}
        self.service: dict[str, list[float]] = {}
        self.served: dict[str, int] = {}  # records the service samples covered
        self.latency: dict[str, list[float]] = {}
        self.queue: dict[str, dict[str, int]] = {}
        self.instances: dict[str, set[str]] = {}
        self.link_bytes: dict[str, int] = {}

    def restart_counters(self) -> None:
        """A new generation starts: its workers count from zero (a counter that merely went
        down would miss a new generation that has already counted past the old one)."""
        self._last.clear()
        self._links_last.clear()
        self.queue_now.clear()  # the old generation's instances have stopped

    def _delta(self, key: tuple[str, str, str], value: float) -> float:
        last = self._last.get(key, 0.0)
        self._last[key] = value
        return value - last if value >= last else value  # belt and braces: a restart not announced

    def add_stats(self, role: str, stats: dict[str, Any]) -> None:
        now = time.monotonic()
        if self.arrivals and self.arrivals[0][0] < now - self.window_s:
            self.arrivals = [a for a in self.arrivals if a[0] >= now - self.window_s]
        for op, st in stats.get("ops", {}).items():
            counted = self._delta((role, op, "records"), st.get("records") or st.get("records_out", 0))
            self.records[op] = self.records.get(op, 0) + counted
            self.arrivals.append((now, role, op, counted))
            self.batches[op] = self.batches.get(op, 0) + self._delta((role, op, "batches"), st.get("batches", 0))
            self.busy[op] = self.busy.get(op, 0.0) + self._delta((role, op, "busy"), st.get("busy_s", 0.0))
            self.service.setdefault(op, []).extend(st.get("service_ms", []))
            self.served[op] = self.served.get(op, 0) + int(st.get("service_records", 0))
            if st.get("latency_ms"):
                self.latency.setdefault(op, []).extend(st["latency_ms"])
            self.queue.setdefault(op, {})[role] = st.get("queue", 0)
            self.queue_now.setdefault(op, {})[role] = st.get("queue", 0)
            self.instances.setdefault(op, set()).add(role)
        for peer, nbytes in stats.get("links", {}).items():
            key = (role, peer)
            last = self._links_last.get(key, 0)
            self._links_last[key] = nbytes
            link = f"{role} -> {peer}"
            self.link_bytes[link] = self.link_bytes.get(link, 0) + (nbytes - last if nbytes >= last else nbytes)

    def _recent_rates(self, since: float) -> dict[str, float]:
        """Records per second of each operator from `since` on (where a load step shows before
        it moves a whole window): per instance, the counts its stats messages brought from
        `since` on, over the time since its last message before that (since `since` for an
        instance with none before: a lower bound)."""
        out: dict[str, float] = {}
        streams: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for t, role, op, n in self.arrivals:
            streams.setdefault((role, op), []).append((t, n))
        for (_role, op), msgs in streams.items():
            later = [(t, n) for t, n in msgs if t > since]
            before = [t for t, _n in msgs if t <= since]
            if not later:
                continue
            start = before[-1] if before else since
            if later[-1][0] > start:
                out[op] = round(out.get(op, 0.0) + sum(n for _t, n in later) / (later[-1][0] - start), 3)
        return out

    def tick(self, context: dict[str, Any]) -> dict[str, Any] | None:
        """Close the window when it is due; `context` (variants, workers, cost, generation) is
        recorded with it. Returns the closed window."""
        now = time.monotonic()
        if now - self.window_start < self.window_s:
            return None
        window = self._summary(now, context)
        self.windows.append(window)
        self.window_start = now
        self._reset_window()
        return window

    def glance(self, context: dict[str, Any]) -> dict[str, Any] | None:
        """Every GLANCE_S between window ends: the last half window (2 s, across the window
        boundary) summarised like a closed window, `recent_rate_per_s` over its second half (1 s)
        and `queue` as the workers last reported it. The controller looks at it for a load step
        only, so a step is acted on within about a second of showing, not at a window's end or
        half; the window itself goes on and closes as usual."""
        now = time.monotonic()
        if now - self.last_glance < GLANCE_S or now - self.window_start >= self.window_s:
            return None
        self.last_glance = now
        half = self.window_s / 2
        return {**self._summary(now, context), "partial": True, "span_s": half,
                "rate_per_s": self._recent_rates(now - half), "recent_rate_per_s": self._recent_rates(now - half / 2),
                "queue": {op: sum(q.values()) for op, q in self.queue_now.items()}}

    def _summary(self, now: float, context: dict[str, Any]) -> dict[str, Any]:
        span = now - self.window_start
        return {
            "t_s": round(now - self.t0, 3), "span_s": round(span, 3),
            "rate_per_s": {op: round(n / span, 3) for op, n in self.records.items()},
            "recent_rate_per_s": self._recent_rates(now - span / 2),
            "utilization": {op: round(self.busy[op] / (span * max(1, len(self.instances.get(op, ())))), 4)
                            for op in self.busy},
            "service_ms": {op: {"p50": _p(s, 50), "p99": _p(s, 99)} for op, s in self.service.items() if s},
            "records_per_batch": {op: round(self.records[op] / self.batches[op], 3)
                                  for op in self.batches if self.batches[op]},
            # a model batch gathers many channel batches: time served / records served, not p50 / records_per_batch
            "service_ms_per_record": {op: round(sum(s) / self.served[op], 3)
                                      for op, s in self.service.items() if s and self.served.get(op)},
            "queue": {op: sum(q.values()) for op, q in self.queue.items()},
            "latency_ms": {op: {"p50": _p(s, 50), "p99": _p(s, 99), "n": len(s)} for op, s in self.latency.items()},
            "link_bytes_per_s": {k: round(v / span, 1) for k, v in self.link_bytes.items() if v},
            **context,
        }


def write_timeline_png(windows: list[dict[str, Any]], events: list[dict[str, Any]], path: str | Path,
                       title: str, slo_ms: float | None = None, sources: list[str] | None = None) -> Path | None:
    """Rate (sources and operators with variants), p99 latency per sink, queues and cost per
    window, with adaptations and failures marked and numbered."""
    if not windows:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = [w["t_s"] for w in windows]
    fig, axes = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
    shown = {op for w in windows for op in w.get("variants", {})} | set(sources or [])
    ops = sorted(op for op in {op for w in windows for op in w["rate_per_s"]} if not shown or op in shown)
    for op in ops:
        axes[0].plot(t, [w["rate_per_s"].get(op, 0) for w in windows], label=op)
    axes[0].set_ylabel("records/s")
    for sink in sorted({op for w in windows for op in w["latency_ms"]}):
        axes[1].plot(t, [w["latency_ms"].get(sink, {}).get("p99") for w in windows], label=f"{sink} p99")
    if slo_ms:
        axes[1].axhline(slo_ms, color="red", linestyle="--", label=f"SLO {slo_ms:g} ms")
    axes[1].set_ylabel("p99 latency ms")
    for op in sorted({op for w in windows for op in w["queue"]}):
        axes[2].plot(t, [w["queue"].get(op, 0) for w in windows], label=op)
    axes[2].set_ylabel("queued batches")
    for ax in axes[:3]:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, ncol=3)
    axes[3].step(t, [w.get("cost_per_hour") or 0 for w in windows], where="post")
    axes[3].set_ylabel("cost / hour")
    axes[3].set_xlabel("seconds since the run started")
    lines = []
    for i, ev in enumerate(events, 1):
        for ax in axes:
            ax.axvline(ev["t_s"], color="grey", linestyle=":")
        axes[0].text(ev["t_s"], 0.97, f" {i}", transform=axes[0].get_xaxis_transform(), fontsize=8, va="top")
        lines.append(f"{i}: {ev['t_s']:.0f} s {ev['label']}")
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.03 * len(lines), 1, 1))
    for i, text in enumerate(lines):
        fig.text(0.01, 0.03 * (len(lines) - i) - 0.022, text[:150], fontsize=7)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
