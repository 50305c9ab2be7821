"""End-to-end accuracy of a variant choice: the end-to-end table when it covers the choice,
otherwise propagation through the DAG of per-operator profiles.

A profile maps input accuracies to an output accuracy per variant and is monotone in each input.
Inputs that hit a sample exactly get the sample's value; for inputs between samples the safe value
is the best sample the inputs dominate (max output over samples whose every input accuracy is <=
the actual one), -inf if none.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from streamflow_planner.problem import Problem

EPS = 1e-9


def operator_accuracy(samples: tuple, inputs: tuple[float, ...]) -> float:
    """Output accuracy of one variant given its input accuracies (monotone lower envelope)."""
    best = -math.inf
    for ins, out in samples:
        if all(a <= b + EPS for a, b in zip(ins, inputs)):
            best = max(best, out)
    return best


def accuracy_of(problem: Problem, variants: dict[str, str]) -> float:
    """End-to-end accuracy at the sink for a complete variant choice (-inf if the profiles cannot tell)."""
    if problem.end_to_end is not None:
        ops, table = problem.end_to_end
        key = tuple(variants[o] for o in ops)
        if key in table:
            return table[key]
    acc: dict[str, float] = {}
    for op in problem.operators:
        prof = problem.profiles.get(op)
        if prof is None or variants[op] not in prof.samples:
            return -math.inf
        ins = tuple(acc[u] for u in prof.inputs)
        hit = prof.exact_hit(variants[op], ins)
        acc[op] = operator_accuracy(prof.samples[variants[op]], ins) if hit is None else hit
    return acc[problem.sink]


@dataclass(frozen=True)
class Combination:
    """One variant per ML operator with its end-to-end accuracy."""

    variants: dict[str, str]
    accuracy: float

    def key(self, ops: list[str]) -> tuple[str, ...]:
        return tuple(self.variants[o] for o in ops)


def all_combinations(problem: Problem) -> list[Combination]:
    """Every variant combination with its accuracy, in lexicographic order of the operators' lists."""
    def build() -> list[Combination]:
        ops = list(problem.operators)
        choices = [problem.operators[o].variants for o in ops]
        return [Combination(dict(zip(ops, combo)), accuracy_of(problem, dict(zip(ops, combo))))
                for combo in itertools.product(*choices)]
    return problem.cached("combinations", build)


def feasible_combinations(problem: Problem) -> list[Combination]:
    """Combinations whose end-to-end accuracy meets the problem's threshold."""
    return [c for c in all_combinations(problem) if c.accuracy >= problem.threshold - EPS]


def most_accurate(problem: Problem) -> Combination:
    """The combination with the highest end-to-end accuracy (the baselines' choice)."""
    return max(all_combinations(problem), key=lambda c: c.accuracy)
