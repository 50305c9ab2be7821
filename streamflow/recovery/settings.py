"""The plan's `recovery` block: whether and how often to checkpoint.

    "recovery": {"every_epochs": 30}   checkpoint every 30 epochs
    "recovery": {"every_s": 2}         every 2 s of stream time (epochs in ms only)
    "recovery": false                  no checkpoints: a lost worker ends the run

Default: every 2 s of stream time with ms epochs, every 30 epochs with frame epochs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from streamflow.errors import PlanError

DEFAULT_EVERY_S = 2.0
DEFAULT_EVERY_EPOCHS = 30


@dataclass(frozen=True)
class RecoverySettings:
    enabled: bool
    every_epochs: int | None


def recovery_settings(raw: Any, epoch_unit: str, epoch_size: int) -> RecoverySettings:
    """Validate the block; a PlanError names the field."""
    if raw is False:
        return RecoverySettings(False, None)
    if raw is None or raw is True:
        raw = {}
    if not isinstance(raw, dict):
        raise PlanError(f"recovery: expected an object or false, got {raw!r}")
    unknown = sorted(set(raw) - {"every_epochs", "every_s"})
    if unknown:
        raise PlanError(f"recovery: unknown field(s) {', '.join(unknown)} (known: every_epochs, every_s)")
    if "every_epochs" in raw and "every_s" in raw:
        raise PlanError("recovery: give every_epochs or every_s, not both")
    if "every_epochs" in raw:
        n = raw["every_epochs"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise PlanError(f"recovery.every_epochs: expected an integer >= 1, got {n!r}")
        return RecoverySettings(True, n)
    every_s = raw.get("every_s")
    if every_s is not None and (not isinstance(every_s, (int, float)) or isinstance(every_s, bool) or every_s <= 0):
        raise PlanError(f"recovery.every_s: expected a number of seconds > 0, got {every_s!r}")
    if epoch_unit == "ms":
        return RecoverySettings(True, max(1, math.ceil((every_s or DEFAULT_EVERY_S) * 1000 / epoch_size)))
    if every_s is not None:
        raise PlanError("recovery.every_s: needs epochs in ms (epoch.unit); with frame epochs give every_epochs")
    return RecoverySettings(True, DEFAULT_EVERY_EPOCHS)
