"""A bench operator with variants that cost different time and give the same records: the
stand-in for model variants in live switch tests (no model to load, no GPU)."""
from __future__ import annotations

import time
from typing import Any

from streamflow import Operator

COST_MS = {"fast": 0.2, "slow": 2.0}


class SleepyScale(Operator):
    """Records {**r, "scaled": r["speed_kmh"] * 2}, after sleeping the variant's cost per batch."""

    emits_carried = True

    def __init__(self, variant: str) -> None:
        self.variant = variant
        self.cost_s = COST_MS[variant] / 1000

    def on_batch(self, epoch: int, batch: Any, output: Any) -> None:
        time.sleep(self.cost_s)
        output.give([{**r, "scaled": r["speed_kmh"] * 2} for r in batch])
