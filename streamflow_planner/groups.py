"""Worker types and link classes: identical workers aggregated so the MILP grows with the number
of kinds of workers, not with the number of workers.

- A *link class* is a set of workers with the same tier and the same effective link prices to and
  from every worker and from every source: traffic cost depends only on the classes at both ends.
- A *worker type* is a set of workers of one link class with the same latency for every (operator,
  variant): any of them can do the work of any other. Their hourly prices may differ; a plan that
  uses N workers of a type takes its N cheapest (members are sorted by price), so the cost of N is
  the sum of the N cheapest prices: convex in N, linear with one variable per price (exact, and
  fewer integers than one type per price).
- *Tier potentials* phi: link prices are potential-form when every forward class-pair price equals
  phi[tier(b)] - phi[tier(a)]; then the product-of-rates traffic of a join is linear (see exact.py).
  Otherwise phi are shortest-path potentials, which never exceed the real prices (a lower bound).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamflow_planner.problem import Problem

BACKWARD = -1.0  # marker for a forbidden (higher tier -> lower tier) pair


@dataclass
class Groups:
    """Aggregation of workers into types and link classes, with class-pair prices."""

    type_members: list[list[int]]
    type_class: list[int]
    class_members: list[list[int]]
    class_tier: list[int]
    class_price: np.ndarray                 # C x C money/h per KB/s (BACKWARD where forbidden)
    class_source_price: dict[str, np.ndarray]   # source -> C money/h per KB/s (inf where forbidden)
    phi: np.ndarray                         # per tier
    potential_exact: bool
    type_of: np.ndarray                     # worker index -> type

    @property
    def num_types(self) -> int:
        return len(self.type_members)

    def price_steps(self, problem: Problem, t: int) -> list[tuple[float, int]]:
        """(hourly price, how many members have it), cheapest first: the cost of n workers of type t
        is the sum of the first n prices of this ladder."""
        steps: dict[float, int] = {}
        for w in self.type_members[t]:
            price = float(problem.costs[w])
            steps[price] = steps.get(price, 0) + 1
        return sorted(steps.items())


def effective_prices(problem: Problem) -> np.ndarray:
    """W x W money/h per KB/s between workers: 0 inside a tier, BACKWARD towards a lower tier."""
    tiers = problem.tiers
    scale = problem.scale * 3600.0 / 1024.0 / 1024.0
    eff = problem.worker_price * scale
    ta, tb = tiers[:, None], tiers[None, :]
    eff = np.where(tb == ta, 0.0, eff)
    return np.where(tb < ta, BACKWARD, eff)


def build_groups(problem: Problem) -> Groups:
    """Group identical workers; compute class prices and tier potentials."""
    W = len(problem.workers)
    tiers = problem.tiers
    eff = effective_prices(problem)
    src_eff = {s: np.array([problem.source_cost_per_kb_s(s, b) for b in range(W)]) for s in problem.sources}
    class_key: dict[bytes, int] = {}
    class_of = np.zeros(W, dtype=int)
    class_members: list[list[int]] = []
    for w in range(W):
        parts = [np.array([tiers[w]], dtype=float), eff[w, :], eff[:, w]]
        parts += [np.array([src_eff[s][w]]) for s in problem.sources]
        key = np.round(np.concatenate(parts), 12).tobytes()
        if key not in class_key:
            class_key[key] = len(class_members)
            class_members.append([])
        class_of[w] = class_key[key]
        class_members[class_of[w]].append(w)
    # everything a worker's latency depends on: its profile at every batch size, its service spread,
    # its CPU quota
    lat = [np.nan_to_num(problem.latency_ms[o][k], nan=-1.0) for o in problem.operators
           for k in problem.operators[o].variants]
    lat += [np.nan_to_num(ms, nan=-1.0) for o in problem.operators
            for _k, per in sorted(problem.by_batch.get(o, {}).items()) for _b, ms in sorted(per.items())]
    lat.append(np.array([problem.latency_model.cv_of(w.name) for w in problem.workers]))
    lat.append(np.array([-1.0 if w.cpus is None else w.cpus for w in problem.workers]))
    lat_mat = np.vstack(lat) if lat else np.zeros((0, W))
    type_key: dict[bytes, int] = {}
    type_members: list[list[int]] = []
    type_class: list[int] = []
    type_of = np.zeros(W, dtype=int)
    costs = problem.costs
    for w in range(W):
        key = np.concatenate([[class_of[w]], lat_mat[:, w]]).tobytes()
        if key not in type_key:
            type_key[key] = len(type_members)
            type_members.append([])
            type_class.append(int(class_of[w]))
        type_of[w] = type_key[key]
        type_members[type_key[key]].append(w)
    for members in type_members:
        members.sort(key=lambda w: (costs[w], w))
    reps = [m[0] for m in class_members]
    class_price = eff[np.ix_(reps, reps)]
    class_src = {s: src_eff[s][reps] for s in problem.sources}
    class_tier = [int(tiers[r]) for r in reps]
    phi, exact = tier_potentials(class_price, class_tier, problem.num_tiers)
    return Groups(type_members, type_class, class_members, class_tier, class_price, class_src, phi, exact, type_of)


def tier_potentials(class_price: np.ndarray, class_tier: list[int], num_tiers: int) -> tuple[np.ndarray, bool]:
    """Largest tier potentials below every forward class price; exact if they reproduce them all."""
    best = np.full((num_tiers, num_tiers), np.inf)
    for p, tp in enumerate(class_tier):
        for q, tq in enumerate(class_tier):
            if tq > tp:
                best[tp, tq] = min(best[tp, tq], class_price[p, q])
    phi = np.zeros(num_tiers)
    for q in range(num_tiers):
        cands = [phi[p] + best[p, q] for p in range(q) if np.isfinite(best[p, q])]
        phi[q] = min(cands) if cands else (phi[q - 1] if q else 0.0)
    exact = True
    for p, tp in enumerate(class_tier):
        for q, tq in enumerate(class_tier):
            if tq > tp and abs(class_price[p, q] - (phi[tq] - phi[tp])) > 1e-12 * max(1.0, class_price[p, q]):
                exact = False
    return phi, exact
