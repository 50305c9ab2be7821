"""plan.json: load, validate (every error names the field path) and turn into a graph + placement."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamflow.dataflow.graph import PARTITIONS, EdgeSpec, Graph, OperatorSpec
from streamflow.dataflow.operators.fields import as_function
from streamflow.dataflow.catalog import lookup
from streamflow.errors import GraphError, PlanError
from streamflow.jsonfile import read_json
from streamflow.recovery.settings import RecoverySettings, recovery_settings

DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


@dataclass
class WorkerPlan:
    name: str
    tier: str
    device: str = "cpu"
    cost_per_hour: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class InputPlan:
    source: str
    port: int = 0
    partition: str | None = None
    key: Any = None
    routes: dict[str, dict[str, float]] | None = None


@dataclass
class NodePlan:
    """A source, operator or sink of the plan."""

    name: str
    role: str
    kind: str
    path: str
    params: dict[str, Any]
    inputs: list[InputPlan] = field(default_factory=list)
    placement: list[tuple[str, float]] = field(default_factory=list)
    variant: str | None = None
    batch: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    name: str
    epoch_unit: str
    epoch_size: int
    workers: dict[str, WorkerPlan]
    nodes: list[NodePlan]
    expected: dict[str, Any]
    raw: dict[str, Any]
    source_path: str = "plan.json"
    speed: float | None = None
    base_dir: str = "."
    recovery: RecoverySettings = RecoverySettings(True, None)

    def resolve(self, path: str) -> str:
        """Relative paths in a plan are relative to the plan file's folder."""
        p = Path(path).expanduser()
        return str(p if p.is_absolute() else Path(self.base_dir) / p)

    def node(self, name: str) -> NodePlan:
        return next(n for n in self.nodes if n.name == name)

    def workers_used(self) -> list[str]:
        """Workers that host at least one source, operator or sink, in plan order."""
        used = {w for n in self.nodes for w, _s in n.placement}
        return [w for w in self.workers if w in used]

    def cost_per_hour(self) -> float:
        """Hourly price of the workers the plan uses (network cost is the planner's estimate)."""
        return sum(self.workers[w].cost_per_hour for w in self.workers_used())


class _Checker:
    """Small typed accessors that raise PlanError naming the field path."""

    @staticmethod
    def obj(v: Any, path: str) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise PlanError(f"{path}: expected an object, got {type(v).__name__}")
        return v

    @staticmethod
    def lst(v: Any, path: str) -> list[Any]:
        if not isinstance(v, list):
            raise PlanError(f"{path}: expected a list, got {type(v).__name__}")
        return v

    @staticmethod
    def req(d: dict[str, Any], key: str, path: str) -> Any:
        if key not in d:
            raise PlanError(f"{path}.{key}: missing")
        return d[key]

    @staticmethod
    def string(v: Any, path: str) -> str:
        if not isinstance(v, str) or not v:
            raise PlanError(f"{path}: expected a non-empty string, got {v!r}")
        return v

    @staticmethod
    def number(v: Any, path: str, minimum: float = 0.0, strict: bool = False) -> float:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < minimum or (strict and v == minimum):
            raise PlanError(f"{path}: expected a number {'>' if strict else '>='} {minimum}, got {v!r}")
        return float(v)


C = _Checker


def load_plan(path: str | Path, speed: float | None = None) -> Plan:
    """Read and validate plan.json; a PlanError names the file and the field path."""
    path = Path(path)
    raw = read_json(path, PlanError)
    try:
        return parse_plan(raw, str(path), speed, str(path.resolve().parent))
    except PlanError as exc:
        raise PlanError(f"{path}: {exc}") from None


def partition_of(edge: dict[str, Any], path: str) -> str | None:
    """An input's (or a sink's) `partition`, checked: None leaves the kind's default."""
    partition = edge.get("partition")
    if partition is not None and partition not in PARTITIONS:
        raise PlanError(f"{path}.partition: expected one of {', '.join(PARTITIONS)}, got {partition!r}")
    if partition == "hash" and "key" not in edge:
        raise PlanError(f"{path}.key: a hash partition needs a key")
    return partition


def parse_plan(raw: Any, source_path: str = "plan.json", speed: float | None = None,
               base_dir: str = ".") -> Plan:
    """Validate a plan document (without the file-name prefix on errors)."""
    doc = C.obj(raw, "plan")
    version = doc.get("version", 1)
    if version != 1:
        raise PlanError(f"version: unsupported plan version {version!r} (this streamflow reads 1)")
    name = C.string(doc.get("name", Path(source_path).stem), "name")
    epoch = C.obj(doc.get("epoch", {"unit": "frame", "size": 1}), "epoch")
    unit = epoch.get("unit", "frame")
    if unit not in ("frame", "ms"):
        raise PlanError(f"epoch.unit: expected 'frame' or 'ms', got {unit!r}")
    size = epoch.get("size", 1)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise PlanError(f"epoch.size: expected an integer >= 1, got {size!r}")

    workers: dict[str, WorkerPlan] = {}
    for i, w in enumerate(C.lst(C.req(doc, "workers", "plan"), "workers")):
        p = f"workers[{i}]"
        w = C.obj(w, p)
        wname = C.string(C.req(w, "name", p), f"{p}.name")
        if wname in workers:
            raise PlanError(f"{p}.name: worker {wname!r} is listed twice")
        device = w.get("device", "cpu")
        if not isinstance(device, str) or not DEVICE.match(device):
            raise PlanError(f"{p}.device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}")
        workers[wname] = WorkerPlan(
            wname, C.string(w.get("tier", "edge"), f"{p}.tier"), device,
            C.number(w.get("cost_per_hour", 0.0), f"{p}.cost_per_hour"),
            {k: v for k, v in w.items() if k not in ("name", "tier", "device", "cost_per_hour")})
    if not workers:
        raise PlanError("workers: a plan needs at least one worker")

    plan = Plan(name, unit, size, workers, [], C.obj(doc.get("expected", {}), "expected"), doc,
                source_path, speed, base_dir, recovery_settings(doc.get("recovery"), unit, size))
    names: dict[str, str] = {}

    def claim(node_name: str, p: str) -> None:
        if node_name in names:
            raise PlanError(f"{p}.name: {node_name!r} is already the name of {names[node_name]}")
        names[node_name] = p

    def placement_of(node: dict[str, Any], p: str, required: bool) -> list[tuple[str, float]]:
        if "placement" in node:
            out = []
            for j, pl in enumerate(C.lst(node["placement"], f"{p}.placement")):
                q = f"{p}.placement[{j}]"
                pl = C.obj(pl, q)
                wname = C.string(C.req(pl, "worker", q), f"{q}.worker")
                if wname not in workers:
                    raise PlanError(f"{q}.worker: no such worker {wname!r}")
                out.append((wname, C.number(pl.get("share", 1.0), f"{q}.share", 0.0, strict=True)))
            if not out:
                raise PlanError(f"{p}.placement: empty; place it on at least one worker")
            if len({w for w, _ in out}) != len(out):
                raise PlanError(f"{p}.placement: a worker appears twice")
            return out
        if "worker" in node:
            wname = C.string(node["worker"], f"{p}.worker")
            if wname not in workers:
                raise PlanError(f"{p}.worker: no such worker {wname!r}")
            return [(wname, 1.0)]
        if required:
            raise PlanError(f"{p}.placement: missing (give 'placement' or 'worker')")
        return []

    for i, s in enumerate(C.lst(doc.get("sources", []), "sources")):
        p = f"sources[{i}]"
        s = C.obj(s, p)
        sname = C.string(C.req(s, "name", p), f"{p}.name")
        claim(sname, p)
        kind = C.string(C.req(s, "kind", p), f"{p}.kind")
        params = {k: v for k, v in s.items() if k not in ("name", "kind", "worker", "placement", "params")}
        params.update(C.obj(s.get("params", {}), f"{p}.params"))
        plan.nodes.append(NodePlan(sname, "source", kind, p, params, [], placement_of(s, p, True)))
    if not any(n.role == "source" for n in plan.nodes):
        raise PlanError("sources: a plan needs at least one source")

    for i, o in enumerate(C.lst(C.req(doc, "operators", "plan"), "operators")):
        p = f"operators[{i}]"
        o = C.obj(o, p)
        oname = C.string(C.req(o, "name", p), f"{p}.name")
        claim(oname, p)
        kind = C.string(C.req(o, "kind", p), f"{p}.kind")
        inputs = []
        for j, inp in enumerate(C.lst(C.req(o, "inputs", p), f"{p}.inputs")):
            q = f"{p}.inputs[{j}]"
            inp = {"from": inp} if isinstance(inp, str) else C.obj(inp, q)
            partition = partition_of(inp, q)
            routes = inp.get("routes")
            if routes is not None:
                for sender, row in C.obj(routes, f"{q}.routes").items():
                    if sender not in workers:
                        raise PlanError(f"{q}.routes.{sender}: no such worker {sender!r}")
                    for receiver, rate in C.obj(row, f"{q}.routes.{sender}").items():
                        if receiver not in workers:
                            raise PlanError(f"{q}.routes.{sender}.{receiver}: no such worker {receiver!r}")
                        C.number(rate, f"{q}.routes.{sender}.{receiver}")
            port = inp.get("port", 0)
            if not isinstance(port, int) or port < 0:
                raise PlanError(f"{q}.port: expected an output port number, got {port!r}")
            inputs.append(InputPlan(C.string(C.req(inp, "from", q), f"{q}.from"), port,
                                    partition, inp.get("key"), routes))
        batch = C.obj(o.get("batch", {}), f"{p}.batch")
        if "max_size" in batch and (not isinstance(batch["max_size"], int) or batch["max_size"] < 1):
            raise PlanError(f"{p}.batch.max_size: expected an integer >= 1, got {batch['max_size']!r}")
        if "max_wait_ms" in batch:
            C.number(batch["max_wait_ms"], f"{p}.batch.max_wait_ms")
        variant = o.get("variant")
        if variant is not None:
            C.string(variant, f"{p}.variant")
        plan.nodes.append(NodePlan(oname, "operator", kind, p, C.obj(o.get("params", {}), f"{p}.params"),
                                   inputs, placement_of(o, p, True), variant, batch))

    for i, s in enumerate(C.lst(doc.get("sinks", []), "sinks")):
        p = f"sinks[{i}]"
        s = C.obj(s, p)
        sname = C.string(C.req(s, "name", p), f"{p}.name")
        claim(sname, p)
        src = C.string(C.req(s, "from", p), f"{p}.from")
        params = {k: v for k, v in s.items()
                  if k not in ("name", "kind", "from", "worker", "placement", "params", "partition", "key")}
        params.update(C.obj(s.get("params", {}), f"{p}.params"))
        params.pop("port", None)
        port = s.get("port", 0)
        if not isinstance(port, int) or port < 0:
            raise PlanError(f"{p}.port: expected an output port number, got {port!r}")
        plan.nodes.append(NodePlan(sname, "sink", s.get("kind", "jsonl"), p, params,
                                   [InputPlan(src, port, partition_of(s, p), s.get("key"))],
                                   placement_of(s, p, False)))

    by_name = {n.name: n for n in plan.nodes}
    for n in plan.nodes:
        for j, inp in enumerate(n.inputs):
            q = f"{n.path}.inputs[{j}].from" if n.role != "sink" else f"{n.path}.from"
            up = by_name.get(inp.source)
            if up is None or up.role == "sink":
                raise PlanError(f"{q}: no such operator or source {inp.source!r}")
        if n.role == "sink" and not n.placement:
            n.placement = [by_name[n.inputs[0].source].placement[0][:1] + (1.0,)]
    return plan


def _default_partition(node: NodePlan, kind: Any, port: int) -> tuple[str, Any]:
    """Keyed kinds hash on their key so equal keys meet; everything else splits by share."""
    key = kind.partition_key(node.params, port) if kind.partition_key is not None else None
    return ("hash", key) if key is not None else ("weighted", None)


def build_graph(plan: Plan) -> tuple[Graph, dict[str, list[tuple[str, float]]]]:
    """The plan's dataflow as a validated Graph and its placement; PlanErrors name field paths."""
    try:
        return _build_graph(plan)
    except PlanError as exc:
        raise PlanError(f"{plan.source_path}: {exc}") from None


def _build_graph(plan: Plan) -> tuple[Graph, dict[str, list[tuple[str, float]]]]:
    graph = Graph()
    placement: dict[str, list[tuple[str, float]]] = {}
    kinds = {}
    for n in plan.nodes:
        kind = kinds[n.name] = lookup(n.kind, n.role, f"{n.path}.kind")
        params = dict(n.params)
        if n.variant is not None:
            params.setdefault("variant", n.variant)
        if n.batch:
            params.setdefault("batch", n.batch)
        factory = kind.build(params, f"{n.path}.params" if n.role == "operator" else n.path, plan)
        n_inputs = len(n.inputs) if kind.inputs < 0 else kind.inputs
        if n.role == "operator" and len(n.inputs) != n_inputs:
            raise PlanError(f"{n.path}.inputs: kind {n.kind!r} takes {n_inputs} input"
                            f"{'s' * (n_inputs != 1)}, got {len(n.inputs)}")
        n_outputs = kind.outputs if kind.outputs >= 0 else getattr(factory, "n_outputs", 1)
        graph.add_operator(OperatorSpec(n.name, n.kind, n_inputs, n_outputs, factory, params))
        placement[n.name] = n.placement
    for n in plan.nodes:
        for port, inp in enumerate(n.inputs):
            q = f"{n.path}.inputs[{port}]" if n.role != "sink" else n.path
            up = graph.operators[graph.index(inp.source)]
            if inp.port >= up.n_outputs:
                raise PlanError(f"{q}.port: {inp.source!r} has {up.n_outputs} output"
                                f"{'s' * (up.n_outputs != 1)}, no port {inp.port}")
            partition, key = inp.partition, inp.key
            if partition is None:
                partition, key = _default_partition(n, kinds[n.name], port)
            key_fn = as_function(key, f"{q}.key") if key is not None else None
            graph.add_edge(EdgeSpec(inp.source, n.name, inp.port, port, partition, key_fn, inp.routes))
    try:
        graph.validate()
    except GraphError as exc:
        raise PlanError(f"operators: {exc}") from None
    return graph, placement
