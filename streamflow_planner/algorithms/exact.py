"""`exact`: joint model selection and worker assignment as one MILP, solved by HiGHS.

Formulation (T worker types, each a set of interchangeable workers, see streamflow_planner/groups.py;
link classes P, Q; tiers p, q; R_o the required rate of operator o):

  m[o,k]  in {0,1}   operator o runs variant k;           sum_k m[o,k] = 1
  n[o,t]  in Z+      workers of type t serving o;         sum_o n[o,t] <= |t|
  x[o,k,t] >= 0      rate o serves on type t with k;      sum_{k,t} x[o,k,t] = R_o
                     sum_k x[o,k,t] / cap(o,k,t) <= n[o,t]  (busy workers; one k is on),
                     x[o,k,t] <= min(R_o, cap * |t|) * m[o,k]
  accuracy           the variant choice is one of the combinations that meet the floor
                     (one binary per feasible combination, or one no-good row per infeasible one,
                     whichever is fewer; accuracy itself comes from streamflow_planner/accuracy.py)
  minimise           sum_t price_t(sum_o n[o,t]) + communication, price_t(N) the sum of type t's N
                     cheapest prices (convex: one variable per price, bounded by its count, filled
                     cheapest first by the LP; one price: price * n)

Communication, edge by edge (S = message size of the chosen variant pair, c = money/h per KB/s):
- source s -> v: linear, sum_t c(s, class t) * S * x[v,k,t].
- free edge u -> v (v has one input): the routing is a decision. f[P,Q,ku,kv] >= 0 is the rate
  class P of u sends to class Q of v (never to a lower tier):
      sum_{Q,kv} f = (R_v/R_u) * sum_{t in P} x[u,ku,t],   sum_{P,ku} f = sum_{t in Q} x[v,kv,t],
  cost sum c(P,Q) * S(ku,kv) * f. Exact: any class-level flow splits over the workers of both
  classes in proportion to their rates (prices are equal inside a class), and the plan writes
  these per-sender routes for the runtime.
- join edge u -> v (v joins several inputs by request): every sender a splits its traffic over
  v's workers in proportion to their rates, so traffic a -> b is x_a * x_b * S / R_u, bilinear.
  Forward traffic only means u's tiers all lie at or below v's tiers: one binary per tier
  (the cut tier c) with sum_{t in tier p} x[u,.,t] <= R_u * [p <= c] and sum_{t in tier q} x[v,.,t]
  <= R_v * [q >= c]. When class prices are potential-form, c(P,Q) = phi[q] - phi[p] for every
  forward pair (always true for two tiers with tier-uniform prices, as in JellyBean's problems;
  true for three tiers when edge->cloud = edge->hub + hub->cloud), the bilinear sum collapses:
      sum_{P,Q} (phi_Q - phi_P) X_uP X_vQ / R_u = sum_Q phi_Q X_vQ - (R_v/R_u) sum_P phi_P X_uP
  because sum_P X_uP = R_u and sum_Q X_vQ = R_v; backward pairs carry no traffic by the cut
  and same-tier pairs cost 0 = phi_q - phi_q. That is linear and exact, no McCormick needed.
  Variant-dependent S multiplies by auxiliaries g[q,ku,kv] (sum_ku g = X[v,kv,q], g <= R_v m[u,ku])
  and h[p,ku,kv] (sum_kv h = X[u,ku,p], h <= R_u m[v,kv]), exact since one ku and one kv are on.
  If prices are not potential-form, phi are the largest potentials below every price, the MILP
  optimum is a lower bound, and the reported gap compares it with the plan's true cost.

Link bandwidth (links.tier_bandwidth_mbps, KB/s per direction): for every pair of tiers p != q
with a finite bandwidth, the traffic from p to q summed over all edges is at most the bandwidth.
Source edges (S * x) and free edges (S * f) are linear, so the limit is exact there. A join's
traffic X_up X_vq S / R_u is bilinear; it is bounded by S_max X_vq (X_up <= R_u), a conservative
row, and a plan found with such a row active is not claimed optimal (see planning.py).

Everything else (worker types, capacities, rate sums, one operator per worker) is linear, so
HiGHS's optimum with a zero gap is the optimum of the cost model of streamflow_planner/costmodel.py.

Latency SLO (streamflow_planner/latency.py): rates become x[o,k,t,batch], binaries beta[o,k,batch]
sum to m[o,k], and the utilisation level is a latency budget per operator and tier (a staircase of
binaries over the latencies its settings reach, see _latency_rows), giving ell[o,q], the largest
latency a worker of o on tier q may have, and the workers n[o,t] run at the highest level it allows.
With completion times A[o] in [0, SLO], for every input u, tier p it uses (dtier[u,p] = 1) and
tier q of o:
    A[o] >= A[u] + ell[o,q] + T(p,q) (dtier[u,p] + dtier[o,q] - 1),
valid without the T term in every plan, so it cuts nothing off; A[sink] <= SLO. Workers on one
tier receive over the same links, so the maximum of these is the cost model's completion time.
Groups whose own latency plus the least the other operators on its paths need exceed the SLO are
left out, and A[o] >= A[u] + least latency of o's chosen setting tightens the relaxation; so do
x[o,.,t] <= R_o n[o,t], the per-level worker bounds and the budget cost rows (_budget_cost_rows:
an operator's workers cost at least the least whole-worker cover of its rate within its budget).
All hold for every feasible plan, so the optimum is the cost model's optimum under the SLO.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from streamflow_planner.accuracy import all_combinations
from streamflow_planner.costmodel import Assignment, evaluate
from streamflow_planner.diagnose import infeasibility, latency_infeasibility
from streamflow_planner.errors import InfeasibleError
from streamflow_planner.groups import BACKWARD, Groups, build_groups
from streamflow_planner.latency import op_worker_ms, source_transfer_ms, transfer_ms
from streamflow_planner.milp import Model
from streamflow_planner.problem import BatchSetting, Problem

TINY = 1e-9


@dataclass
class ExactInfo:
    """What HiGHS proved: objective, dual bound, gap, and whether the linearization is exact."""

    objective: float
    dual_bound: float
    status: int
    potential_exact: bool
    num_vars: int
    num_types: int
    conservative_bandwidth: bool = False    # a join's traffic was bounded, not modelled, against a link


def solve_exact(problem: Problem, time_limit: float | None = 60.0) -> tuple[Assignment, ExactInfo]:
    """Build and solve the MILP; return the decoded assignment and what was proven.

    Under an SLO it first solves without the completion-time rows (groups that cannot meet the SLO
    are still left out): a relaxation, so if its plan meets the SLO by the cost model, that plan
    is optimal for the full MILP too, and the harder model is skipped. With one ML operator the
    relaxation is the full problem."""
    if problem.slo is not None:
        a, info = _solve(problem, time_limit, latency_rows=False)   # infeasible here: infeasible
        if info.status == 0 and evaluate(problem, a).feasible:
            return a, info
    return _solve(problem, time_limit, latency_rows=problem.slo is not None)


def _solve(problem: Problem, time_limit: float | None, latency_rows: bool) -> tuple[Assignment, ExactInfo]:
    g = build_groups(problem)
    req = problem.required_rates()
    ops = list(problem.operators)
    combos = all_combinations(problem)
    ok = [c for c in combos if c.accuracy >= problem.threshold - 1e-9]
    if not ok:
        raise InfeasibleError(_why(problem))
    allowed = {o: [k for k in problem.operators[o].variants if any(c.variants[o] == k for c in ok)] for o in ops}

    mdl = Model()
    m = {o: {k: mdl.var(1.0 if len(allowed[o]) == 1 else 0.0, 1.0, integer=len(allowed[o]) > 1)
             for k in allowed[o]} for o in ops}
    for o in ops:
        if len(allowed[o]) > 1:
            mdl.row([(m[o][k], 1.0) for k in allowed[o]], 1.0, 1.0)
    _accuracy_rows(mdl, m, ops, combos, ok, allowed)

    x: dict[tuple, int] = {}                # (op, variant, type, (batch, level)) -> rate
    n: dict[tuple, int] = {}                # (op, type, level) -> workers
    ladders: dict[tuple, list[tuple[float, float]]] = {}    # under an SLO: (op, variant, type, batch) -> levels
    per_worker: dict[int, float] = {}       # rate variable -> the most one worker of its group carries
    beta = _batch_choice(mdl, problem, m, allowed)
    rest = _elsewhere(problem, g, allowed)
    for o in ops:
        ro = req[o]
        for t, members in enumerate(g.type_members):
            rep = members[0]
            if any(math.isinf(g.class_source_price[e.src][g.type_class[t]])
                   for e in problem.in_edges(o) if e.src in problem.sources):
                continue
            if latency_rows:     # one count per (op, type); the level is a staircase, see _latency_rows
                per = _ladders(problem, o, t, allowed[o], rest[o], g)
                if per:
                    n[o, t, None] = mdl.var(0, len(members), integer=True)
                for (k, bs), ladder in per.items():
                    ub = min(ro, float(problem.capacity(o, k, bs, ladder[-1][0])[rep]) * len(members))
                    x[o, k, t, (bs, None)] = var = mdl.var(0, ub)
                    per_worker[var] = float(problem.capacity(o, k, bs, ladder[-1][0])[rep])
                    ladders[o, k, t, bs] = ladder
                    _link_choice(mdl, var, ub, beta[o].get((k, bs), m[o][k]), len(beta[o]) > 1 or len(allowed[o]) > 1)
                continue
            for lvl, kcap in _useful_levels(problem, o, t, rep, allowed[o], rest[o], g):
                n[o, t, lvl] = mdl.var(0, len(members), integer=True)
                for (k, bs), c in kcap.items():
                    ub = min(ro, c * len(members))
                    x[o, k, t, (bs, lvl)] = var = mdl.var(0, ub)
                    per_worker[var] = c
                    _link_choice(mdl, var, ub, beta[o].get((k, bs), m[o][k]), len(beta[o]) > 1 or len(allowed[o]) > 1)
                # one setting runs, so the workers' busy time adds up over settings: tighter than per k
                mdl.row([(x[o, k, t, (bs, lvl)], 1.0 / c) for (k, bs), c in kcap.items()]
                        + [(n[o, t, lvl], -1.0)], -np.inf, 0.0)
        terms = [(v, 1.0) for (oo, _, _, _c), v in x.items() if oo == o]
        if not terms:
            raise InfeasibleError(_why(problem))
        mdl.row(terms, ro, ro)
        # valid: whole workers, and none carries more than the fastest can (HiGHS rarely finds it alone)
        need = math.ceil(ro / max(per_worker[v] for (oo, _, _t, _c), v in x.items() if oo == o) - 1e-9)
        mdl.row([(v, 1.0) for (oo, _t, _l), v in n.items() if oo == o], need, np.inf)
    for t in range(g.num_types):
        terms = [(var, 1.0) for (o, tt, _l), var in n.items() if tt == t]
        steps = g.price_steps(problem, t)
        if len(steps) == 1:      # one price: charge it per worker
            for var, _ in terms:
                mdl.add_obj(var, steps[0][0])
            if len(terms) > 1:
                mdl.row(terms, -np.inf, float(steps[0][1]))
        elif terms:              # the cheapest first: convex in the count, so the LP fills them in order
            mdl.row(terms + [(mdl.var(0, count, obj=price), -1.0) for price, count in steps], 0.0, 0.0)
    levels_on = _latency_rows(mdl, problem, g, x, n, m, beta, allowed, ladders) if latency_rows else {}

    flows: dict[tuple[str, str], dict] = {}
    link: dict[tuple[int, int], list[tuple[int, float]]] = {}    # (tier, tier) -> traffic terms, KB/s
    bounded: set[tuple[int, int]] = set()                         # pairs with a join's conservative terms
    for e in problem.edges:
        if e.src in problem.sources:
            _source_edge(mdl, problem, g, e, x, link)
        elif problem.is_join(e.dst):
            _join_edge(mdl, problem, g, e, x, m, allowed, req)
            bounded |= _join_traffic_bound(problem, g, e, x, allowed, link)
        else:
            flows[e.src, e.dst] = _free_edge(mdl, problem, g, e, x, allowed, req, link)
    conservative = False
    for (p, q), terms in link.items():
        cap = problem.link_bandwidth(p, q)
        if math.isfinite(cap) and terms:
            mdl.row(terms, -np.inf, cap)
            conservative = conservative or (p, q) in bounded

    res = mdl.solve(time_limit=time_limit)
    if res.x is None:
        if res.status == 2:
            raise InfeasibleError(_why(problem))
        raise InfeasibleError(f"HiGHS found no plan within the time limit ({res.message})")
    sol = res.x
    variants = {o: max(allowed[o], key=lambda k: sol[m[o][k]]) for o in ops}
    batch = {o: max(_batches(problem, o), key=lambda bs: sol[beta[o].get((variants[o], bs), m[o][variants[o]])])
             for o in ops}
    chosen_level = {key: max((lvl for lvl, w in steps if sol[w] > 0.5), default=steps[0][0])
                    for key, steps in levels_on.items()}
    placement = _decode_placement(problem, g, x, sol, variants, batch, req, chosen_level)
    routes = {key: _decode_routes(problem, g, key, f, sol, placement, req) for key, f in flows.items()}
    dual = float(getattr(res, "mip_dual_bound", res.fun) or res.fun)
    info = ExactInfo(float(res.fun), dual, int(res.status), g.potential_exact, mdl.num_vars, g.num_types,
                     conservative)
    chosen = {o: bs for o, bs in batch.items() if bs is not None}
    return Assignment(variants, placement, routes, chosen), info


def _why(problem: Problem) -> str:
    return latency_infeasibility(problem) if problem.slo is not None else infeasibility(problem)


def _levels(problem: Problem) -> list[float | None]:
    """Utilisation levels workers may be planned at; without an SLO one, `utilization` itself."""
    return list(problem.levels()) if problem.slo is not None else [None]


def _batches(problem: Problem, op: str) -> list[BatchSetting | None]:
    """Batch settings to choose from; without an SLO the configured one (None)."""
    return list(problem.batch_options(op)) if problem.slo is not None else [None]


def _worker_latency(problem: Problem, op: str, k: str, bs: BatchSetting, w: int, lvl: float) -> float:
    assert problem.slo is not None
    return op_worker_ms(problem, op, w, float(problem.service_ms(op, k, bs)[w]), bs, lvl, problem.slo.percentile)


def _group_ms(problem: Problem, o: str, k: str, t: int, bs: BatchSetting, lvl: float, g: Groups) -> float:
    """A worker of type t serving o at a level: transfer from o's sources + its own latency."""
    return _into(problem, o, k, t, g) + _worker_latency(problem, o, k, bs, g.type_members[t][0], lvl)


def _into(problem: Problem, o: str, k: str, t: int, g: Groups) -> float:
    """The transfer into a worker of type t from o's sources (0 for inputs from operators)."""
    return source_transfer_ms(problem, o, k, g.class_tier[g.type_class[t]])


def _elsewhere(problem: Problem, g: Groups, allowed) -> dict[str, float]:
    """Per operator, a lower bound on the latency every path through it spends at the other
    operators (each on its fastest type, setting and level): a group whose own latency plus
    this exceeds the SLO can carry no rate in any feasible plan, so it is left out (exact)."""
    if problem.slo is None:
        return {o: 0.0 for o in problem.operators}
    floor: dict[str, float] = {}
    for o in problem.operators:
        best = math.inf
        for t, members in enumerate(g.type_members):
            for k in allowed[o]:
                for bs in _batches(problem, o):
                    for lvl in _levels(problem):     # the least over levels: a bound at any load
                        val = _worker_latency(problem, o, k, bs, members[0], lvl)
                        best = min(best, val + _into(problem, o, k, t, g) if math.isfinite(val) else math.inf)
        floor[o] = best if math.isfinite(best) else 0.0
    before: dict[str, float] = {}
    for o in problem.operators:
        before[o] = max([before[e.src] + floor[e.src] for e in problem.in_edges(o) if e.src in problem.operators],
                        default=0.0)
    after: dict[str, float] = {}
    for o in reversed(list(problem.operators)):
        after[o] = max([after[e.dst] + floor[e.dst] for e in problem.out_edges(o)], default=0.0)
    return {o: before[o] + after[o] for o in problem.operators}


def _useful_levels(problem: Problem, o: str, t: int, rep: int, variants: list[str], rest: float,
                   g: Groups) -> list[tuple[float | None, dict]]:
    """(level, {(variant, batch): capacity}) for the settings of type t serving o, without
    completion-time rows: under an SLO only settings whose latency at the level can meet it with
    the least the rest of the path needs. A level is dropped when a higher one offers every
    setting it offers: workers moved up carry the same rates at the same charge (exact)."""
    out: list[tuple[float | None, dict]] = []
    for lvl in _levels(problem):
        kcap = {}
        for k in variants:
            for bs in _batches(problem, o):
                c = float(problem.capacity(o, k, bs, lvl)[rep])
                if c > 0 and (problem.slo is None or rest + _group_ms(problem, o, k, t, bs, lvl, g)
                              <= problem.slo.ms + 1e-9):
                    kcap[k, bs] = c
        if kcap:
            out.append((lvl, kcap))
    return [(lvl, kcap) for i, (lvl, kcap) in enumerate(out)
            if not any(set(kcap) <= set(hi) for _l, hi in out[i + 1:])]


def _ladders(problem: Problem, o: str, t: int, variants: list[str], rest: float,
             g: Groups) -> dict[tuple, list[tuple[float, float]]]:
    """Per setting (variant, batch) of type t serving o, the levels it may run at, lowest first,
    with the worker's latency there: those whose latency plus the least the rest of the path
    needs meets the SLO (latency grows with the level, so they are a prefix of the levels)."""
    assert problem.slo is not None
    rep = g.type_members[t][0]
    out: dict[tuple, list[tuple[float, float]]] = {}
    for k in variants:
        for bs in _batches(problem, o):
            ladder: list[tuple[float, float]] = []
            for lvl in _levels(problem):
                lat = max([_worker_latency(problem, o, k, bs, rep, lvl)] + [v for _l, v in ladder])
                if (float(problem.capacity(o, k, bs, lvl)[rep]) <= 0
                        or rest + _into(problem, o, k, t, g) + lat > problem.slo.ms + 1e-9):
                    break
                ladder.append((lvl, lat))
            if ladder:
                out[k, bs] = ladder
    return out


def _paths(problem: Problem, limit: int = 256) -> list[list[str]]:
    """The operator chains from the sources to the sink (none if there are more than `limit`)."""
    out: list[list[str]] = []
    todo = [[e.dst] for s in problem.sources for e in problem.out_edges(s)]
    while todo:
        path = todo.pop()
        if path[-1] == problem.sink:
            out.append(path)
            if len(out) > limit:
                return []
        todo.extend(path + [e.dst] for e in problem.out_edges(path[-1]))
    return out


def _links_delay(problem: Problem) -> bool:
    """Whether any forward link between tiers (or inside one) adds a round trip or a transfer."""
    tiers = range(problem.num_tiers)
    return any(transfer_ms(problem, p, q, 1.0) > 0 for p in tiers for q in tiers if p <= q)


def _link_choice(mdl: Model, var: int, ub: float, choice: int, needed: bool) -> None:
    """A rate can be non-zero only with its (variant, batch) chosen."""
    if needed:
        mdl.row([(var, 1.0), (choice, -ub)], -np.inf, 0.0)


def _batch_choice(mdl: Model, problem: Problem, m, allowed) -> dict[str, dict]:
    """beta[op][(variant, batch)] in {0,1}, summing to m[op][variant]; empty with one batch option."""
    beta: dict[str, dict] = {}
    for o in problem.operators:
        options = _batches(problem, o)
        beta[o] = {}
        if len(options) < 2:
            continue
        for k in allowed[o]:
            beta[o].update({(k, bs): mdl.var(0, 1, integer=True) for bs in options})
            mdl.row([(beta[o][k, bs], 1.0) for bs in options] + [(m[o][k], -1.0)], 0.0, 0.0)
    return beta


def _latency_rows(mdl: Model, problem: Problem, g: Groups, x, n, m, beta, allowed,
                  ladders: dict[tuple, list[tuple[float, float]]]) -> dict[tuple, list[tuple[float, int]]]:
    """Levels as latency budgets, completion times A[op], and the path rows; returns, per
    (op, variant, type, batch), its levels with the budget step that allows each.

    Budgets: per operator o and tier q (one for all tiers when no link has a delay), the distinct
    latencies L_1 < ... < L_J its settings reach on q's types and levels get staircase binaries
    w_1 >= ... >= w_J (w_j = 1: o may spend L_j on q; w_1: o uses q), and
    ell[o,q] = sum_j (L_j - L_{j-1}) w_j, the largest latency allowed. A worker count
    n[o,t] (integer) and, per setting s and level l, y[o,s,t,l] <= n[o,t] and
    y <= |t| w_{j(L(o,s,t,l))} give the rate bound
        x[o,s,t] <= (1000 / ms) sum_l (l - l_prev) y[o,s,t,l],
    which at 0/1 budgets is n workers at the highest level the budget allows (y = n up to it, 0
    above: the latency grows with the level). Every worker of a type then runs at that one level,
    which loses no optimum: at a higher level within the budget a worker carries at least as much
    at the same price and the budget already covers its latency. So ell[o,q] is at least the
    latency of every worker in use on q, as the cost model's maximum. All workers on a tier
    receive over the same links, so o completes at
        A[o] = max over inputs u, tiers p of u and q of o of  A[u] + T(p,q) + ell[o,q],
    the cost model's value; the row keeps T(p,q) only when both tiers are in use:
        A[o] >= A[u] + ell[o,q] + T(p,q) (dtier[u,p] + dtier[o,q] - 1),
    valid otherwise because A[o] >= A[u] + ell[o,q] holds in every plan. T = round trip +
    size / bandwidth with the size linear in the variant binaries; the product with the binaries
    is linearised with the largest size as M (small: a transfer, not the SLO). A[sink] <= SLO.
    Valid rows A[o] >= A[u] + the least latency of o's chosen setting tighten the relaxation.
    Against one binary per (op, type, level), the staircase needs one integer per (op, type) and
    its branches are budget thresholds ("o spends at least L_j"), which HiGHS closes far faster."""
    slo = problem.slo
    assert slo is not None
    ops = list(problem.operators)
    req = problem.required_rates()
    done = {o: mdl.var(0.0, slo.ms) for o in ops}
    delays = _links_delay(problem)
    tier_of = {t: g.class_tier[g.type_class[t]] for t in range(g.num_types)}
    values: dict[tuple, set[float]] = {}
    for (o, k, t, bs), ladder in ladders.items():
        values.setdefault((o, tier_of[t] if delays else None), set()).update(round(v, 9) for _l, v in ladder)
    step: dict[tuple, dict[float, int]] = {}
    dtier: dict[tuple, int] = {}
    ell: dict[tuple, int] = {}
    for key, vals in sorted(values.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        ordered = sorted(vals)
        ws = [mdl.var(0, 1, integer=True) for _ in ordered]
        if not delays:                # one budget for the operator, and it must run somewhere
            mdl.lb[ws[0]] = 1.0
        for hi, lo in zip(ws[1:], ws):
            mdl.row([(hi, 1.0), (lo, -1.0)], -np.inf, 0.0)
        ell[key] = mdl.var(0.0, ordered[-1])
        mdl.row([(ell[key], 1.0)] + [(w, -(v - prev)) for w, v, prev in zip(ws, ordered, [0.0] + ordered)],
                0.0, 0.0)
        step[key] = dict(zip(ordered, ws))
        dtier[key] = ws[0]
    levels_on: dict[tuple, list[tuple[float, int]]] = {}
    for (o, k, t, bs), ladder in ladders.items():
        key, size = (o, tier_of[t] if delays else None), float(len(g.type_members[t]))
        unit = float(problem.capacity(o, k, bs, 1.0)[g.type_members[t][0]])
        terms, prev = [(x[o, k, t, (bs, None)], 1.0 / unit)], 0.0
        levels_on[o, k, t, bs] = []
        for lvl, lat in ladder:
            w = step[key][round(lat, 9)]
            # no more workers than carry all of R_o at this level: a plan with more runs the same
            # rates on fewer at the same level and price each, so no optimum is lost
            cap = min(size, math.ceil(req[o] / (unit * lvl) - 1e-9))
            y = mdl.var(0.0, cap)
            mdl.row([(y, 1.0), (n[o, t, None], -1.0)], -np.inf, 0.0)
            mdl.row([(y, 1.0), (w, -cap)], -np.inf, 0.0)
            terms.append((y, -(lvl - prev)))
            prev = lvl
            levels_on[o, k, t, bs].append((lvl, w))
        mdl.row(terms, -np.inf, 0.0)
    for (o, t, _l), count in n.items():     # a type that carries rate has a whole worker: x <= R n
        mdl.row([(v, 1.0) for (oo, _k, tt, _c), v in x.items() if oo == o and tt == t]
                + [(count, -req[o])], -np.inf, 0.0)

    least: dict[tuple, float] = {}      # (o, k, batch) -> least latency on any type and level
    for (o, k, t, bs), ladder in ladders.items():
        val = _into(problem, o, k, t, g) + ladder[0][1]
        least[o, k, bs] = min(least.get((o, k, bs), math.inf), val)
    for o in ops:
        lb = [(beta[o].get((k, bs), m[o][k]), -val) for (oo, k, bs), val in least.items() if oo == o]
        for e in problem.in_edges(o):
            up = [] if e.src in problem.sources else [(done[e.src], -1.0)]
            mdl.row([(done[o], 1.0)] + up + lb, 0.0, np.inf)
            if not delays:
                mdl.row([(done[o], 1.0), (ell[o, None], -1.0)] + up, 0.0, np.inf)
    if not delays:
        for path in _paths(problem):      # the same bound as knapsack rows over the steps: HiGHS cuts them
            mdl.row([(ell[o, None], 1.0) for o in path], -np.inf, slo.ms)
        _budget_cost_rows(mdl, problem, g, n, ladders, step, req)
        return levels_on

    pair: dict[tuple, int] = {}

    def size_terms(e) -> tuple[float, list[tuple[int, float]]]:
        """The edge's message size as a constant plus terms in the variant binaries."""
        if e.src in problem.sources:
            sizes = {kv: e.size("default", kv) for kv in allowed[e.dst]}
            if len(set(sizes.values())) == 1:
                return next(iter(sizes.values())), []
            return 0.0, [(m[e.dst][kv], s) for kv, s in sizes.items()]
        sizes = {(ku, kv): e.size(ku, kv) for ku in allowed[e.src] for kv in allowed[e.dst]}
        if len(set(sizes.values())) == 1:
            return next(iter(sizes.values())), []
        out = []
        for (ku, kv), s in sizes.items():
            key = (e.src, e.dst, ku, kv)
            if key not in pair:     # pi >= m_u + m_v - 1: 1 for the chosen pair, pushed to 0 elsewhere
                pair[key] = mdl.var(0.0, 1.0)
                mdl.row([(pair[key], 1.0), (m[e.src][ku], -1.0), (m[e.dst][kv], -1.0)], -1.0, np.inf)
            out.append((pair[key], s))
        return 0.0, out

    for o in ops:
        for e in problem.in_edges(o):
            size0, sterms = size_terms(e)
            s_max = size0 + sum(sz for _, sz in sterms)
            source = e.src in problem.sources
            senders = [problem.sources[e.src].tier] if source else sorted({p for (u, p) in dtier if u == e.src})
            for (oo, q), dq in dtier.items():
                if oo != o:
                    continue
                for p in senders:
                    if p > q:
                        continue
                    const = transfer_ms(problem, p, q, 0.0)
                    per_kb = transfer_ms(problem, p, q, 1.0) - const
                    # A[o] - A[u] - ell - const (du + dq) - per_kb S - per_kb s_max (du + dq) >= -const - 2 per_kb s_max
                    # (one binary fewer for a source: its tier is always in use)
                    both = [(dq, -(const + per_kb * s_max))]
                    rhs = -per_kb * s_max
                    if not source:
                        both.append((dtier[e.src, p], -(const + per_kb * s_max)))
                        rhs -= const + per_kb * s_max
                    terms = [(done[o], 1.0), (ell[o, q], -1.0)] + both
                    terms += [(v, -per_kb * sz) for v, sz in sterms]
                    if not source:
                        terms.append((done[e.src], -1.0))
                    mdl.row(terms, rhs + per_kb * size0, np.inf)
    return levels_on


def _budget_cost_rows(mdl: Model, problem: Problem, g: Groups, n, ladders, step, req) -> None:
    """Per operator, its workers cost at least what it needs alone within its budget:
        sum_t p_t n[o,t] >= f(L_1) - sum_{j>=2} (f(L_{j-1}) - f(L_j)) w_j,
    f(L) the least cost of whole workers (each at the cheapest price p_t of its type) that carry
    R_o at the highest level each type reaches within latency L, for the cheapest setting, other
    operators' needs ignored. Exact: in every plan the workers of o form such a cover at its
    budget, and at 0/1 budgets the right side is f(that budget), so no plan is cut off. The linear
    relaxation otherwise buys fractions of workers at a fraction of a budget; this row makes it
    pay each budget's rounding to whole workers (vehicle, 100 workers, F = 4: HiGHS 5.6 s -> 0.45 s)."""
    for (o, _q), steps in step.items():
        ordered = sorted(steps)
        price = {t: g.price_steps(problem, t)[0][0] for (oo, t, _l) in n if oo == o}
        per_setting: dict[tuple, list] = {}
        for (oo, k, t, bs), ladder in ladders.items():
            if oo == o:
                unit = float(problem.capacity(o, k, bs, 1.0)[g.type_members[t][0]])
                per_setting.setdefault((k, bs), []).append((t, unit, ladder))
        cost = []
        for budget in ordered:
            best = math.inf
            for groups in per_setting.values():
                items = []
                for t, unit, ladder in groups:
                    lvl = max((lv for lv, lat in ladder if round(lat, 9) <= budget), default=None)
                    if lvl is not None:
                        items.append((price[t], unit * lvl, len(g.type_members[t])))
                best = min(best, least_cover(req[o], items))
            cost.append(best)
        first = next((j for j, c in enumerate(cost) if math.isfinite(c)), None)
        if first is None:
            continue
        mdl.lb[steps[ordered[first]]] = 1.0       # a smaller budget cannot carry R_o at all
        terms = [(n[o, t, None], p) for t, p in price.items()]
        terms += [(steps[ordered[j]], cost[j - 1] - cost[j]) for j in range(first + 1, len(ordered))]
        mdl.row(terms, cost[first], np.inf)


def least_cover(rate: float, items: list[tuple[float, float, int]]) -> float:
    """The least cost of whole workers (price, capacity, how many there are) whose capacities add
    up to `rate` (to 1e-6 of it, so never above the true least): depth first over the items by
    price per capacity, pruned by that ratio's bound on what is left (a few types, few workers)."""
    items = sorted((it for it in items if it[1] > 0), key=lambda it: it[0] / it[1])
    best = math.inf
    slack = 1e-6 * max(1.0, rate)

    def dive(i: int, left: float, spent: float) -> None:
        nonlocal best
        if left <= slack:
            best = min(best, spent)
            return
        if i == len(items) or spent + left * items[i][0] / items[i][1] >= best:
            return
        price, cap, count = items[i]
        for k in range(min(count, math.ceil((left - slack) / cap)), -1, -1):
            dive(i + 1, left - k * cap, spent + k * price)

    dive(0, rate, 0.0)
    return best


def _accuracy_rows(mdl: Model, m, ops, combos, ok, allowed) -> None:
    """Restrict the variant choice to combinations that meet the accuracy floor."""
    multi = [o for o in ops if len(allowed[o]) > 1]
    if not multi:
        return
    ok_keys = {tuple(c.variants[o] for o in multi) for c in ok}
    space = {tuple(c.variants[o] for o in multi) for c in combos
             if all(c.variants[o] in allowed[o] for o in multi)}
    bad = space - ok_keys
    if not bad:
        return
    if len(bad) <= len(ok_keys):
        for key in sorted(bad):
            mdl.row([(m[o][k], 1.0) for o, k in zip(multi, key)], -np.inf, len(multi) - 1.0)
        return
    pick = {key: mdl.var(0, 1, integer=True) for key in sorted(ok_keys)}
    mdl.row([(s, 1.0) for s in pick.values()], 1.0, 1.0)
    for o_i, o in enumerate(multi):
        for k in allowed[o]:
            terms = [(s, 1.0) for key, s in pick.items() if key[o_i] == k]
            mdl.row(terms + [(m[o][k], -1.0)], 0.0, 0.0)


def _source_edge(mdl: Model, problem: Problem, g: Groups, e, x, link) -> None:
    p = problem.sources[e.src].tier
    for (o, k, t, _c), var in x.items():
        if o != e.dst:
            continue
        price = g.class_source_price[e.src][g.type_class[t]]
        mdl.add_obj(var, price * e.size("default", k))
        q = g.class_tier[g.type_class[t]]
        if q != p and problem.has_bandwidth:
            link.setdefault((p, q), []).append((var, e.size("default", k)))


def _join_traffic_bound(problem: Problem, g: Groups, e, x, allowed, link) -> set[tuple[int, int]]:
    """Conservative: whatever v receives on tier q may all have come from any lower tier p."""
    touched: set[tuple[int, int]] = set()
    if not problem.has_bandwidth:
        return touched
    u, v = e.src, e.dst
    tiers_u = {g.class_tier[g.type_class[t]] for (o, _, t, _c) in x if o == u}
    for (o, k, t, _c), var in x.items():
        if o != v:
            continue
        q = g.class_tier[g.type_class[t]]
        worst = max(e.size(ku, k) for ku in allowed[u])
        for p in tiers_u:
            if p < q:
                link.setdefault((p, q), []).append((var, worst))
                touched.add((p, q))
    return touched


def _tier_sum(g: Groups, x, op: str, tier: int) -> list[tuple[int, float]]:
    return [(v, 1.0) for (o, _, t, _c), v in x.items() if o == op and g.class_tier[g.type_class[t]] == tier]


def _join_edge(mdl: Model, problem: Problem, g: Groups, e, x, m, allowed, req) -> None:
    """Product-of-rates traffic of a join, linear through tier potentials and a cut tier."""
    u, v = e.src, e.dst
    ru, rv = req[u], req[v]
    tiers_u = sorted({g.class_tier[g.type_class[t]] for (o, _, t, _c) in x if o == u})
    tiers_v = sorted({g.class_tier[g.type_class[t]] for (o, _, t, _c) in x if o == v})
    tiers = sorted(set(tiers_u) | set(tiers_v))
    if len(tiers) > 1:
        theta = {c: mdl.var(0, 1, integer=True) for c in tiers}
        mdl.row([(th, 1.0) for th in theta.values()], 1.0, 1.0)
        for p in tiers_u:
            mdl.row(_tier_sum(g, x, u, p) + [(theta[c], -ru) for c in tiers if c >= p], -np.inf, 0.0)
        for q in tiers_v:
            mdl.row(_tier_sum(g, x, v, q) + [(theta[c], -rv) for c in tiers if c <= q], -np.inf, 0.0)
    phi = g.phi
    sizes = {(ku, kv): e.size(ku, kv) for ku in allowed[u] for kv in allowed[v]}
    if len(set(sizes.values())) == 1:
        s = next(iter(sizes.values()))
        for (o, k, t, _c), var in x.items():
            tier = g.class_tier[g.type_class[t]]
            if o == v:
                mdl.add_obj(var, s * phi[tier])
            elif o == u:
                mdl.add_obj(var, -s * (rv / ru) * phi[tier])
        return
    for q in tiers_v:
        for kv in allowed[v]:
            gs = {ku: mdl.var(0, rv, obj=sizes[ku, kv] * phi[q]) for ku in allowed[u]}
            xs = [(var, -1.0) for (o, k, t, _c), var in x.items()
                  if o == v and k == kv and g.class_tier[g.type_class[t]] == q]
            mdl.row([(gv, 1.0) for gv in gs.values()] + xs, 0.0, 0.0)
            for ku, gv in gs.items():
                mdl.row([(gv, 1.0), (m[u][ku], -rv)], -np.inf, 0.0)
    for p in tiers_u:
        for ku in allowed[u]:
            hs = {kv: mdl.var(0, ru, obj=-sizes[ku, kv] * (rv / ru) * phi[p]) for kv in allowed[v]}
            xs = [(var, -1.0) for (o, k, t, _c), var in x.items()
                  if o == u and k == ku and g.class_tier[g.type_class[t]] == p]
            mdl.row([(hv, 1.0) for hv in hs.values()] + xs, 0.0, 0.0)
            for kv, hv in hs.items():
                mdl.row([(hv, 1.0), (m[v][kv], -ru)], -np.inf, 0.0)


def _free_edge(mdl: Model, problem: Problem, g: Groups, e, x, allowed, req, link) -> dict:
    """Transportation between the classes of u and v; the routes are decisions."""
    u, v = e.src, e.dst
    ratio = req[v] / req[u]
    cls_u = sorted({g.type_class[t] for (o, _, t, _c) in x if o == u})
    cls_v = sorted({g.type_class[t] for (o, _, t, _c) in x if o == v})
    flows: dict[tuple[int, int, str, str], int] = {}
    for P in cls_u:
        for Q in cls_v:
            price = g.class_price[P, Q]
            if price == BACKWARD:
                continue
            p, q = g.class_tier[P], g.class_tier[Q]
            for ku in allowed[u]:
                for kv in allowed[v]:
                    flows[P, Q, ku, kv] = mdl.var(0, req[v], obj=price * e.size(ku, kv))
                    if p != q and problem.has_bandwidth:
                        link.setdefault((p, q), []).append((flows[P, Q, ku, kv], e.size(ku, kv)))
    for P in cls_u:
        for ku in allowed[u]:
            terms = [(f, 1.0) for (p, _, k, _), f in flows.items() if p == P and k == ku]
            terms += [(var, -ratio) for (o, k, t, _c), var in x.items() if o == u and k == ku and g.type_class[t] == P]
            mdl.row(terms, 0.0, 0.0)
    for Q in cls_v:
        for kv in allowed[v]:
            terms = [(f, 1.0) for (_, q, _, k), f in flows.items() if q == Q and k == kv]
            terms += [(var, -1.0) for (o, k, t, _c), var in x.items() if o == v and k == kv and g.type_class[t] == Q]
            mdl.row(terms, 0.0, 0.0)
    return flows


def _decode_placement(problem: Problem, g: Groups, x, sol, variants, batch, req,
                      chosen_level: dict) -> dict[str, dict[str, float]]:
    """Turn (type, level) rates into named workers, each group filled evenly within its level,
    the cheapest members of a type first (under an SLO the level is the staircase's)."""
    used = [0] * g.num_types
    placement: dict[str, dict[str, float]] = {}
    for o in problem.operators:
        k, bs = variants[o], batch[o]
        per_group = {(t, chosen_level.get((o, k, t, bs), c[1])): sol[var]
                     for (oo, kk, t, c), var in x.items()
                     if oo == o and kk == k and c[0] == bs and sol[var] > TINY * req[o]}
        total = sum(per_group.values())
        out: dict[str, float] = {}
        for (t, lvl), rate in sorted(per_group.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0.0)):
            rate *= req[o] / total
            cap = float(problem.capacity(o, k, bs, lvl)[g.type_members[t][0]])
            count = max(1, math.ceil(rate / cap - 1e-7))
            members = g.type_members[t][used[t]:used[t] + count]
            used[t] += len(members)
            for w in members:
                out[problem.workers[w].name] = float(rate / len(members))
        placement[o] = out
    return placement


def _decode_routes(problem: Problem, g: Groups, edge: tuple[str, str], flows: dict, sol, placement,
                   req) -> dict[str, dict[str, float]]:
    """Split class-level flows over workers in proportion to their rates, then balance exactly."""
    u, v = edge
    idx = {w.name: w.index for w in problem.workers}
    cls = {name: g.type_class[g.type_of[idx[name]]] for name in list(placement[u]) + list(placement[v])}
    senders = list(placement[u])
    receivers = list(placement[v])
    ratio = req[v] / req[u]
    class_flow: dict[tuple[int, int], float] = {}
    for (P, Q, ku, kv), var in flows.items():
        class_flow[P, Q] = class_flow.get((P, Q), 0.0) + sol[var]
    xu = {a: placement[u][a] for a in senders}
    xv = {b: placement[v][b] for b in receivers}
    tot_u: dict[int, float] = {}
    tot_v: dict[int, float] = {}
    for a, r in xu.items():
        tot_u[cls[a]] = tot_u.get(cls[a], 0.0) + r
    for b, r in xv.items():
        tot_v[cls[b]] = tot_v.get(cls[b], 0.0) + r
    mat = np.zeros((len(senders), len(receivers)))
    for i, a in enumerate(senders):
        for j, b in enumerate(receivers):
            f = class_flow.get((cls[a], cls[b]), 0.0)
            if f > 0 and problem.link_cost_per_kb_s(idx[a], idx[b]) != math.inf:
                mat[i, j] = f * (xu[a] / tot_u[cls[a]]) * (xv[b] / tot_v[cls[b]])
    row_target = np.array([xu[a] * ratio for a in senders])
    col_target = np.array([xv[b] for b in receivers])
    mat = _balance(mat, row_target, col_target)
    return {a: {b: float(mat[i, j]) for j, b in enumerate(receivers) if mat[i, j] > 0}
            for i, a in enumerate(senders)}


def _balance(mat: np.ndarray, rows: np.ndarray, cols: np.ndarray, rounds: int = 200) -> np.ndarray:
    """Iterative proportional fitting: scale rows and columns until both sums match."""
    for _ in range(rounds):
        rs = mat.sum(axis=1)
        mat = mat * np.divide(rows, rs, out=np.ones_like(rows), where=rs > 0)[:, None]
        cs = mat.sum(axis=0)
        mat = mat * np.divide(cols, cs, out=np.ones_like(cols), where=cs > 0)[None, :]
        if np.allclose(mat.sum(axis=1), rows, rtol=1e-12, atol=1e-12):
            break
    return mat
