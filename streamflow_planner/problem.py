"""The planning problem: dataflow, variants, workers, profiles, link prices and floors.

`load_problem` reads the self-describing JSON format of `../shared/data/planner/vqa_medium.json`
(see docs/planner.md) and validates it; every error names the JSON path of the bad field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from streamflow_planner.errors import ProblemError

DEFAULT_TIER_NAMES = {1: ["edge"], 2: ["edge", "cloud"], 3: ["edge", "hub", "cloud"]}
GB_PER_HOUR_PER_KB_PER_S = 3600.0 / 1024.0 / 1024.0
KB_PER_S_PER_MBPS = 1e6 / 8 / 1024      # 1 Mbit/s = 122.07 KB/s (KB = 1024 bytes, as message sizes)


@dataclass(frozen=True)
class Worker:
    """A host that can serve one ML operator, rented at a full hourly price."""

    name: str
    index: int
    tier: int
    cost_per_hour: float
    device: str | None = None
    cpus: float | None = None    # a CPU quota in cores (CFS bandwidth control); None: a whole host


@dataclass(frozen=True)
class Source:
    """A data source on tier 0 injecting requests at a fixed rate; not a worker.

    `arrivals` is how its requests are spaced: "periodic" (the runtime's trace and generator
    sources: `burst` records together every burst / rate seconds, e.g. one frame per camera) or
    "poisson" (independent arrivals at the rate)."""

    name: str
    rate: float
    tier: int = 0
    worker: str | None = None
    runtime: dict | None = None
    arrivals: str = "periodic"
    burst: int = 1

    @property
    def period_ms(self) -> float:
        return 1000.0 * self.burst / self.rate


@dataclass(frozen=True)
class Operator:
    """An ML operator: one variant is chosen and served by a set of workers."""

    name: str
    inputs: tuple[str, ...]
    variants: tuple[str, ...]
    runtime: dict | None = None


@dataclass(frozen=True)
class Edge:
    """A dataflow edge with its rate ratio and message size (KB per downstream request)."""

    src: str
    dst: str
    ratio: float
    sizes: dict[tuple[str, str], float]

    def size(self, src_variant: str, dst_variant: str) -> float:
        """Message size for a variant pair, falling back to 'default' rows like JellyBean."""
        for key in ((src_variant, dst_variant), ("default", dst_variant),
                    (src_variant, "default"), ("default", "default")):
            if key in self.sizes:
                return self.sizes[key]
        raise KeyError((self.src, self.dst, src_variant, dst_variant))


@dataclass(frozen=True)
class OperatorProfile:
    """Per-variant samples (input accuracies -> output accuracy) of one operator."""

    operator: str
    inputs: tuple[str, ...]
    samples: dict[str, tuple[tuple[tuple[float, ...], float], ...]]
    surrogate: dict[str, float]

    def exact_hit(self, variant: str, inputs: tuple[float, ...]) -> float | None:
        """The best output among samples taken at exactly these input accuracies, if any."""
        table = self.__dict__.get("_hits")
        if table is None:
            table = {}
            for v, rows in self.samples.items():
                for ins, out in rows:
                    key = (v, ins)
                    table[key] = max(out, table.get(key, out))
            object.__setattr__(self, "_hits", table)
        return table.get((variant, inputs))


@dataclass(frozen=True, order=True)
class BatchSetting:
    """An operator's dynamic batching: up to `size` records per model call, waiting at most
    `max_wait_ms` for companions of the oldest pending record."""

    size: int
    max_wait_ms: float

    def as_plan(self) -> dict:
        return {"max_size": self.size, "max_wait_ms": self.max_wait_ms}


@dataclass(frozen=True)
class LatencySLO:
    """The `percentile` (0.95 or 0.99) of source-to-sink latency must stay at most `ms`."""

    ms: float
    percentile: float = 0.99

    @property
    def label(self) -> str:
        return f"p{round(self.percentile * 100):d}"


DEFAULT_LEVELS = (0.2, 0.4, 0.6, 0.75, 0.85, 0.95)


@dataclass(frozen=True)
class LatencyModelSettings:
    """The discrete choices the latency model offers: utilisation levels a worker may be planned
    at (its queueing is charged at the level), and the max waits a batch may be given."""

    levels: tuple[float, ...] = DEFAULT_LEVELS
    max_waits_ms: tuple[float, ...] = (0.0,)
    overhead_ms: float = 0.0     # the runtime's own time per record at an ML operator, on top of the profile
    service_cv: float = 0.0      # coefficient of variation of a request's service time (0: deterministic)
    service_cv_by_worker: tuple[tuple[str, float], ...] = ()     # per-worker values that replace it
    quota_period_ms: float = 100.0   # the CFS period of workers with a `cpus` quota (cpu.cfs_period_us)

    def cv_of(self, worker: str) -> float:
        return dict(self.service_cv_by_worker).get(worker, self.service_cv)


PERCENTILES = {"p95": 0.95, "p99": 0.99}
ARRIVALS = ("periodic", "poisson")


@dataclass(frozen=True)
class Arrivals:
    """How requests reach an operator's workers: periodic bursts every `period_ms` (deterministic
    sources; the longest period among the sources upstream) or Poisson (any Poisson source upstream)."""

    process: str
    period_ms: float = 0.0


@dataclass
class Problem:
    """A validated planning problem; arrays are indexed by worker index."""

    name: str
    sources: dict[str, Source]
    operators: dict[str, Operator]          # ML operators in topological order
    edges: list[Edge]
    sink: str
    workers: list[Worker]
    tier_names: list[str]
    latency_ms: dict[str, dict[str, np.ndarray]]   # op -> variant -> ms per worker (nan: cannot run)
    scale: float                                   # comm_cost_scaling_factor
    worker_price: np.ndarray                       # W x W money per GB before scaling
    source_price: dict[str, np.ndarray]            # source -> W money per GB before scaling
    threshold: float
    profiles: dict[str, OperatorProfile]
    end_to_end: tuple[tuple[str, ...], dict[tuple[str, ...], float]] | None
    raw: dict = field(repr=False, default_factory=dict)
    origin: str = "problem.json"
    bandwidth_kb_s: np.ndarray | None = None       # tier x tier KB/s per direction (inf: unlimited)
    rtt_ms: np.ndarray | None = None               # tier x tier round trip (informational)
    utilization: float = 1.0                       # share of a worker's profiled capacity a plan may use
    by_batch: dict[str, dict[str, dict[int, np.ndarray]]] = field(default_factory=dict)  # op -> variant -> size -> ms/request
    slo: "LatencySLO | None" = None                # a latency bound on the path to the sink
    latency_model: "LatencyModelSettings" = field(default_factory=lambda: LatencyModelSettings())

    # ---- derived views -------------------------------------------------------------------
    @property
    def num_tiers(self) -> int:
        return len(self.tier_names)

    @property
    def tiers(self) -> np.ndarray:
        return np.array([w.tier for w in self.workers], dtype=int)

    @property
    def costs(self) -> np.ndarray:
        return np.array([w.cost_per_hour for w in self.workers], dtype=float)

    def worker(self, name: str) -> Worker:
        return self._by_name()[name]

    @property
    def plan_extras(self) -> dict:
        """Non-ML operators and sinks to copy into the plan (`plan_extras`; not planned)."""
        return self.raw.get("plan_extras") or {}

    @property
    def extra_names(self) -> set[str]:
        return {o.get("name") for o in self.plan_extras.get("operators", [])}

    @property
    def epoch(self) -> dict | None:
        """The plan's epoch block, when the problem states one."""
        return self.raw.get("epoch")

    def _by_name(self) -> dict[str, Worker]:
        cache = self.__dict__.get("_worker_index")
        if cache is None:
            cache = {w.name: w for w in self.workers}
            self.__dict__["_worker_index"] = cache
        return cache

    def default_batch(self, op: str) -> BatchSetting:
        """The batching the workflow configured (what `execution_latency_ms` was timed at)."""
        b = (self.operators[op].runtime or {}).get("batch") or {}
        return BatchSetting(int(b.get("max_size", 1)), float(b.get("max_wait_ms", 0.0)))

    def batch_options(self, op: str) -> list[BatchSetting]:
        """Batch settings a latency-bounded plan may choose: every profiled batch size with every
        allowed max wait (a size of 1 never waits); without per-size profiles the configured one."""
        sizes = sorted({b for per in self.by_batch.get(op, {}).values() for b in per})
        if not sizes:
            return [self.default_batch(op)]
        return [BatchSetting(b, 0.0 if b == 1 else w) for b in sizes
                for w in (self.latency_model.max_waits_ms if b > 1 else (0.0,))]

    def service_ms(self, op: str, variant: str, batch: BatchSetting | None = None) -> np.ndarray:
        """ms per request on each worker at a batch size (nan: not profiled or cannot run)."""
        if batch is None:
            return self.latency_ms[op][variant]
        per = self.by_batch.get(op, {}).get(variant, {})
        if batch.size in per:
            return per[batch.size]
        if batch.size == self.default_batch(op).size:
            return self.latency_ms[op][variant]
        return np.full(len(self.workers), np.nan)

    def capacity(self, op: str, variant: str, batch: BatchSetting | None = None,
                 level: float | None = None) -> np.ndarray:
        """Requests/s each worker sustains for (op, variant): 1000/latency (times `utilization`, the
        headroom a plan keeps for what the profile does not time, or the planned utilisation
        `level`), 0 where it cannot run."""
        lat = self.service_ms(op, variant, batch)
        share = self.utilization if level is None else level
        with np.errstate(divide="ignore", invalid="ignore"):
            cap = np.where(np.isfinite(lat) & (lat > 0), share * 1000.0 / lat, 0.0)
        return cap

    def in_edges(self, node: str) -> list[Edge]:
        return [e for e in self.edges if e.dst == node]

    def out_edges(self, node: str) -> list[Edge]:
        return [e for e in self.edges if e.src == node]

    def is_join(self, op: str) -> bool:
        """A multi-input operator joins its inputs by request: every input uses the same split."""
        return len(self.operators[op].inputs) > 1

    def cached(self, key: str, build):
        """Memoise a derived value that depends only on the problem's data (not on floors)."""
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def arrivals(self, op: str) -> Arrivals:
        """The arrival process at `op`: Poisson if a Poisson source feeds it (directly or through
        other operators), else periodic with the longest period of the sources upstream."""
        key = f"arrivals:{op}:" + ",".join(f"{s.rate!r}/{s.burst}/{s.arrivals}" for s in self.sources.values())
        return self.cached(key, lambda: self._arrivals(op))

    def _arrivals(self, op: str) -> Arrivals:
        upstream: set[str] = set()
        todo = [op]
        while todo:
            for e in self.in_edges(todo.pop()):
                if e.src not in upstream:
                    upstream.add(e.src)
                    todo.append(e.src)
        srcs = [self.sources[s] for s in upstream if s in self.sources]
        if not srcs or any(s.arrivals == "poisson" for s in srcs):
            return Arrivals("poisson")
        return Arrivals("periodic", max(s.period_ms for s in srcs))

    def required_rates(self) -> dict[str, float]:
        """required(v) = min over inputs u of required(u) * ratio(u, v); sources inject."""
        rates: dict[str, float] = {s.name: s.rate for s in self.sources.values()}
        for op in self.operators:
            rates[op] = min(rates[e.src] * e.ratio for e in self.in_edges(op))
        return rates

    def link_cost_per_kb_s(self, sender: int, receiver: int) -> float:
        """Money per hour for 1 KB/s from worker to worker; inf if it flows to a lower tier."""
        return self._priced(self.workers[sender].tier, self.workers[receiver].tier,
                            self.worker_price[sender, receiver])

    def source_cost_per_kb_s(self, source: str, receiver: int) -> float:
        """Money per hour for 1 KB/s from a source to a worker; inf below the source's tier."""
        return self._priced(self.sources[source].tier, self.workers[receiver].tier,
                            self.source_price[source][receiver])

    def _priced(self, tier_from: int, tier_to: int, price_per_gb: float) -> float:
        """Free inside a tier, forbidden downwards, else the scaled price per GB as per KB/s-hour."""
        if tier_to == tier_from:
            return 0.0
        if tier_to < tier_from:
            return math.inf
        return float(price_per_gb) * self.scale * GB_PER_HOUR_PER_KB_PER_S

    def link_bandwidth(self, tier_from: int, tier_to: int) -> float:
        """KB/s the link between two different tiers carries in that direction (inf: unlimited)."""
        if self.bandwidth_kb_s is None or tier_from == tier_to:
            return math.inf
        return float(self.bandwidth_kb_s[tier_from, tier_to])

    @property
    def has_bandwidth(self) -> bool:
        return self.bandwidth_kb_s is not None and bool(np.isfinite(self.bandwidth_kb_s).any())

    def levels(self) -> tuple[float, ...]:
        """Utilisation levels a latency-bounded plan may put a worker at (at most `utilization`)."""
        got = tuple(u for u in self.latency_model.levels if u <= self.utilization + 1e-12)
        return got or (self.utilization,)

    def with_overrides(self, accuracy: float | None = None, throughput: float | None = None,
                       utilization: float | None = None, slo_ms: float | None = None,
                       percentile: str | None = None) -> "Problem":
        """A copy with another accuracy floor, source rates scaled so the sink needs `throughput`,
        workers planned to at most `utilization` of their profiled capacity, or a latency SLO."""
        out = replace(self)
        out.__dict__["_cache"] = self.__dict__.setdefault("_cache", {})   # accuracy ignores floors and rates
        if slo_ms is not None or percentile is not None:
            if slo_ms is not None and not slo_ms > 0:
                raise ProblemError(f"--slo-ms must be positive, got {slo_ms}")
            if percentile is not None and percentile not in PERCENTILES:
                raise ProblemError(f"--slo-percentile must be one of {', '.join(PERCENTILES)}, got {percentile}")
            ms = slo_ms if slo_ms is not None else (self.slo.ms if self.slo else None)
            if ms is None:
                raise ProblemError("--slo-percentile needs a latency SLO (--slo-ms or latency_slo_ms)")
            pct = PERCENTILES[percentile] if percentile else (self.slo.percentile if self.slo else 0.99)
            out.slo = LatencySLO(float(ms), pct)
        if accuracy is not None:
            out.threshold = float(accuracy)
        if utilization is not None:
            if not 0 < utilization <= 1:
                raise ProblemError(f"--utilization must be in (0, 1], got {utilization}")
            out.utilization = float(utilization)
        if throughput is not None:
            if not throughput > 0:
                raise ProblemError(f"--throughput must be positive, got {throughput}")
            factor = throughput / self.required_rates()[self.sink]
            out.sources = {n: replace(s, rate=s.rate * factor) for n, s in self.sources.items()}
        return out


# ---------------------------------------------------------------------------------------------
# Loading and validation
# ---------------------------------------------------------------------------------------------

class _Reader:
    """Typed access into the JSON document that reports errors with their JSON path."""

    def __init__(self, origin: str):
        self.origin = origin

    def fail(self, path: str, msg: str) -> ProblemError:
        return ProblemError(f"{self.origin}: {path}: {msg}" if path else f"{self.origin}: {msg}")

    def get(self, obj: dict, key: str, path: str, kind: type | tuple, optional: bool = False,
            default: Any = None) -> Any:
        full = f"{path}.{key}" if path else key
        if not isinstance(obj, dict):
            raise self.fail(path, "expected an object")
        if key not in obj or obj[key] is None:
            if optional:
                return default
            raise self.fail(full, "missing field")
        return self.check(obj[key], full, kind)

    def check(self, value: Any, path: str, kind: type | tuple) -> Any:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(float(value)):
                raise self.fail(path, f"expected a finite number, got {value!r}")
            return float(value) if int not in kinds else value
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(path, f"expected {_kind_name(kinds)}, got {value!r}")
        if not isinstance(value, kinds):
            raise self.fail(path, f"expected {_kind_name(kinds)}, got {type(value).__name__}")
        return value


def _kind_name(kinds: tuple) -> str:
    names = {dict: "an object", list: "a list", str: "a string", float: "a number", int: "an integer",
             bool: "a boolean"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def load_problem(path: str | Path) -> Problem:
    """Read and validate a problem file; raises ProblemError naming the JSON path."""
    p = Path(path)
    origin = p.name
    try:
        text = p.read_text()
    except OSError as exc:
        raise ProblemError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProblemError(f"{origin}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return parse_problem(data, origin)


def parse_problem(data: Any, origin: str = "problem.json") -> Problem:
    """Validate a problem document (already parsed JSON) and build the Problem."""
    r = _Reader(origin)
    if not isinstance(data, dict):
        raise r.fail("", "top level must be an object")
    name = r.get(data, "problem", "", str, optional=True, default=Path(origin).stem)

    # ---- workers and tiers ---------------------------------------------------------------
    workers_raw = r.get(data, "workers", "", list)
    if not workers_raw:
        raise r.fail("workers", "no workers")
    workers: list[Worker] = []
    seen: set[str] = set()
    for i, w in enumerate(workers_raw):
        wp = f"workers[{i}]"
        wname = r.get(w, "name", wp, str)
        if wname in seen:
            raise r.fail(f"{wp}.name", f"duplicate worker '{wname}'")
        seen.add(wname)
        tier = r.get(w, "tier", wp, int)
        if tier < 0:
            raise r.fail(f"{wp}.tier", f"tier must be >= 0, got {tier}")
        cost = r.get(w, "cost_per_hour", wp, float)
        if cost < 0:
            raise r.fail(f"{wp}.cost_per_hour", f"must be >= 0, got {cost}")
        device = r.get(w, "device", wp, str, optional=True)
        cpus = r.get(w, "cpus", wp, float, optional=True)
        if cpus is not None and not cpus > 0:
            raise r.fail(f"{wp}.cpus", f"must be > 0, got {cpus}")
        workers.append(Worker(wname, i, tier, float(cost), device, None if cpus is None else float(cpus)))
    num_tiers = max(w.tier for w in workers) + 1
    tiers_raw = r.get(data, "tiers", "", list, optional=True)
    if tiers_raw is not None:
        for t, members in enumerate(tiers_raw):
            r.check(members, f"tiers[{t}]", list)
            for j, wn in enumerate(members):
                if wn not in seen:
                    raise r.fail(f"tiers[{t}][{j}]", f"no such worker '{wn}'")
                declared = next(w.tier for w in workers if w.name == wn)
                if declared != t:
                    raise r.fail(f"tiers[{t}][{j}]", f"worker '{wn}' has tier {declared} in workers")
        num_tiers = max(num_tiers, len(tiers_raw))
    tier_names = r.get(data, "tier_names", "", list, optional=True)
    if tier_names is None:
        tier_names = DEFAULT_TIER_NAMES.get(num_tiers, [f"tier{t}" for t in range(num_tiers)])
    else:
        if len(tier_names) < num_tiers:
            raise r.fail("tier_names", f"names {len(tier_names)} tiers, workers use {num_tiers}")
        for t, tn in enumerate(tier_names):
            r.check(tn, f"tier_names[{t}]", str)
        tier_names = list(tier_names)
    windex = {w.name: w.index for w in workers}

    # ---- dataflow -------------------------------------------------------------------------
    flow = r.get(data, "dataflow", "", dict)
    ops_raw = r.get(flow, "operators", "dataflow", list)
    sources: dict[str, Source] = {}
    ml_ops: dict[str, Operator] = {}
    node_paths: dict[str, str] = {}
    for i, o in enumerate(ops_raw):
        op_path = f"dataflow.operators[{i}]"
        oname = r.get(o, "name", op_path, str)
        if oname in node_paths:
            raise r.fail(f"{op_path}.name", f"duplicate operator '{oname}'")
        node_paths[oname] = op_path
        kind = r.get(o, "kind", op_path, str)
        if kind == "source":
            rate = r.get(o, "injection_rate_per_s", op_path, float)
            if not rate > 0:
                raise r.fail(f"{op_path}.injection_rate_per_s", f"must be > 0, got {rate}")
            stier = r.get(o, "located_on_tier", op_path, int, optional=True, default=0)
            sworker = r.get(o, "worker", op_path, str, optional=True)
            sruntime = r.get(o, "runtime", op_path, dict, optional=True)
            if sruntime is not None:
                r.get(sruntime, "kind", f"{op_path}.runtime", str)
                r.get(sruntime, "params", f"{op_path}.runtime", dict, optional=True)
            arrivals = r.get(o, "arrivals", op_path, str, optional=True, default="periodic")
            if arrivals not in ARRIVALS:
                raise r.fail(f"{op_path}.arrivals", f"expected one of {', '.join(ARRIVALS)}, got {arrivals!r}")
            paths = ((sruntime or {}).get("params") or {}).get("paths")
            burst = r.get(o, "burst", op_path, int, optional=True,
                          default=len(paths) if isinstance(paths, list) and paths else 1)
            if burst < 1:
                raise r.fail(f"{op_path}.burst", f"must be an integer >= 1, got {burst}")
            sources[oname] = Source(oname, float(rate), stier, sworker, sruntime, arrivals, int(burst))
        elif kind in ("ml_operator", "operator"):
            inputs = r.get(o, "input_operators", op_path, list)
            for j, u in enumerate(inputs):
                r.check(u, f"{op_path}.input_operators[{j}]", str)
            if not inputs:
                raise r.fail(f"{op_path}.input_operators", "an ML operator needs at least one input")
            variants = r.get(o, "variants", op_path, list)
            if not variants:
                raise r.fail(f"{op_path}.variants", "no variants")
            for j, v in enumerate(variants):
                r.check(v, f"{op_path}.variants[{j}]", str)
            if len(set(variants)) != len(variants):
                raise r.fail(f"{op_path}.variants", "duplicate variant names")
            oruntime = r.get(o, "runtime", op_path, dict, optional=True)
            if oruntime is not None:
                r.get(oruntime, "kind", f"{op_path}.runtime", str, optional=True)
                r.get(oruntime, "params", f"{op_path}.runtime", dict, optional=True)
                vp = r.get(oruntime, "variant_params", f"{op_path}.runtime", dict, optional=True)
                for vk in (vp or {}):
                    if vk not in variants:
                        raise r.fail(f"{op_path}.runtime.variant_params.{vk}", f"no such variant '{vk}'")
            ml_ops[oname] = Operator(oname, tuple(inputs), tuple(variants), oruntime)
        else:
            raise r.fail(f"{op_path}.kind", f"unknown kind '{kind}' (expected 'source' or 'ml_operator')")
    if not ml_ops:
        raise r.fail("dataflow.operators", "no ML operators")
    for oname, op in ml_ops.items():
        for j, u in enumerate(op.inputs):
            if u not in node_paths:
                raise r.fail(f"{node_paths[oname]}.input_operators[{j}]", f"no such operator '{u}'")

    edges_raw = r.get(flow, "edges", "dataflow", list)
    edges: list[Edge] = []
    edge_keys: set[tuple[str, str]] = set()
    for i, e in enumerate(edges_raw):
        ep = f"dataflow.edges[{i}]"
        src = r.get(e, "from", ep, str)
        dst = r.get(e, "to", ep, str)
        if src not in node_paths:
            raise r.fail(f"{ep}.from", f"no such operator '{src}'")
        if dst not in ml_ops:
            raise r.fail(f"{ep}.to", f"no such ML operator '{dst}'")
        if src not in ml_ops[dst].inputs:
            raise r.fail(ep, f"'{src}' is not in input_operators of '{dst}'")
        if (src, dst) in edge_keys:
            raise r.fail(ep, f"duplicate edge {src} -> {dst}")
        edge_keys.add((src, dst))
        ratio = r.get(e, "throughput_normalization_ratio", ep, float, optional=True, default=1.0)
        if not ratio > 0:
            raise r.fail(f"{ep}.throughput_normalization_ratio", f"must be > 0, got {ratio}")
        rows = r.get(e, "message_size_kb_by_variant", ep, list, optional=True)
        rows_key = "message_size_kb_by_variant"
        if rows is None:
            rows = r.get(e, "message_size_kb_raw_rows", ep, list)
            rows_key = "message_size_kb_raw_rows"
        sizes: dict[tuple[str, str], float] = {}
        for j, row in enumerate(rows):
            rp = f"{ep}.{rows_key}[{j}]"
            fv = r.get(row, "from_variant", rp, str)
            tv = r.get(row, "to_variant", rp, str)
            kb = r.get(row, "message_size_kb", rp, float)
            if kb < 0:
                raise r.fail(f"{rp}.message_size_kb", f"must be >= 0, got {kb}")
            sizes[(fv, tv)] = float(kb)
        edge = Edge(src, dst, float(ratio), sizes)
        src_variants = ml_ops[src].variants if src in ml_ops else ("default",)
        for ku in src_variants:
            for kv in ml_ops[dst].variants:
                try:
                    edge.size(ku, kv)
                except KeyError:
                    raise r.fail(f"{ep}.{rows_key}", f"no message size for variants {ku} -> {kv}") from None
        edges.append(edge)
    for oname, op in ml_ops.items():
        for u in op.inputs:
            if (u, oname) not in edge_keys:
                raise r.fail("dataflow.edges", f"missing edge {u} -> {oname}")

    graph = nx.DiGraph()
    graph.add_nodes_from(node_paths)
    graph.add_edges_from(edge_keys)
    if not nx.is_directed_acyclic_graph(graph):
        cycle = " -> ".join(u for u, _ in nx.find_cycle(graph))
        raise r.fail("dataflow.edges", f"cycle {cycle}")
    order = [n for n in nx.lexicographical_topological_sort(graph, key=lambda n: list(node_paths).index(n))
             if n in ml_ops]
    ml_ops = {n: ml_ops[n] for n in order}

    sink = r.get(flow, "sink", "dataflow", str, optional=True)
    sinks = [n for n in ml_ops if graph.out_degree(n) == 0]
    if sink is None:
        if len(sinks) != 1:
            raise r.fail("dataflow.sink", f"missing field and the dataflow has sinks {sinks}")
        sink = sinks[0]
    elif sink not in ml_ops:
        raise r.fail("dataflow.sink", f"no such ML operator '{sink}'")
    elif sinks != [sink]:
        raise r.fail("dataflow.sink", f"'{sink}' is not the only operator without outputs {sinks}")

    for sname, s in sources.items():
        sp = node_paths[sname]
        if s.worker is not None and s.worker in windex and workers[windex[s.worker]].tier != s.tier:
            raise r.fail(f"{sp}.worker", f"worker '{s.worker}' is not on tier {s.tier}")

    # ---- execution profiles -----------------------------------------------------------------
    lat_raw = r.get(data, "execution_latency_ms", "", dict)
    latency: dict[str, dict[str, np.ndarray]] = {}
    for oname, op in ml_ops.items():
        per_op = r.get(lat_raw, oname, "execution_latency_ms", dict)
        latency[oname] = {}
        for variant in op.variants:
            vpath = f"execution_latency_ms.{oname}.{variant}"
            per_var = r.get(per_op, variant, f"execution_latency_ms.{oname}", dict)
            arr = np.full(len(workers), np.nan)
            for key in per_var:
                if key not in windex:
                    raise r.fail(f"{vpath}.{key}", f"no such worker '{key}'")
            for w in workers:
                if w.name not in per_var:
                    raise r.fail(vpath, f"missing worker '{w.name}'")
                val = per_var[w.name]
                if val is None:
                    continue
                val = r.check(val, f"{vpath}.{w.name}", float)
                if not val > 0:
                    raise r.fail(f"{vpath}.{w.name}", f"latency must be > 0 ms (null: cannot run), got {val}")
                arr[w.index] = float(val)
            latency[oname][variant] = arr
        for key in per_op:
            if key not in op.variants:
                raise r.fail(f"execution_latency_ms.{oname}.{key}", f"no such variant '{key}'")
    for key in lat_raw:
        if key not in ml_ops:
            raise r.fail(f"execution_latency_ms.{key}", f"no such ML operator '{key}'")

    by_batch = _read_by_batch(r, data, ml_ops, workers)
    slo, model = _read_slo(r, data, {w.name for w in workers})

    # ---- links ----------------------------------------------------------------------------
    links = r.get(data, "links", "", dict, optional=True, default={})
    scale = r.get(links, "comm_cost_scaling_factor", "links", float, optional=True, default=1.0)
    if scale < 0:
        raise r.fail("links.comm_cost_scaling_factor", f"must be >= 0, got {scale}")
    unlisted = r.get(links, "unlisted_pair_cost_per_gb", "links", float, optional=True, default=0.0)
    tier_matrix = r.get(links, "tier_cost_per_gb", "links", list, optional=True)
    W = len(workers)
    tiers = np.array([w.tier for w in workers])
    price = np.full((W, W), float(unlisted))
    src_price = {s: np.full(W, float(unlisted)) for s in sources}
    if tier_matrix is not None:
        tm = _tier_matrix(r, tier_matrix, num_tiers)
        price = tm[tiers][:, tiers].copy()
        for s, src in sources.items():
            src_price[s] = tm[src.tier][tiers].copy()
    for i, row in enumerate(r.get(links, "worker_to_worker_cost_per_gb", "links", list, optional=True, default=[])):
        lp = f"links.worker_to_worker_cost_per_gb[{i}]"
        a = r.get(row, "from_worker", lp, str)
        b = r.get(row, "to_worker", lp, str)
        for key, wn in (("from_worker", a), ("to_worker", b)):
            if wn not in windex:
                raise r.fail(f"{lp}.{key}", f"no such worker '{wn}'")
        c = r.get(row, "cost_per_gb", lp, float)
        if c < 0:
            raise r.fail(f"{lp}.cost_per_gb", f"must be >= 0, got {c}")
        price[windex[a], windex[b]] = c
    for i, row in enumerate(r.get(links, "source_to_worker_cost_per_gb", "links", list, optional=True, default=[])):
        lp = f"links.source_to_worker_cost_per_gb[{i}]"
        s = r.get(row, "source", lp, str)
        if s not in sources:
            raise r.fail(f"{lp}.source", f"no such source '{s}'")
        wn = r.get(row, "worker", lp, str)
        if wn not in windex:
            raise r.fail(f"{lp}.worker", f"no such worker '{wn}'")
        c = r.get(row, "cost_per_gb", lp, float)
        if c < 0:
            raise r.fail(f"{lp}.cost_per_gb", f"must be >= 0, got {c}")
        src_price[s][windex[wn]] = c

    bandwidth = _tier_link_matrix(r, links, "tier_bandwidth_mbps", num_tiers, positive=True)
    rtt = _tier_link_matrix(r, links, "tier_rtt_ms", num_tiers, positive=False)

    # ---- accuracy -------------------------------------------------------------------------
    acc = r.get(data, "accuracy", "", dict)
    threshold = r.get(acc, "threshold", "accuracy", float)
    acc_sink = r.get(acc, "sink", "accuracy", str, optional=True, default=sink)
    if acc_sink != sink:
        raise r.fail("accuracy.sink", f"'{acc_sink}' is not the dataflow sink '{sink}'")
    profiles = _read_profiles(r, acc, ml_ops)
    end_to_end = _read_end_to_end(r, acc, ml_ops)

    problem = Problem(name=name, sources=sources, operators=ml_ops, edges=edges, sink=sink,
                      workers=workers, tier_names=tier_names, latency_ms=latency, scale=float(scale),
                      worker_price=price, source_price=src_price, threshold=float(threshold),
                      profiles=profiles, end_to_end=end_to_end, raw=data, origin=origin,
                      bandwidth_kb_s=None if bandwidth is None else bandwidth * KB_PER_S_PER_MBPS,
                      rtt_ms=rtt, by_batch=by_batch, slo=slo, latency_model=model)
    _check_accuracy_coverage(r, problem)
    _check_throughput_target(r, data, problem)
    return problem


def _machine_keys(workers_raw: list) -> dict[str, list[str]]:
    """The profiler's older keys, str((device, threads[, cpus])), to the workers they describe."""
    out: dict[str, list[str]] = {}
    for w in workers_raw:
        parts = (w.get("device"), w.get("threads"), w["cpus"]) if "cpus" in w else (w.get("device"), w.get("threads"))
        out.setdefault(str(parts), []).append(w["name"])
    return out


def _read_by_batch(r: _Reader, data: dict, ml_ops: dict[str, Operator],
                   workers: list[Worker]) -> dict[str, dict[str, dict[int, np.ndarray]]]:
    """`execution_latency_ms_by_batch`: op -> variant -> worker -> {batch size: ms per request}."""
    raw = r.get(data, "execution_latency_ms_by_batch", "", dict, optional=True, default={})
    windex = {w.name: w.index for w in workers}
    machines = _machine_keys(data.get("workers", []))
    out: dict[str, dict[str, dict[int, np.ndarray]]] = {}
    for op, per_op in raw.items():
        base = f"execution_latency_ms_by_batch.{op}"
        if op not in ml_ops:
            raise r.fail(base, f"no such ML operator '{op}'")
        r.check(per_op, base, dict)
        for variant, per_var in per_op.items():
            vpath = f"{base}.{variant}"
            if variant not in ml_ops[op].variants:
                raise r.fail(vpath, f"no such variant '{variant}'")
            r.check(per_var, vpath, dict)
            table: dict[int, np.ndarray] = {}
            for key, sizes in per_var.items():
                names = [key] if key in windex else machines.get(key)
                if not names:
                    raise r.fail(f"{vpath}.{key}", f"no such worker '{key}'")
                r.check(sizes, f"{vpath}.{key}", dict)
                for b, ms in sizes.items():
                    bp = f"{vpath}.{key}.{b}"
                    if not str(b).isdigit() or int(b) < 1:
                        raise r.fail(bp, "batch sizes are integers >= 1")
                    ms = r.check(ms, bp, float)
                    if not ms > 0:
                        raise r.fail(bp, f"latency must be > 0 ms, got {ms}")
                    arr = table.setdefault(int(b), np.full(len(workers), np.nan))
                    for n in names:
                        arr[windex[n]] = float(ms)
            out.setdefault(op, {})[variant] = table
    return out


def _read_slo(r: _Reader, data: dict, worker_names: set[str]) -> tuple[LatencySLO | None, LatencyModelSettings]:
    """`latency_slo_ms`, `latency_slo_percentile` ("p95"/"p99") and the optional `latency_model`
    block (`utilization_levels`, `max_wait_ms` choices, the runtime's `overhead_ms` per hop and the
    `service_cv` of service times)."""
    ms = r.get(data, "latency_slo_ms", "", float, optional=True)
    pct = r.get(data, "latency_slo_percentile", "", str, optional=True, default="p99")
    if pct not in PERCENTILES:
        raise r.fail("latency_slo_percentile", f"expected one of {', '.join(PERCENTILES)}, got {pct!r}")
    if ms is not None and not ms > 0:
        raise r.fail("latency_slo_ms", f"must be > 0, got {ms}")
    block = r.get(data, "latency_model", "", dict, optional=True, default={})
    levels = r.get(block, "utilization_levels", "latency_model", list, optional=True, default=list(DEFAULT_LEVELS))
    waits = r.get(block, "max_wait_ms", "latency_model", list, optional=True, default=[0.0])
    for i, u in enumerate(levels):
        u = r.check(u, f"latency_model.utilization_levels[{i}]", float)
        if not 0 < u < 1:
            raise r.fail(f"latency_model.utilization_levels[{i}]", f"must be in (0, 1), got {u}")
    for i, w in enumerate(waits):
        w = r.check(w, f"latency_model.max_wait_ms[{i}]", float)
        if w < 0:
            raise r.fail(f"latency_model.max_wait_ms[{i}]", f"must be >= 0, got {w}")
    if not levels or not waits:
        raise r.fail("latency_model", "utilization_levels and max_wait_ms need at least one value")
    overhead = r.get(block, "overhead_ms", "latency_model", float, optional=True, default=0.0)
    if overhead < 0:
        raise r.fail("latency_model.overhead_ms", f"must be >= 0, got {overhead}")
    cv = r.get(block, "service_cv", "latency_model", (float, dict), optional=True, default=0.0)
    per_worker = cv if isinstance(cv, dict) else {}
    cv = 0.0 if isinstance(cv, dict) else cv
    for name, value in [("", cv)] + list(per_worker.items()):
        where = "latency_model.service_cv" + (f".{name}" if name else "")
        value = r.check(value, where, float)
        if value < 0:
            raise r.fail(where, f"must be >= 0, got {value}")
        if name and name not in worker_names:
            raise r.fail(where, f"no such worker '{name}'")
    quota_period = r.get(block, "quota_period_ms", "latency_model", float, optional=True, default=100.0)
    if not quota_period > 0:
        raise r.fail("latency_model.quota_period_ms", f"must be > 0, got {quota_period}")
    model = LatencyModelSettings(tuple(sorted({float(u) for u in levels})), tuple(sorted({float(w) for w in waits})),
                                 float(overhead), float(cv), tuple(sorted((k, float(v)) for k, v in per_worker.items())),
                                 float(quota_period))
    return (LatencySLO(float(ms), PERCENTILES[pct]) if ms is not None else None), model


def _tier_matrix(r: _Reader, rows: list, num_tiers: int) -> np.ndarray:
    if len(rows) < num_tiers:
        raise r.fail("links.tier_cost_per_gb", f"needs {num_tiers} rows, got {len(rows)}")
    out = np.zeros((len(rows), len(rows)))
    for p, row in enumerate(rows):
        r.check(row, f"links.tier_cost_per_gb[{p}]", list)
        if len(row) != len(rows):
            raise r.fail(f"links.tier_cost_per_gb[{p}]", f"needs {len(rows)} entries, got {len(row)}")
        for q, c in enumerate(row):
            c = r.check(c, f"links.tier_cost_per_gb[{p}][{q}]", float)
            if c < 0:
                raise r.fail(f"links.tier_cost_per_gb[{p}][{q}]", f"must be >= 0, got {c}")
            out[p, q] = c
    return out


def _tier_link_matrix(r: _Reader, links: dict, key: str, num_tiers: int, positive: bool) -> np.ndarray | None:
    """An optional tier x tier matrix of link figures; null entries: unlimited (bandwidth) or 0."""
    rows = r.get(links, key, "links", list, optional=True)
    if rows is None:
        return None
    path = f"links.{key}"
    if len(rows) < num_tiers:
        raise r.fail(path, f"needs {num_tiers} rows, got {len(rows)}")
    out = np.full((len(rows), len(rows)), math.inf if positive else 0.0)
    for p, row in enumerate(rows):
        r.check(row, f"{path}[{p}]", list)
        if len(row) != len(rows):
            raise r.fail(f"{path}[{p}]", f"needs {len(rows)} entries, got {len(row)}")
        for q, v in enumerate(row):
            if v is None:
                continue
            v = r.check(v, f"{path}[{p}][{q}]", float)
            if v < 0 or (positive and v == 0):
                raise r.fail(f"{path}[{p}][{q}]", f"must be {'> 0 (null: unlimited)' if positive else '>= 0'}, got {v}")
            out[p, q] = v
    return out


def _read_profiles(r: _Reader, acc: dict, ml_ops: dict[str, Operator]) -> dict[str, OperatorProfile]:
    rows = r.get(acc, "per_operator_profiles", "accuracy", list, optional=True, default=[])
    out: dict[str, OperatorProfile] = {}
    for i, row in enumerate(rows):
        pp = f"accuracy.per_operator_profiles[{i}]"
        op = r.get(row, "operator", pp, str)
        if op not in ml_ops:
            raise r.fail(f"{pp}.operator", f"no such ML operator '{op}'")
        inputs = tuple(r.get(row, "input_operators", pp, list, optional=True, default=[]))
        for j, u in enumerate(inputs):
            if u not in ml_ops:
                raise r.fail(f"{pp}.input_operators[{j}]", f"no such ML operator '{u}'")
        variants = r.get(row, "variants", pp, dict)
        samples: dict[str, tuple] = {}
        surrogate: dict[str, float] = {}
        for vname, vrow in variants.items():
            vp = f"{pp}.variants.{vname}"
            if vname not in ml_ops[op].variants:
                raise r.fail(vp, f"no such variant '{vname}'")
            got = []
            for k, s in enumerate(r.get(vrow, "samples", vp, list)):
                sp = f"{vp}.samples[{k}]"
                ins = r.get(s, "inputs_accuracy", sp, list, optional=True, default=[])
                if len(ins) != len(inputs):
                    raise r.fail(f"{sp}.inputs_accuracy", f"expected {len(inputs)} values, got {len(ins)}")
                ins = tuple(float(r.check(x, f"{sp}.inputs_accuracy[{m}]", float)) for m, x in enumerate(ins))
                got.append((ins, float(r.get(s, "output_accuracy", sp, float))))
            if not got:
                raise r.fail(f"{vp}.samples", "no samples")
            samples[vname] = tuple(got)
            sur = r.get(vrow, "beam_search_cost_surrogate", vp, float, optional=True)
            if sur is not None:
                surrogate[vname] = float(sur)
        out[op] = OperatorProfile(op, inputs, samples, surrogate)
    return out


def _read_end_to_end(r: _Reader, acc: dict, ml_ops: dict[str, Operator]):
    table = r.get(acc, "end_to_end_table", "accuracy", list, optional=True)
    if table is None:
        return None
    ops = r.get(acc, "end_to_end_operators", "accuracy", list)
    for j, o in enumerate(ops):
        if o not in ml_ops:
            raise r.fail(f"accuracy.end_to_end_operators[{j}]", f"no such ML operator '{o}'")
    rows: dict[tuple[str, ...], float] = {}
    for i, row in enumerate(table):
        tp = f"accuracy.end_to_end_table[{i}]"
        combo = []
        for o in ops:
            v = r.get(row, o, tp, str)
            if v not in ml_ops[o].variants:
                raise r.fail(f"{tp}.{o}", f"no such variant '{v}'")
            combo.append(v)
        rows[tuple(combo)] = float(r.get(row, "end_to_end_accuracy", tp, float))
    return tuple(ops), rows


def _check_accuracy_coverage(r: _Reader, problem: Problem) -> None:
    """Every ML operator must be scored either by the end-to-end table or by its profile."""
    covered = set(problem.end_to_end[0]) if problem.end_to_end else set()
    for op in problem.operators:
        prof = problem.profiles.get(op)
        if prof is None:
            if not problem.end_to_end:
                raise r.fail("accuracy.per_operator_profiles", f"no profile for operator '{op}'")
            continue
        for v in problem.operators[op].variants:
            if v not in prof.samples and op not in covered:
                raise r.fail(f"accuracy.per_operator_profiles.{op}", f"no samples for variant '{v}'")
    if problem.end_to_end:
        ops, rows = problem.end_to_end
        others = [o for o in problem.operators if o not in ops and len(problem.operators[o].variants) > 1]
        if others:
            raise r.fail("accuracy.end_to_end_operators", f"misses operators with several variants {others}")
    if problem.sink not in problem.profiles and not problem.end_to_end:
        raise r.fail("accuracy.per_operator_profiles", f"no profile for sink '{problem.sink}'")


def _check_throughput_target(r: _Reader, data: dict, problem: Problem) -> None:
    """A stated throughput target must agree with the rule applied to the injection rates."""
    target = data.get("throughput_target")
    if not isinstance(target, dict):
        return
    stated = target.get("required_throughput_per_s")
    if not isinstance(stated, dict):
        return
    derived = problem.required_rates()
    for op, val in stated.items():
        path = f"throughput_target.required_throughput_per_s.{op}"
        if op not in derived:
            raise r.fail(path, f"no such operator '{op}'")
        val = r.check(val, path, float)
        if abs(val - derived[op]) > 1e-6 * max(1.0, abs(val)):
            raise r.fail(path, f"states {val} but the injection rates give {derived[op]}")
