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

from planner.accuracy import accuracy_of
from planner.costmodel import Assignment, evaluate
from planner.diagnose import infeasibility
from planner.errors import InfeasibleError
from planner.problem import GB_PER_HOUR_PER_KB_PER_S, Problem

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
            cost = sum(surrogate_cost(problem, o, k) for o, k in c.variants.items())
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
    from planner.accuracy import feasible_combinations
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
    wprice = problem.worker_price * problem.scale
    sprice = {s: problem.source_price[s] * problem.scale for s in problem.sources}
    best: list[_State] = []
    for order in orders:
        states = [_State(0.0, 0.0, {}, {}, np.zeros(W, dtype=bool))]
        for node in order:
            if node in problem.sources:
                for st in states:
                    st.tier_of[node] = -1
                continue
            rv = rates[node]
            cap = problem.capacity(node, variants[node])
            in_edges = problem.in_edges(node)
            new: list[_State] = []
            for st in states:
                low = max(0, max(st.tier_of[e.src] for e in in_edges))
                for i in range(low, problem.num_tiers):
                    avail = [w for w in range(W) if low <= tiers[w] <= i and not st.taken[w] and cap[w] > 0]
                    chosen = _greedy(problem, variants, node, rv, cap, avail, st, in_edges, rates,
                                     tiers, costs, wprice, sprice, gb)
                    if chosen is None:
                        continue
                    comm = _search_comm(problem, variants, node, rv, chosen, st, in_edges, rates, wprice, sprice, gb)
                    compute = sum(costs[w] for w, _ in chosen)
                    taken = st.taken.copy()
                    for w, _ in chosen:
                        taken[w] = True
                    new.append(_State(st.cost + compute + comm, st.compute + compute,
                                      {**st.tier_of, node: int(max(tiers[w] for w, _ in chosen))},
                                      {**st.placement, node: chosen}, taken))
            new.sort(key=lambda s: s.cost)
            states = new[:BEST_K_ASSIGNMENTS]
        best.extend(states)
        best.sort(key=lambda s: s.cost)
        best = best[:BEST_K_ASSIGNMENTS]
    return [s.placement for s in best]


def _incoming_cost(problem, variants, node, rv, w, share, st, in_edges, rates, wprice, sprice, gb,
                   upstream_share: float) -> float:
    """Search-time traffic cost into worker w: sources at `share` req/s, operators scaled."""
    total = 0.0
    for e in in_edges:
        if e.src in problem.sources:
            total += sprice[e.src][w] * share * e.size("default", variants[node]) * gb
        else:
            size = e.size(variants[e.src], variants[node])
            ru = rates[e.src]
            for a, xa in st.placement[e.src]:
                total += wprice[a, w] * xa * rv * size / ru * upstream_share * gb
    return total


def _greedy(problem, variants, node, rv, cap, avail, st, in_edges, rates, tiers, costs, wprice, sprice, gb):
    """One tier range: pick workers greedily until the rate is covered (None if it cannot be)."""
    def whole(cands, share):
        scored = [(w, costs[w] + _incoming_cost(problem, variants, node, rv, w, share, st, in_edges,
                                                rates, wprice, sprice, gb, 1.0)) for w in cands]
        scored.sort(key=lambda s: (s[1], cap[s[0]]))
        return scored

    lowest = min((tiers[w] for w in avail), default=0)
    fits = [w for w in avail if tiers[w] == lowest and cap[w] >= rv]
    if fits:
        queue = whole(fits, rv)
    else:
        scored = []
        for w in avail:
            c = costs[w] + _incoming_cost(problem, variants, node, rv, w, cap[w], st, in_edges, rates,
                                          wprice, sprice, gb, cap[w] / rv)
            scored.append((w, c / cap[w], c))
        scored.sort(key=lambda s: (s[1], s[2]))
        queue = scored
    chosen: list[tuple[int, float]] = []
    got = 0.0
    while got < rv and queue:
        w = queue.pop(0)[0]
        rate = rv - got if got + cap[w] > rv else float(cap[w])
        chosen.append((w, rate))
        got += rate
        if got < rv:
            left = [s[0] for s in queue]
            lowest = min((tiers[w2] for w2 in left), default=0)
            fits = [w2 for w2 in left if tiers[w2] == lowest and cap[w2] > rv - got]
            if fits:
                # the reference re-scores with the remaining rate for sources but full upstream traffic
                queue = whole(fits, rv - got)
    return chosen if got >= rv else None


def _search_comm(problem, variants, node, rv, chosen, st, in_edges, rates, wprice, sprice, gb) -> float:
    """Search-time traffic cost of a placement: every listed link price, product of rates."""
    total = 0.0
    for e in in_edges:
        if e.src in problem.sources:
            size = e.size("default", variants[node])
            total += sum(sprice[e.src][w] * x * size * gb for w, x in chosen)
        else:
            size = e.size(variants[e.src], variants[node])
            ru = rates[e.src]
            for a, xa in st.placement[e.src]:
                for b, xb in chosen:
                    total += wprice[a, b] * xa * xb * size / ru * gb
    return total


def solve_jellybean(problem: Problem) -> Assignment:
    """Run model selection then worker assignment; return the cheapest feasible plan."""
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
