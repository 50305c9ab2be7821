"""The logical dataflow graph: named operators with numbered ports, and edges between them.

The same graph comes from the Python API or from the operators/edges part of plan.json;
`validate` turns a malformed graph into a GraphError that names the problem.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from streamflow.errors import GraphError

PARTITIONS = ("forward", "weighted", "hash", "broadcast")


@dataclass
class OperatorSpec:
    """One logical operator; `factory()` builds an instance on each worker it is placed on."""

    name: str
    kind: str
    n_inputs: int
    n_outputs: int
    factory: Callable[[], Any]
    params: dict[str, Any] = field(default_factory=dict)
    placement: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class EdgeSpec:
    """Output `src_port` of `src` feeds input `dst_port` of `dst`, partitioned as `partition`.

    `key` (a callable) partitions `hash` edges; `routes` maps sender worker -> {receiver: weight}
    for `weighted` edges whose per-sender routing the planner chose.
    """

    src: str
    dst: str
    src_port: int = 0
    dst_port: int = 0
    partition: str = "forward"
    key: Callable[[Any], Any] | None = None
    routes: dict[str, dict[str, float]] | None = None


class Graph:
    """Operators and edges, checked by `validate` before anything runs."""

    def __init__(self) -> None:
        self.operators: list[OperatorSpec] = []
        self.edges: list[EdgeSpec] = []
        self._index: dict[str, int] = {}

    def add_operator(self, spec: OperatorSpec) -> OperatorSpec:
        if spec.name in self._index:
            raise GraphError(f"operator {spec.name!r} is defined twice")
        self._index[spec.name] = len(self.operators)
        self.operators.append(spec)
        return spec

    def add_edge(self, edge: EdgeSpec) -> EdgeSpec:
        self.edges.append(edge)
        return edge

    def index(self, name: str) -> int:
        return self._index[name]

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def validate(self) -> None:
        """Raise GraphError for unknown operators, ports out of range, unfed inputs or a cycle."""
        fed: dict[tuple[str, int], int] = {}
        for i, e in enumerate(self.edges):
            where = f"edge {e.src} -> {e.dst}"
            for name in (e.src, e.dst):
                if name not in self._index:
                    raise GraphError(f"{where}: unknown operator {name!r}")
            src, dst = self.operators[self._index[e.src]], self.operators[self._index[e.dst]]
            if not 0 <= e.src_port < src.n_outputs:
                raise GraphError(f"{where}: output port {e.src_port} out of range "
                                 f"({e.src} has {src.n_outputs} output{'s' * (src.n_outputs != 1)})")
            if not 0 <= e.dst_port < dst.n_inputs:
                raise GraphError(f"{where}: input port {e.dst_port} out of range "
                                 f"({e.dst} has {dst.n_inputs} input{'s' * (dst.n_inputs != 1)})")
            if e.partition not in PARTITIONS:
                raise GraphError(f"{where}: unknown partition {e.partition!r} "
                                 f"(expected one of {', '.join(PARTITIONS)})")
            if e.partition == "hash" and e.key is None:
                raise GraphError(f"{where}: a hash partition needs a key")
            if (e.dst, e.dst_port) in fed:
                raise GraphError(f"{where}: input port {e.dst_port} of {e.dst} is already fed by "
                                 f"{self.edges[fed[(e.dst, e.dst_port)]].src} (use union)")
            fed[(e.dst, e.dst_port)] = i
        for op in self.operators:
            for port in range(op.n_inputs):
                if (op.name, port) not in fed:
                    raise GraphError(f"operator {op.name!r}: input port {port} has no incoming edge")
        g = nx.DiGraph()
        g.add_nodes_from(op.name for op in self.operators)
        g.add_edges_from((e.src, e.dst) for e in self.edges)
        try:
            cycle = nx.find_cycle(g)
        except nx.NetworkXNoCycle:
            return
        names = [u for u, _v in cycle] + [cycle[0][0]]
        raise GraphError(f"cycle: {' -> '.join(names)}")

    def port_edges(self) -> list[tuple[int, int, int, int]]:
        """Edges as (src_op, src_port, dst_op, dst_port) indices, for the progress topology."""
        return [(self._index[e.src], e.src_port, self._index[e.dst], e.dst_port) for e in self.edges]
