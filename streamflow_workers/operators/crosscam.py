"""`crosscam`: global identities across cameras, from finished tracks' appearance embeddings.

Finished tracks of each tumbling window of `window` epochs are associated together when the
window is complete (CrossCameraMatcher: cosine similarity, Hungarian per camera), so a vehicle
leaving camera 1 and entering camera 2 within the window gets one global id.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from streamflow import Operator, Output
from streamflow.errors import PlanError


class CrossCameraOperator(Operator):
    """Emits {camera, track_id, global_id, first_frame, last_frame} per finished track."""

    emits_carried = True

    def __init__(self, window: int = 1, threshold: float = 0.6, forget_after: int | None = None) -> None:
        from streamflow_workers.tracking.crosscam import CrossCameraMatcher
        self.window = window
        self.matcher = CrossCameraMatcher(threshold, forget_after)
        self.pending: dict[int, list[dict[str, Any]]] = {}

    def on_batch(self, epoch: int, batch: list[dict[str, Any]], output: Output) -> None:
        w = epoch // self.window
        if w not in self.pending:
            self.ctx.notify_at((w + 1) * self.window - 1)
        self.pending.setdefault(w, []).extend(batch)

    def aligned_at(self, epoch: int) -> bool:
        return (epoch + 1) % self.window != 0  # the matcher moves only when a window closes

    def snapshot(self, epoch: int) -> Any:
        """The identities seen so far and the finished tracks of windows open at `epoch`."""
        from streamflow_workers.tracking.state import matcher_state
        last = epoch // self.window
        return {"matcher": matcher_state(self.matcher), "pending": {w: t for w, t in self.pending.items() if w <= last}}

    def restore(self, state: Any) -> None:
        from streamflow_workers.tracking.state import restore_matcher
        restore_matcher(self.matcher, state["matcher"])
        self.pending = {int(w): list(t) for w, t in state["pending"].items()}

    def on_notify(self, epoch: int, output: Output) -> None:
        from streamflow_workers.tracking.crosscam import Sighting
        tracks = self.pending.pop(epoch // self.window, [])
        seen = [t for t in tracks if t.get("embedding") is not None]
        ids = self.matcher.associate(Sighting(t["camera"], int(t["track_id"]), np.asarray(t["embedding"]))
                                     for t in seen)
        output.give([{"camera": t["camera"], "track_id": int(t["track_id"]),
                      "global_id": ids.get((t["camera"], int(t["track_id"]))),
                      "first_frame": t["first_frame"], "last_frame": t["last_frame"]} for t in tracks], epoch)


def build_crosscam(params: dict[str, Any], path: str, plan: Any) -> Any:
    window = params.get("window", 1)
    threshold = params.get("threshold", 0.6)
    if not isinstance(window, int) or window < 1:
        raise PlanError(f"{path}.window: expected an integer >= 1")
    if not isinstance(threshold, (int, float)) or not -1 <= threshold <= 1:
        raise PlanError(f"{path}.threshold: expected a cosine similarity in [-1, 1]")
    forget = params.get("forget_after")
    return lambda: CrossCameraOperator(window, float(threshold), forget)
