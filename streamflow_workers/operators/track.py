"""`track`: SORT per camera over detection records, in frame order, epoch by epoch.

Detections of an epoch may arrive out of order (a detector placed on several workers returns
frames as they finish), so the tracker buffers them and runs when the epoch is complete: sorted
by (camera, frame), each camera's Kalman tracks advance exactly as in a single-threaded loop.
Output 0: per frame {camera, index, ts, tracks: M x 6 (x1 y1 x2 y2 track_id class)}.
Output 1: finished tracks {camera, track_id, class_id, first_frame, last_frame, hits, box,
embedding (mean of the matched detections' embeddings, when the input carries them)}.
Frames marked `boxes: None` (frame sampling) reuse the camera's latest detections.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from streamflow import Operator, Output
from streamflow.dataflow.operators.sink import EMITTED_AT
from streamflow.errors import PlanError
from streamflow.progress import DONE

TRACK_PARAMS = ("max_age", "min_hits", "iou_threshold", "class_aware")
OWN_PARAMS = ("min_score",)


class TrackOperator(Operator):
    """Per-camera SORT; tracks close when they age out, and all close when the input ends."""

    n_outputs = 2
    emits_carried = True

    def __init__(self, min_score: float = 0.3, **params: Any) -> None:
        self.min_score = min_score
        self.params = params
        self.buffer: dict[int, list[dict[str, Any]]] = {}
        self.trackers: dict[str, Any] = {}
        self.last_boxes: dict[str, np.ndarray] = {}
        self.embeddings: dict[tuple[str, int], list[Any]] = {}
        self.watching: int | None = None

    def on_batch(self, epoch: int, batch: list[dict[str, Any]], output: Output) -> None:
        self.buffer.setdefault(epoch, []).extend(batch)
        self.ctx.notify_at(epoch)

    aligned = False  # records wait in `buffer` per epoch; the trackers move only at notifications

    def snapshot(self, epoch: int) -> Any:
        """Every camera's tracks, the latest detections, the embedding sums and buffered frames
        (of epochs up to `epoch`: later ones are replayed)."""
        from streamflow_workers.tracking.state import tracker_state
        return {"trackers": {c: tracker_state(t) for c, t in self.trackers.items()},
                "last_boxes": self.last_boxes, "watching": self.watching,
                "buffer": {e: b for e, b in self.buffer.items() if e <= epoch},
                "embeddings": [[c, t, acc[0], acc[1]] for (c, t), acc in self.embeddings.items()]}

    def restore(self, state: Any) -> None:
        from streamflow_workers.tracking.state import restore_tracker
        self.trackers = {c: restore_tracker(self._tracker(c), s) for c, s in state["trackers"].items()}
        self.last_boxes = dict(state["last_boxes"])
        self.buffer = {int(e): list(b) for e, b in state["buffer"].items()}
        self.watching = state["watching"]
        self.embeddings = {(c, int(t)): [s, int(n)] for c, t, s, n in state["embeddings"]}

    def _tracker(self, camera: str) -> Any:
        tracker = self.trackers.get(camera)
        if tracker is None:
            from streamflow_workers.tracking.sort import Tracker
            tracker = self.trackers[camera] = Tracker(**self.params)
        return tracker

    def on_notify(self, epoch: int, output: Output) -> None:
        frames, finished = [], []
        for r in sorted(self.buffer.pop(epoch, []), key=lambda r: (r["camera"], r["index"])):
            camera = r["camera"]
            boxes = r.get("boxes")
            if boxes is None:
                boxes = self.last_boxes.get(camera, np.zeros((0, 6), np.float32))
            else:
                boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 6)
                boxes = boxes[boxes[:, 4] >= self.min_score]
                self.last_boxes[camera] = boxes
            tracker = self._tracker(camera)
            rows = tracker.update(boxes, frame=r["index"])
            emb = r.get("embeddings")
            if emb is not None and len(rows):
                emb = np.asarray(emb)
                for row in rows:
                    d = int(row[7])
                    if 0 <= d < len(emb):
                        acc = self.embeddings.setdefault((camera, int(row[4])), [0.0, 0])
                        acc[0] = acc[0] + emb[d]
                        acc[1] += 1
            out = {"camera": camera, "index": r["index"], "ts": r["ts"], "tracks": rows[:, :6].astype(np.float32)}
            if EMITTED_AT in r:
                out[EMITTED_AT] = r[EMITTED_AT]
            frames.append(out)
            finished += [(camera, t) for t in tracker.pop_finished()]
        if self.ctx.frontier() == DONE:  # the input has ended: every open track is finished
            for camera, tracker in self.trackers.items():
                finished += [(camera, t) for t in tracker.close()]
        output[0].give(frames, epoch)
        output[1].give([self._finished(c, t) for c, t in finished], epoch)
        self._watch_frontier()

    def _watch_frontier(self) -> None:
        """Stay notified as the frontier moves, so the end of input is seen even in epochs
        that bring this operator no records."""
        f = self.ctx.frontier()
        if f != DONE and int(f) != self.watching:
            self.watching = int(f)
            self.ctx.notify_at(int(f))

    def _finished(self, camera: str, t: Any) -> dict[str, Any]:
        rec: dict[str, Any] = {"camera": camera, "track_id": t.track_id, "class_id": t.class_id,
                               "first_frame": t.first_frame, "last_frame": t.last_frame, "hits": t.hits,
                               "box": np.asarray(t.last_box, dtype=np.float32)}
        acc = self.embeddings.pop((camera, t.track_id), None)
        if acc is not None and acc[1]:
            rec["embedding"] = (np.asarray(acc[0]) / acc[1]).astype(np.float32)
        return rec


def build_track(params: dict[str, Any], path: str, plan: Any) -> Any:
    known = TRACK_PARAMS + OWN_PARAMS
    unknown = sorted(set(params) - set(known) - {"batch"})
    if unknown:
        raise PlanError(f"{path}: unknown parameter(s) {', '.join(unknown)} (known: {', '.join(known)})")
    options = {k: params[k] for k in TRACK_PARAMS if k in params}
    try:
        from streamflow_workers.tracking.sort import Tracker
        Tracker(**options)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{path}: {exc}") from None
    min_score = float(params.get("min_score", 0.3))
    return lambda: TrackOperator(min_score, **options)
