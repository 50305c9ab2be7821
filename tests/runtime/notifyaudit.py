"""An operator that audits its own notifications: the probe of the early-notification property
test over live switches (tests/runtime/test_switch_notify.py).

It counts records per key and tumbling window of epochs and emits one row per (key, window) at
the notification for the window's last epoch, as a windowed aggregate does. A second audit
downstream of a first one checks the first one's output: rows a stateful operator emits at a
notification restored across the switch must not reach it after its own notification for
their epoch. It also remembers
the highest epoch it has been notified for; a record of an epoch at or before it arrives after
that notification, which is an early notification, and is written out as a `late` row. The
remembered epoch crosses a checkpoint (and so a live switch) as the checkpoint epoch itself:
every notification up to it fired before the snapshot, in the old configuration.
"""
from __future__ import annotations

import time
from typing import Any

from streamflow import Operator
from streamflow.recovery.state import Keyed

COST_MS = {"fast": 0.0, "slow": 1.0}


class NotificationAudit(Operator):
    """Rows {"key", "window_end", "n"} per key and window; {"late": epoch, "notified": t} when a
    record arrives after the notification for an epoch t at or after its own."""

    def __init__(self, key: list[str], window: int = 1, variant: str = "fast") -> None:
        self.fields, self.window, self.cost_s = key, window, COST_MS[variant] / 1000
        self.counts: dict[int, dict[Any, int]] = {}  # window -> key -> records
        self.notified = -1

    def key(self, r: dict) -> Any:
        return tuple(r[f] for f in self.fields) if len(self.fields) > 1 else r[self.fields[0]]

    def on_batch(self, epoch: int, batch: Any, output: Any) -> None:
        if self.cost_s:
            time.sleep(self.cost_s)
        if epoch <= self.notified:
            output.give([{"late": epoch, "notified": self.notified, "instance": self.ctx.instance,
                          "key": None, "window_end": None}])
        w = epoch // self.window
        per = self.counts.get(w)
        if per is None:
            per = self.counts[w] = {}
            self.ctx.notify_at((w + 1) * self.window - 1)
        for r in batch:
            k = self.key(r)
            per[k] = per.get(k, 0) + 1

    def on_notify(self, epoch: int, output: Any) -> None:
        self.notified = max(self.notified, epoch)
        per = self.counts.pop(epoch // self.window, {})
        output.give([{"key": list(k) if isinstance(k, tuple) else k, "window_end": epoch, "n": n}
                     for k, n in sorted(per.items())], epoch)

    def aligned_at(self, epoch: int) -> bool:
        return (epoch + 1) % self.window != 0  # at a window's end, later windows stay apart

    def snapshot(self, epoch: int) -> Any:
        """Open windows up to `epoch` per key; shared: `epoch` (every notification up to it fired)."""
        per_key: dict[Any, dict[int, int]] = {}
        for w, per in self.counts.items():
            if w <= epoch // self.window:
                for k, n in per.items():
                    per_key.setdefault(k, {})[w] = n
        return Keyed(per_key, epoch)

    def restore(self, state: Any) -> None:
        self.notified = int(state.shared)
        for k, windows in state.per_key.items():
            for w, n in windows.items():
                per = self.counts.get(int(w))
                if per is None:
                    per = self.counts[int(w)] = {}
                per[k] = n
