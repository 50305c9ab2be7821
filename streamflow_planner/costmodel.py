"""Cost model and independent feasibility checker for a concrete assignment.

Works per worker and per worker pair on the raw problem data (no aggregation), so it checks the
algorithms rather than sharing their shortcuts:
- compute cost: full hourly price of every worker that serves an operator;
- source edge s->v: worker b receives x_b * S KB/s from s, priced per (s, b);
- operator edge u->v: with `routes`, sender a sends f_ab v-requests/s to b (S KB each); without
  routes (always for joins), traffic is the product of rates x_a * x_b * S / R_u KB/s;
- traffic inside a tier is free, traffic to a lower tier is not allowed;
- KB/s * 3600 / 1024^2 = GB/h, times link price per GB and the scaling factor;
- link bandwidth (links.tier_bandwidth_mbps): the traffic from one tier to another, summed over
  every edge, is at most the link's bandwidth in that direction;
- latency (streamflow_planner/latency.py): the predicted percentile at the sink at each worker's actual
  utilisation; under a latency SLO each worker is charged at the smallest planning level at or
  above its utilisation, and that bound must be at most the SLO.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from streamflow_planner.accuracy import accuracy_of
from streamflow_planner.latency import PathLatency, level_of, path_latency
from streamflow_planner.problem import BatchSetting, Problem

REL_TOL = 1e-6


@dataclass
class Assignment:
    """Variants, per-operator worker rates, and optional per-sender routing of free edges."""

    variants: dict[str, str]
    placement: dict[str, dict[str, float]]
    routes: dict[tuple[str, str], dict[str, dict[str, float]]] = field(default_factory=dict)
    batch: dict[str, BatchSetting] = field(default_factory=dict)   # chosen batching (else configured)

    def batch_of(self, problem: Problem, op: str) -> BatchSetting:
        return self.batch.get(op) or problem.default_batch(op)


@dataclass
class Evaluation:
    """Figures of an assignment as the cost model sees them."""

    compute_cost: float
    communication_cost: float
    accuracy: float
    throughput: float
    violations: list[str]
    link_traffic_kb_s: dict[tuple[int, int], float] = field(default_factory=dict)   # (tier, tier) -> KB/s
    latency: PathLatency | None = None          # predicted at the workers' actual utilisation
    latency_bound: PathLatency | None = None    # charged at the planning levels (under an SLO)

    @property
    def total_cost(self) -> float:
        return self.compute_cost + self.communication_cost

    @property
    def feasible(self) -> bool:
        return not self.violations


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= REL_TOL * max(1.0, abs(a), abs(b))


def evaluate(problem: Problem, a: Assignment, predict_latency: bool = False) -> Evaluation:
    """Cost, accuracy and throughput of an assignment, with every violated constraint listed;
    the latency prediction under an SLO (which it checks) or when asked."""
    bad: list[str] = []
    ops = problem.operators
    names = {w.name: w.index for w in problem.workers}
    required = problem.required_rates()
    served_by: dict[str, str] = {}
    rates: dict[str, dict[int, float]] = {}

    for op, spec in ops.items():
        variant = a.variants.get(op)
        if variant not in spec.variants:
            bad.append(f"{op}: unknown variant {variant!r}")
            rates[op] = {}
            continue
        cap = problem.capacity(op, variant, a.batch_of(problem, op))
        per: dict[int, float] = {}
        for wname, rate in a.placement.get(op, {}).items():
            if wname not in names:
                bad.append(f"{op}: no such worker '{wname}'")
                continue
            w = names[wname]
            if wname in served_by and served_by[wname] != op:
                bad.append(f"worker '{wname}' serves both {served_by[wname]} and {op}")
            served_by[wname] = op
            if rate < -REL_TOL:
                bad.append(f"{op}: negative rate {rate} on '{wname}'")
            if rate > cap[w] * (1 + REL_TOL) + REL_TOL:
                bad.append(f"{op}: rate {rate:.4f}/s on '{wname}' exceeds its capacity {cap[w]:.4f}/s")
            per[w] = max(rate, 0.0)
        total = sum(per.values())
        if not _close(total, required[op]):
            bad.append(f"{op}: rates add up to {total:.4f}/s, required {required[op]:.4f}/s")
        rates[op] = per
    for op in a.placement:
        if op not in ops:
            bad.append(f"placement names unknown operator '{op}'")

    compute = sum(problem.workers[names[w]].cost_per_hour for w in served_by)
    comm = 0.0
    traffic: dict[tuple[int, int], float] = defaultdict(float)
    tiers = problem.tiers
    for e in problem.edges:
        v = e.dst
        if v not in a.variants or a.variants[v] not in ops[v].variants:
            continue
        kv = a.variants[v]
        if e.src in problem.sources:
            size = e.size("default", kv)
            for b, xb in rates[v].items():
                price = problem.source_cost_per_kb_s(e.src, b)
                if xb > REL_TOL and math.isinf(price):
                    bad.append(f"{e.src}->{v}: traffic to lower-tier worker '{problem.workers[b].name}'")
                elif xb > 0:
                    comm += price * xb * size
                    traffic[problem.sources[e.src].tier, int(tiers[b])] += xb * size
            continue
        u = e.src
        if u not in a.variants or a.variants[u] not in ops[u].variants:
            continue
        size = e.size(a.variants[u], kv)
        ru = sum(rates[u].values())
        rv = sum(rates[v].values())
        route = a.routes.get((u, v))
        if route is not None:
            comm += _routed_cost(problem, e, route, rates[u], rates[v], ru, rv, size, bad, traffic)
            continue
        if ru <= 0:
            continue
        for ai, xa in rates[u].items():
            for bi, xb in rates[v].items():
                kb_s = xa * xb * size / ru
                price = problem.link_cost_per_kb_s(ai, bi)
                if math.isinf(price):
                    if xa * xb > REL_TOL:
                        bad.append(f"{u}->{v}: traffic from '{problem.workers[ai].name}' "
                                   f"to lower-tier '{problem.workers[bi].name}'")
                else:
                    comm += price * kb_s
                    traffic[int(tiers[ai]), int(tiers[bi])] += kb_s
    for (u, v) in a.routes:
        if (u, v) not in {(e.src, e.dst) for e in problem.edges}:
            bad.append(f"routes name unknown edge {u}->{v}")

    cross = {pair: kb for pair, kb in traffic.items() if pair[0] != pair[1] and kb > 0}
    for (p, q), kb in sorted(cross.items()):
        cap = problem.link_bandwidth(p, q)
        if kb > cap * (1 + REL_TOL) + REL_TOL:
            bad.append(f"link {problem.tier_names[p]}->{problem.tier_names[q]}: {kb:.1f} KB/s exceeds its "
                       f"bandwidth {cap:.1f} KB/s")
    acc = accuracy_of(problem, a.variants) if not any("unknown variant" in b for b in bad) else -math.inf
    if acc < problem.threshold - 1e-9:
        bad.append(f"accuracy {acc:.4f} below the floor {problem.threshold}")
    throughput = sum(rates.get(problem.sink, {}).values())
    wanted = predict_latency or problem.slo is not None
    latency, bound = _latency(problem, a, rates, bad) if wanted and not bad else (None, None)
    return Evaluation(compute, comm, acc, throughput, bad, cross, latency, bound)


def _latency(problem: Problem, a: Assignment, rates: dict[str, dict[int, float]],
             bad: list[str]) -> tuple[PathLatency | None, PathLatency | None]:
    """The predicted percentile; under an SLO also the planning bound, checked against it."""
    batch = {op: a.batch_of(problem, op) for op in problem.operators}
    actual: dict[str, dict[int, float]] = {}
    for op, per in rates.items():
        full = problem.capacity(op, a.variants[op], batch[op], level=1.0)
        actual[op] = {w: x / full[w] for w, x in per.items() if x > REL_TOL}
    pct = problem.slo.percentile if problem.slo else 0.99
    rounded = {op: {w: round(rho, 4) for w, rho in per.items()} for op, per in actual.items()}  # cache hits
    predicted = path_latency(problem, a.variants, batch, rounded, pct)
    if problem.slo is None:
        return predicted, None
    levels = problem.levels()
    charged: dict[str, dict[int, float]] = {}
    for op, per in actual.items():
        charged[op] = {}
        for w, rho in per.items():
            u = level_of(rho, levels)
            if u is None:
                bad.append(f"{op}: '{problem.workers[w].name}' at utilisation {rho:.3f}, above the "
                           f"highest planning level {levels[-1]}")
                return predicted, None
            charged[op][w] = u
    bound = path_latency(problem, a.variants, batch, charged, pct)
    if bound.ms > problem.slo.ms * (1 + REL_TOL):
        bad.append(f"latency {problem.slo.label} {bound.ms:.1f} ms above the SLO {problem.slo.ms:g} ms "
                   f"(critical path {' -> '.join(bound.path)})")
    return predicted, bound


def _routed_cost(problem: Problem, e, route: dict, xu: dict[int, float], xv: dict[int, float],
                 ru: float, rv: float, size: float, bad: list[str], traffic: dict) -> float:
    """Cost of an explicitly routed edge; checks that the routing moves exactly the rates."""
    u, v = e.src, e.dst
    if problem.is_join(v):
        bad.append(f"{u}->{v}: routes given for a join-by-request operator")
    names = {w.name: w.index for w in problem.workers}
    sent: dict[int, float] = {}
    got: dict[int, float] = {}
    cost = 0.0
    for sname, row in route.items():
        a = names.get(sname)
        if a is None or a not in xu:
            bad.append(f"{u}->{v}: route sender '{sname}' does not serve {u}")
            continue
        for rname, f in row.items():
            b = names.get(rname)
            if b is None or b not in xv:
                bad.append(f"{u}->{v}: route receiver '{rname}' does not serve {v}")
                continue
            if f < -REL_TOL:
                bad.append(f"{u}->{v}: negative route rate {f}")
            f = max(f, 0.0)
            sent[a] = sent.get(a, 0.0) + f
            got[b] = got.get(b, 0.0) + f
            price = problem.link_cost_per_kb_s(a, b)
            if math.isinf(price):
                if f > REL_TOL:
                    bad.append(f"{u}->{v}: route from '{sname}' to lower-tier '{rname}'")
            else:
                cost += price * f * size
                traffic[int(problem.workers[a].tier), int(problem.workers[b].tier)] += f * size
    for a, xa in xu.items():
        want = xa * rv / ru if ru > 0 else 0.0
        if not _close(sent.get(a, 0.0), want):
            bad.append(f"{u}->{v}: '{problem.workers[a].name}' routes {sent.get(a, 0.0):.4f}/s, emits {want:.4f}/s")
    for b, xb in xv.items():
        if not _close(got.get(b, 0.0), xb):
            bad.append(f"{u}->{v}: '{problem.workers[b].name}' is routed {got.get(b, 0.0):.4f}/s, serves {xb:.4f}/s")
    return cost
