"""A small sparse model builder over scipy.optimize.milp (HiGHS): named variable blocks, rows."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array


@dataclass
class Model:
    """Variables with bounds, integrality and objective; rows lo <= sum(coef * var) <= hi."""

    lb: list[float] = field(default_factory=list)
    ub: list[float] = field(default_factory=list)
    obj: list[float] = field(default_factory=list)
    integer: list[int] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    cols: list[int] = field(default_factory=list)
    vals: list[float] = field(default_factory=list)
    row_lo: list[float] = field(default_factory=list)
    row_hi: list[float] = field(default_factory=list)

    def var(self, lb: float = 0.0, ub: float = np.inf, obj: float = 0.0, integer: bool = False) -> int:
        self.lb.append(lb)
        self.ub.append(ub)
        self.obj.append(obj)
        self.integer.append(1 if integer else 0)
        return len(self.lb) - 1

    def add_obj(self, var: int, coef: float) -> None:
        self.obj[var] += coef

    def row(self, terms: list[tuple[int, float]] | dict[int, float], lo: float, hi: float) -> None:
        r = len(self.row_lo)
        items = terms.items() if isinstance(terms, dict) else terms
        for c, v in items:
            if v != 0.0:
                self.rows.append(r)
                self.cols.append(c)
                self.vals.append(v)
        self.row_lo.append(lo)
        self.row_hi.append(hi)

    @property
    def num_vars(self) -> int:
        return len(self.lb)

    def solve(self, time_limit: float | None = None, rel_gap: float = 1e-9):
        """Solve with HiGHS; returns scipy's OptimizeResult (status 0 optimal, 1 limit, 2 infeasible)."""
        n = self.num_vars
        cons = []
        if self.row_lo:
            a = csr_array((self.vals, (self.rows, self.cols)), shape=(len(self.row_lo), n))
            cons.append(LinearConstraint(a, np.array(self.row_lo), np.array(self.row_hi)))
        opts: dict = {"mip_rel_gap": rel_gap, "disp": False}
        if time_limit is not None:
            opts["time_limit"] = float(time_limit)
        with _quiet_stdout():
            return milp(np.array(self.obj), constraints=cons, integrality=np.array(self.integer),
                        bounds=Bounds(np.array(self.lb), np.array(self.ub)), options=opts)


@contextmanager
def _quiet_stdout():
    """HiGHS prints some diagnostics straight to file descriptor 1 even with disp off."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
