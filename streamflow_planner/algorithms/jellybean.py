"""`jellybean`: the JellyBean optimizer (Wu et al., VLDB 2022), re-implemented from its description
and the behaviour of its reference optimizer (libertyeagle/JellyBean, optimizer/):

1. Model selection: beam search over variants in reverse topological order (sink first). A
   candidate carries the minimum accuracy each not-yet-assigned operator must deliver; choosing a
   variant of an operator picks a profile sample whose output meets the requirement and passes
   the sample's input accuracies up as requirements. Candidates are ranked by the sum of the
   variants' cost surrogates (`beam_search_cost_surrogate`, else required rate x the best price
   per request/s of the variant) and the best k are kept.
2. Worker assignment ("multiple-tiers", greedy): for each topological order (at most
   MAX_ORDERS), operators are placed in that order, keeping the best k partial assignments.
   An operator may use the free workers from the highest tier of its inputs up to tier i, for
   each i; within that range the greedy prefers the lowest tier: if a single worker there can take
   the whole rate it takes the cheapest by price plus incoming traffic cost, else workers are
   taken by (price + traffic cost) per request/s, each at min(capacity, remaining rate). While
   searching, every listed link price counts (backward links included), as in the reference.
3. Each (variants, assignment) pair is then costed by the cost model (backward traffic
   forbidden) and the cheapest is returned, ties going to the more accurate variants.
Per-worker rates are the greedy's; routing is product-of-rates (no routes are written).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np

from streamflow_planner.accuracy import accuracy_of
from streamflow_planner.costmodel import Assignment, evaluate
from streamflow_planner.diagnose import infeasibility, latency_infeasibility
from streamflow_planner.errors import InfeasibleError
from streamflow_planner.latency import at_setting, batch_combinations
from streamflow_planner.problem import GB_PER_HOUR_PER_KB_PER_S, Problem

BEST_K = 10
MAX_ORDERS = 10
BEST_K_ASSIGNMENTS = 10


@dataclass
class _Candidate:
    variants: dict[str, str]
    requirements: dict[str, float]


def surrogate_cost(problem: Problem, op: str, variant: str) -> float:
    """The beam's ranking cost of a variant: the profile's surrogate or rate x best price per rate."""
    prof = problem.profiles.get(op)
    if prof is not None and variant in prof.surrogate:
        return prof.surrogate[variant]
    cap = problem.capacity(op, variant)
    ok = cap > 0
    if not ok.any():
        return math.inf
    return float(problem.required_rates()[op] * np.min(problem.costs[ok] / cap[ok]))


def beam_search(problem: Problem, best_k: int = BEST_K) -> list[dict[str, str]]:
    """Variant combinations JellyBean's model selection keeps, best first."""
    ops = list(problem.operators)
    if not all(o in problem.profiles for o in ops):
        return _beam_from_table(problem, best_k)
    graph = nx.DiGraph()
    graph.add_nodes_from(ops)
    for o in ops:
        graph.add_edges_from((u, o) for u in problem.profiles[o].inputs)
    order = list(reversed(list(nx.topological_sort(graph))))
    order.remove(problem.sink)
    order.insert(0, problem.sink)
    surrogates = {o: {k: surrogate_cost(problem, o, k) for k in problem.operators[o].variants} for o in ops}
    cands = [_Candidate({}, {problem.sink: problem.threshold})]
    for op in order:
        prof = problem.profiles[op]
        new: list[_Candidate] = []
        for cand in cands:
            need = cand.requirements.get(op, -math.inf)
            for variant in problem.operators[op].variants:
                samples = prof.samples.get(variant, ())
                good = sorted((s for s in samples if s[1] >= need), key=lambda s: (s[1], s[0]))
                if not good:
                    continue
                if not prof.inputs:
                    reqs = dict(cand.requirements)
                    reqs.pop(op, None)
                    new.append(_Candidate({**cand.variants, op: variant}, reqs))
                    continue
                for ins, _ in good:
                    reqs = dict(cand.requirements)
                    for u, acc in zip(prof.inputs, ins):
                        reqs[u] = max(reqs.get(u, -math.inf), acc)
                    reqs.pop(op, None)
                    new.append(_Candidate({**cand.variants, op: variant}, reqs))
        if not new:
            return []
        keys = list(new[0].requirements)

        def rank(c: _Candidate) -> tuple:
            cost = sum(surrogates[o][k] for o, k in c.variants.items())
            return cost, tuple(c.requirements.get(k, -math.inf) for k in keys)
        new.sort(key=rank)
        cands = new[:best_k]
    out = []
    for c in cands:
        if accuracy_of(problem, c.variants) >= problem.threshold - 1e-9 and c.variants not in out:
            out.append(c.variants)
    return out


def _beam_from_table(problem: Problem, best_k: int) -> list[dict[str, str]]:
    """Without per-operator profiles, rank the table's feasible rows by surrogate cost."""
    from streamflow_planner.accuracy import feasible_combinations
    combos = feasible_combinations(problem)
    combos.sort(key=lambda c: sum(surrogate_cost(problem, o, k) for o, k in c.variants.items()))
    return [c.variants for c in combos[:best_k]]


@dataclass
class _State:
    cost: float
    compute: float
    tier_of: dict[str, int]
    placement: dict[str, list[tuple[int, float]]]
    taken: np.ndarray


def assign_workers(problem: Problem, variants: dict[str, str]) -> list[dict[str, list[tuple[int, float]]]]:
    """JellyBean's greedy multiple-tiers worker assignment; the best partial placements, best first."""
    graph = nx.DiGraph()
    for e in problem.edges:
        graph.add_edge(e.src, e.dst)
    orders = []
    for order in nx.all_topological_sorts(graph):
        orders.append(order)
        if len(orders) >= MAX_ORDERS:
            break
    rates = problem.required_rates()
    W = len(problem.workers)
    tiers = problem.tiers
    costs = problem.costs
    gb = GB_PER_HOUR_PER_KB_PER_S
    wprice = problem.worker_price * problem.scale * gb
    sprice = {s: problem.source_price[s] * problem.scale * gb for s in problem.sources}
    caps = {o: problem.capacity(o, variants[o]) for o in problem.operators}
    best: list[_State] = []
    for order in orders:
        states = [_State(0.0, 0.0, {}, {}, np.zeros(W, dtype=bool))]
        for node in order:
            if node in problem.sources:
                for st in states:
                    st.tier_of[node] = -1
                continue
            rv = rates[node]
            cap = caps[node]
            in_edges = problem.in_edges(node)
            new: list[_State] = []
            memo: dict[tuple, list] = {}
            for st in states:
                low = max(0, max(st.tier_of[e.src] for e in in_edges))
                key = (low, tuple((o, tuple(pl)) for o, pl in sorted(st.placement.items())))
                if key not in memo:     # identical partial placements expand identically
                    memo[key] = _expand(problem, variants, node, rv, cap, st, low, in_edges, rates,
                                        tiers, costs, wprice, sprice)
                for chosen, compute, comm in memo[key]:
                    taken = st.taken.copy()
                    taken[[w for w, _ in chosen]] = True
                    new.append(_State(st.cost + compute + comm, st.compute + compute,
                                      {**st.tier_of, node: int(max(tiers[w] for w, _ in chosen))},
                                      {**st.placement, node: chosen}, taken))
            new.sort(key=lambda s: s.cost)
            states = new[:BEST_K_ASSIGNMENTS]
        best.extend(states)
        best.sort(key=lambda s: s.cost)
        best = best[:BEST_K_ASSIGNMENTS]
    return [s.placement for s in best]


def _expand(problem, variants, node, rv, cap, st, low, in_edges, rates, tiers, costs, wprice, sprice) -> list:
    """The greedy's placement of `node` for every tier range [low, i]: (chosen, compute, traffic)."""
    per_share, upstream, pairs = _incoming(problem, variants, node, rv, st, in_edges, rates, wprice, sprice)
    free = (~st.taken) & (cap > 0) & (tiers >= low)
    out: list = []
    previous = None
    for i in range(low, problem.num_tiers):
        avail = np.nonzero(free & (tiers <= i))[0]
        if previous is not None and len(avail) == len(previous[0]):
            if previous[1] is not None:
                out.append(previous[1])        # no new workers in this range: same result again
            continue
        chosen = _greedy(rv, cap, avail, tiers, costs, per_share, upstream)
        result = None
        if chosen is not None:
            ws = np.array([w for w, _ in chosen])
            xs = np.array([x for _, x in chosen])
            comm = float(per_share[ws] @ xs) + sum(float(xa @ wprice[np.ix_(a, ws)] @ xs) * k for a, xa, k in pairs)
            result = (chosen, float(costs[ws].sum()), comm)
            out.append(result)
        previous = (avail, result)
    return out


def _incoming(problem, variants, node, rv, st, in_edges, rates, wprice, sprice):
    """Search-time traffic prices into every worker: per request/s from sources, and the full
    upstream traffic from the already placed input operators (every listed price counts)."""
    W = len(problem.workers)
    per_share = np.zeros(W)
    upstream = np.zeros(W)
    pairs = []
    for e in in_edges:
        if e.src in problem.sources:
            per_share += sprice[e.src] * e.size("default", variants[node])
        else:
            size = e.size(variants[e.src], variants[node])
            a = np.array([w for w, _ in st.placement[e.src]])
            xa = np.array([x for _, x in st.placement[e.src]])
            k = size / rates[e.src]
            upstream += (xa * rv * k) @ wprice[a, :]
            pairs.append((a, xa, k))
    return per_share, upstream, pairs


def _greedy(rv, cap, avail, tiers, costs, per_share, upstream):
    """One tier range: pick workers greedily until the rate is covered (None if it cannot be)."""
    def whole(cands: np.ndarray, share: float) -> np.ndarray:
        score = costs[cands] + per_share[cands] * share + upstream[cands]
        return cands[np.lexsort((np.arange(len(cands)), cap[cands], score))]

    if len(avail) == 0:
        return None
    lowest = tiers[avail].min()
    fits = avail[(tiers[avail] == lowest) & (cap[avail] >= rv)]
    if len(fits):
        queue = whole(fits, rv)
    else:
        c = costs[avail] + per_share[avail] * cap[avail] + upstream[avail] * cap[avail] / rv
        queue = avail[np.lexsort((np.arange(len(avail)), c, c / cap[avail]))]
    chosen: list[tuple[int, float]] = []
    got = 0.0
    pos = 0
    while got < rv and pos < len(queue):
        w = int(queue[pos])
        pos += 1
        rate = rv - got if got + cap[w] > rv else float(cap[w])
        chosen.append((w, rate))
        got += rate
        if got < rv and pos < len(queue):
            left = queue[pos:]
            lowest = tiers[left].min()
            fits = left[(tiers[left] == lowest) & (cap[left] > rv - got)]
            if len(fits):
                # the reference re-scores with the remaining rate for sources but full upstream traffic
                queue, pos = whole(fits, rv - got), 0
    return chosen if got >= rv else None


def solve_jellybean(problem: Problem) -> Assignment:
    """Run model selection then worker assignment; return the cheapest feasible plan.

    Under a latency SLO, JellyBean runs once per batch setting per operator and per utilisation
    level (every worker planned to at most that share of its capacity), and the cheapest plan
    whose latency meets the SLO wins: a heuristic, as the level is the same for every worker."""
    if problem.slo is None:
        return _solve_jellybean(problem)
    best: tuple[float, Assignment] | None = None
    for batch in batch_combinations(problem):
        for level in problem.levels():
            try:
                a = _solve_jellybean(at_setting(problem, batch, level, mask=True))
            except InfeasibleError:
                continue
            a.batch = dict(batch)
            ev = evaluate(problem, a)
            if ev.feasible and (best is None or ev.total_cost < best[0] - 1e-9):
                best = (ev.total_cost, a)
    if best is None:
        raise InfeasibleError(latency_infeasibility(problem) + " (JellyBean's greedy found no plan)")
    return best[1]


def _solve_jellybean(problem: Problem) -> Assignment:
    combos = beam_search(problem)
    if not combos:
        raise InfeasibleError(infeasibility(problem))
    best: tuple[float, float, Assignment] | None = None
    for variants in combos:
        acc = accuracy_of(problem, variants)
        for placement in assign_workers(problem, variants):
            a = Assignment(dict(variants), {o: {problem.workers[w].name: float(x) for w, x in pl}
                                            for o, pl in placement.items()})
            ev = evaluate(problem, a)
            if not ev.feasible:
                continue
            key = (ev.total_cost, -acc)
            if best is None or key[0] < best[0] - 1e-9 or (abs(key[0] - best[0]) <= 1e-9 and key[1] < best[1]):
                best = (key[0], key[1], a)
    if best is None:
        raise InfeasibleError(infeasibility(problem) + " (JellyBean's greedy found no plan)")
    return best[2]
