"""Tracker and matcher state as plain values, for checkpoints (the record codec carries them).

Tracks are plain objects; their attributes are numbers and numpy arrays, so a track's state is
its attribute dict and restoring rebuilds the object without running its constructor.
"""
from __future__ import annotations

from typing import Any

from streamflow_workers.tracking.crosscam import CrossCameraMatcher, Identity
from streamflow_workers.tracking.sort import FinishedTrack, KalmanBoxTrack, Tracker


def tracker_state(tracker: Tracker) -> dict[str, Any]:
    return {"frame_count": tracker.frame_count, "next_id": tracker._next_id,
            "tracks": [dict(vars(t)) for t in tracker.tracks],
            "finished": [dict(vars(f)) for f in tracker._finished]}


def restore_tracker(tracker: Tracker, state: dict[str, Any]) -> Tracker:
    tracker.frame_count, tracker._next_id = int(state["frame_count"]), int(state["next_id"])
    tracker.tracks = []
    for attrs in state["tracks"]:
        track = object.__new__(KalmanBoxTrack)
        vars(track).update(attrs)
        tracker.tracks.append(track)
    tracker._finished = [FinishedTrack(**f) for f in state["finished"]]
    return tracker


def matcher_state(matcher: CrossCameraMatcher) -> dict[str, Any]:
    return {"identities": {gid: [i.embedding_sum, i.count, i.tracks, i.last_window]
                           for gid, i in matcher.identities.items()},
            "assignment": [[c, t, g] for (c, t), g in matcher.assignment.items()],
            "window": matcher.window, "next_id": matcher._next_id}


def restore_matcher(matcher: CrossCameraMatcher, state: dict[str, Any]) -> CrossCameraMatcher:
    matcher.identities = {int(gid): Identity(int(gid), s, int(n), dict(tracks), int(w))
                          for gid, (s, n, tracks, w) in state["identities"].items()}
    matcher.assignment = {(c, int(t)): int(g) for c, t, g in state["assignment"]}
    matcher.window, matcher._next_id = int(state["window"]), int(state["next_id"])
    return matcher
