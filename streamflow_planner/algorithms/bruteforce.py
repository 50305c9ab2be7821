"""`bruteforce`: the paper's lower bound (LB) by enumeration, for small infrastructures.

Enumerates every accuracy-feasible variant combination and every map of workers to operators
(each worker unused or serving one operator) whose capacities cover the rates, depth first in
topological order, pruning a branch once its worker prices alone reach the best total found.
For each complete map the continuous part (per-worker rates, per-sender routes on free edges) is
an LP solved per worker and per worker pair, independent of the MILP's aggregation:
- source edges and routed free edges are linear;
- a join edge u -> v costs sum_ab c_ab x_a x_b S / R_u; with the map fixed it is linear when all
  of u's workers see the same prices to v's workers (or all of v's workers the same prices from
  u's), or when prices are per-tier potential differences (c_ab = phi(tier b) - phi(tier a)).
  Otherwise the instance is refused. A map with traffic from a higher to a lower tier on a join is
  skipped (a worker with rate 0 in it is covered by the smaller map without it).

Under a latency SLO it also enumerates one batch setting per operator and, for each map, every
vector of per-worker utilisation levels whose latency (streamflow_planner/latency.py) meets the SLO; only
the maximal ones (no level can rise) need an LP, each worker's capacity capped at its level.
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np
from scipy.optimize import linprog

from streamflow_planner.accuracy import feasible_combinations
from streamflow_planner.costmodel import Assignment
from streamflow_planner.diagnose import infeasibility, latency_infeasibility
from streamflow_planner.errors import InfeasibleError, UnsupportedError
from streamflow_planner.latency import at_setting, batch_combinations, path_latency
from streamflow_planner.problem import Problem

MAX_WORKERS = 12


def _subsets(cap: np.ndarray, runnable: np.ndarray, rate: float, costs: np.ndarray) -> list[tuple[float, int]]:
    """Every set of runnable workers whose capacities cover `rate`, as (price, bitmask), cheapest first."""
    W = len(cap)
    masks = np.arange(1 << W, dtype=np.int64)
    bits = ((masks[:, None] >> np.arange(W)) & 1).astype(bool)
    ok_mask = ~(bits & ~runnable[None, :]).any(axis=1)
    covers = bits @ cap >= rate - 1e-9
    price = bits @ costs
    sel = np.nonzero(ok_mask & covers)[0]
    order = np.lexsort((sel, price[sel]))
    return [(float(price[sel[i]]), int(sel[i])) for i in order]


class _Prices:
    """Per-pair money/h per KB/s and a per-worker tier potential, if prices have that form."""

    def __init__(self, problem: Problem):
        W = len(problem.workers)
        self.c = np.array([[problem.link_cost_per_kb_s(a, b) for b in range(W)] for a in range(W)])
        tiers = problem.tiers
        phi = np.full(problem.num_tiers, np.nan)
        phi[tiers.min()] = 0.0
        ok = True
        for t in range(problem.num_tiers):
            for a in range(W):
                for b in range(W):
                    if tiers[a] < tiers[b] == t and not np.isnan(phi[tiers[a]]):
                        val = phi[tiers[a]] + self.c[a, b]
                        if np.isnan(phi[t]):
                            phi[t] = val
                        elif abs(phi[t] - val) > 1e-12 * max(1.0, val):
                            ok = False
        self.phi = None if (not ok or np.isnan(phi[np.unique(tiers)]).any()) else phi


def solve_bruteforce(problem: Problem, max_workers: int = MAX_WORKERS) -> Assignment:
    """The optimum by enumeration; refuses infrastructures above `max_workers` workers."""
    W = len(problem.workers)
    if W > max_workers:
        raise UnsupportedError(f"bruteforce enumerates (operators+1)^workers maps; {W} workers is "
                               f"above its limit of {max_workers}")
    if problem.has_bandwidth and any(problem.is_join(o) for o in problem.operators):
        raise UnsupportedError("bruteforce: a join's traffic against a link's bandwidth is bilinear "
                               "for a fixed map; not supported")
    if feasible_combinations(problem) and problem.slo is not None:
        best: list = [math.inf, None, None]     # cost, assignment, its batch settings
        top = max(problem.levels())
        for batch in batch_combinations(problem):
            _enumerate(at_setting(problem, batch, top), best, (problem, batch, top))
        if best[1] is None:
            raise InfeasibleError(latency_infeasibility(problem))
        best[1].batch = dict(best[2])
        return best[1]
    best = [math.inf, None]
    _enumerate(problem, best, None)
    if best[1] is None:
        raise InfeasibleError(infeasibility(problem))
    return best[1]


def _enumerate(problem: Problem, best: list, slo_ctx) -> None:
    """Depth-first search over variant combinations and maps, updating `best` in place."""
    combos = feasible_combinations(problem)
    ops = list(problem.operators)
    rates = problem.required_rates()
    costs = problem.costs
    tiers = problem.tiers
    prices = _Prices(problem)
    for combo in combos:
        variants = combo.variants
        caps = {o: problem.capacity(o, variants[o]) for o in ops}
        runnable = {}
        for o in ops:
            r = caps[o] > 0
            for e in problem.in_edges(o):
                if e.src in problem.sources:
                    r &= tiers >= problem.sources[e.src].tier
            runnable[o] = r
        options = {o: _subsets(caps[o], runnable[o], rates[o], costs) for o in ops}
        if any(not options[o] for o in ops):
            continue
        floor = {o: options[o][0][0] for o in ops}
        rest = [sum(floor[o] for o in ops[i:]) for i in range(len(ops) + 1)]
        _descend(problem, prices, variants, ops, options, rest, caps, rates, 0, 0, 0.0, {}, best, slo_ctx)


def _members(mask: int, W: int) -> list[int]:
    return [w for w in range(W) if mask >> w & 1]


def _descend(problem, prices, variants, ops, options, rest, caps, rates, i, used, spent, chosen, best,
             slo_ctx=None) -> None:
    W = len(problem.workers)
    if spent + rest[i] >= best[0] - 1e-12:
        return
    if i == len(ops):
        members = {o: _members(m, W) for o, m in chosen.items()}
        if slo_ctx is None:
            found = _rates_lp(problem, prices, variants, members, caps, rates)
        else:
            found = _within_slo(problem, prices, variants, members, caps, rates, slo_ctx)
        if found is not None and spent + found[0] < best[0] - 1e-12:
            best[0] = spent + found[0]
            best[1] = found[1]
            if slo_ctx is not None:
                best[2] = slo_ctx[1]
        return
    op = ops[i]
    tiers = problem.tiers
    for price, mask in options[op]:
        if spent + price + rest[i + 1] >= best[0] - 1e-12:
            break
        if mask & used:
            continue
        mine = _members(mask, W)
        if not _forward_only(problem, op, mine, chosen, tiers):
            continue
        chosen[op] = mask
        _descend(problem, prices, variants, ops, options, rest, caps, rates, i + 1, used | mask,
                 spent + price, chosen, best, slo_ctx)
        del chosen[op]


def _within_slo(problem, prices, variants, members, caps, rates, slo_ctx):
    """The cheapest rates over the maximal per-worker level vectors that meet the SLO."""
    original, batch, top = slo_ctx
    slo = original.slo
    levels = original.levels()
    slots = [(o, w) for o, ws in members.items() for w in ws]
    feasible = []
    for vec in product(levels, repeat=len(slots)):
        loads: dict[str, dict[int, float]] = {}
        for (o, w), u in zip(slots, vec):
            loads.setdefault(o, {})[w] = u
        if path_latency(original, variants, batch, loads, slo.percentile).ms <= slo.ms * (1 + 1e-9):
            feasible.append(vec)
    maximal = [v for v in feasible
               if not any(o != v and all(a >= b for a, b in zip(o, v)) for o in feasible)]
    best = None
    for vec in maximal:
        capped = {o: c.copy() for o, c in caps.items()}
        for (o, w), u in zip(slots, vec):
            capped[o][w] = caps[o][w] * u / top
        found = _rates_lp(problem, prices, variants, members, capped, rates)
        if found is not None and (best is None or found[0] < best[0] - 1e-12):
            best = found
    return best


def _forward_only(problem: Problem, op: str, mine: list[int], chosen: dict, tiers) -> bool:
    """Joins need every input worker at or below every join worker; free edges need a way up."""
    W = len(problem.workers)
    for e in problem.in_edges(op):
        if e.src not in chosen:
            continue
        theirs = _members(chosen[e.src], W)
        if problem.is_join(op):
            if max(tiers[theirs]) > min(tiers[mine]):
                return False
        elif max(tiers[theirs]) > max(tiers[mine]):
            return False
    return True


def _rates_lp(problem: Problem, prices: _Prices, variants, members: dict[str, list[int]], caps, rates):
    """Cheapest rates and routes for a fixed map: (communication cost, assignment) or None."""
    idx: dict[tuple, int] = {}
    lo, hi, obj = [], [], []

    def var(key, ub):
        idx[key] = len(lo)
        lo.append(0.0)
        hi.append(ub)
        obj.append(0.0)
        return idx[key]

    for o, ws in members.items():
        for w in ws:
            var(("x", o, w), float(caps[o][w]))
    eq_rows: list[dict[int, float]] = []
    eq_rhs: list[float] = []
    for o, ws in members.items():
        eq_rows.append({idx["x", o, w]: 1.0 for w in ws})
        eq_rhs.append(rates[o])
    c = prices.c
    tiers = problem.tiers
    link: dict[tuple[int, int], dict[int, float]] = {}   # (tier, tier) -> {column: KB/s per unit}

    def carries(p: int, q: int, col: int, kb: float) -> None:
        if p != q:
            row = link.setdefault((p, q), {})
            row[col] = row.get(col, 0.0) + kb
    for e in problem.edges:
        v = e.dst
        kv = variants[v]
        if e.src in problem.sources:
            size = e.size("default", kv)
            for b in members[v]:
                obj[idx["x", v, b]] += problem.source_cost_per_kb_s(e.src, b) * size
                carries(problem.sources[e.src].tier, int(tiers[b]), idx["x", v, b], size)
            continue
        u = e.src
        size = e.size(variants[u], kv)
        ru, rv = rates[u], rates[v]
        if problem.is_join(v):
            if not _join_linear(prices, members[u], members[v], obj, idx, u, v, size, ru, rv, problem):
                raise UnsupportedError(f"bruteforce: join {u}->{v} has bilinear traffic cost under "
                                       "these link prices (not per-tier potential differences)")
            continue
        pairs = [(a, b) for a, b in product(members[u], members[v]) if not math.isinf(c[a, b])]
        for a, b in pairs:
            col = var(("f", u, v, a, b), rv)
            obj[col] += c[a, b] * size
            carries(int(tiers[a]), int(tiers[b]), col, size)
        for a in members[u]:
            row = {idx["f", u, v, a, b]: 1.0 for (a2, b) in pairs if a2 == a}
            row[idx["x", u, a]] = row.get(idx["x", u, a], 0.0) - rv / ru
            eq_rows.append(row)
            eq_rhs.append(0.0)
        for b in members[v]:
            row = {idx["f", u, v, a, b]: 1.0 for (a, b2) in pairs if b2 == b}
            row[idx["x", v, b]] = row.get(idx["x", v, b], 0.0) - 1.0
            eq_rows.append(row)
            eq_rhs.append(0.0)
    a_eq = np.zeros((len(eq_rows), len(lo)))
    for r, row in enumerate(eq_rows):
        for col, val in row.items():
            a_eq[r, col] += val
    limited = [(pair, row) for pair, row in link.items() if np.isfinite(problem.link_bandwidth(*pair))]
    a_ub = np.zeros((len(limited), len(lo)))
    for r, (_pair, row) in enumerate(limited):
        for col, val in row.items():
            a_ub[r, col] = val
    b_ub = np.array([problem.link_bandwidth(*pair) for pair, _ in limited])
    res = linprog(np.array(obj), A_ub=a_ub if limited else None, b_ub=b_ub if limited else None,
                  A_eq=a_eq, b_eq=np.array(eq_rhs), bounds=list(zip(lo, hi)), method="highs")
    if res.status != 0:
        return None
    sol = res.x
    placement = {o: {problem.workers[w].name: float(sol[idx["x", o, w]]) for w in ws} for o, ws in members.items()}
    routes: dict = {}
    for key, col in idx.items():
        if key[0] == "f":
            _, u, v, a, b = key
            routes.setdefault((u, v), {}).setdefault(problem.workers[a].name, {})[problem.workers[b].name] = float(sol[col])
    return float(res.fun), Assignment(dict(variants), placement, routes)


def _join_linear(prices: _Prices, us: list[int], vs: list[int], obj, idx, u, v, size, ru, rv, problem) -> bool:
    """Add the join's traffic cost as linear terms if the fixed map allows; False if bilinear."""
    c = prices.c
    block = c[np.ix_(us, vs)]
    if np.isinf(block).any():
        return False
    if np.allclose(block, block[0:1, :]):          # price depends on the receiver only
        for j, b in enumerate(vs):
            obj[idx["x", v, b]] += size * block[0, j]
        return True
    if np.allclose(block, block[:, 0:1]):          # price depends on the sender only
        for i, a in enumerate(us):
            obj[idx["x", u, a]] += size * (rv / ru) * block[i, 0]
        return True
    if prices.phi is not None:
        tiers = problem.tiers
        for b in vs:
            obj[idx["x", v, b]] += size * prices.phi[tiers[b]]
        for a in us:
            obj[idx["x", u, a]] -= size * (rv / ru) * prices.phi[tiers[a]]
        return True
    return False
