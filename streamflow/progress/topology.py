"""Locations of a dataflow graph and which of them can reach each operator's inputs.

A location is where a pointstamp lives: an operator output port (capabilities held there) or an
edge (messages in flight on it). In a DAG whose edges and operators preserve epochs, "can reach"
is plain graph reachability, so each frontier is a minimum over a precomputed location set.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Either an output port (`op`, `port`) or an edge (`edge` index)."""

    op: int = -1
    port: int = -1
    edge: int = -1

    def describe(self, op_names: Sequence[str]) -> str:
        if self.edge >= 0:
            return f"edge {self.edge}"
        return f"{op_names[self.op]}.out{self.port}"


class Topology:
    """Numbered locations and the upstream location set of every operator and output port.

    `edges` are (src_op, src_port, dst_op, dst_port); the graph must be acyclic (validated by
    the graph layer before a topology is built).
    """

    def __init__(self, n_outputs: Sequence[int], n_inputs: Sequence[int],
                 edges: Sequence[tuple[int, int, int, int]]) -> None:
        self.n_ops = len(n_outputs)
        self.locations: list[Location] = []
        self.output_location: dict[tuple[int, int], int] = {}
        for op, n in enumerate(n_outputs):
            for port in range(n):
                self.output_location[(op, port)] = len(self.locations)
                self.locations.append(Location(op=op, port=port))
        self.edge_location: list[int] = []
        self.edges_into: list[list[int]] = [[] for _ in range(self.n_ops)]
        self.edges_from: list[list[int]] = [[] for _ in range(self.n_ops)]
        for index, (src, _sp, dst, _dp) in enumerate(edges):
            self.edge_location.append(len(self.locations))
            self.locations.append(Location(edge=index))
            self.edges_into[dst].append(index)
            self.edges_from[src].append(index)
        self.edges = list(edges)
        self.order = self._topological_order()
        self.upstream_of_op: list[list[int]] = [[] for _ in range(self.n_ops)]
        self.upstream_of_input: dict[tuple[int, int], list[int]] = {}
        closure: list[set[int]] = [set() for _ in range(self.n_ops)]  # locations reaching op's inputs
        for op in self.order:
            reach: set[int] = set()
            for e in self.edges_into[op]:
                src, sp, _dst, dp = edges[e]
                port_reach = closure[src] | {self.output_location[(src, sp)], self.edge_location[e]}
                self.upstream_of_input.setdefault((op, dp), [])
                self.upstream_of_input[(op, dp)] = sorted(set(self.upstream_of_input[(op, dp)]) | port_reach)
                reach |= port_reach
            closure[op] = reach
            self.upstream_of_op[op] = sorted(reach)
        self.ops_reached_by: list[list[int]] = [[] for _ in self.locations]
        for op, ups in enumerate(self.upstream_of_op):
            for loc in ups:
                self.ops_reached_by[loc].append(op)

    def _topological_order(self) -> list[int]:
        indegree = [0] * self.n_ops
        for _src, _sp, dst, _dp in self.edges:
            indegree[dst] += 1
        ready = [op for op in range(self.n_ops) if indegree[op] == 0]
        order: list[int] = []
        while ready:
            op = ready.pop(0)
            order.append(op)
            for e in self.edges_from[op]:
                dst = self.edges[e][2]
                indegree[dst] -= 1
                if indegree[dst] == 0:
                    ready.append(dst)
        if len(order) != self.n_ops:
            raise ValueError("the dataflow graph has a cycle")
        return order

    def upstream_of_output(self, op: int, port: int) -> list[int]:
        """Locations that can still produce records on output `port` of `op` (for probes)."""
        return sorted(set(self.upstream_of_op[op]) | {self.output_location[(op, port)]})
