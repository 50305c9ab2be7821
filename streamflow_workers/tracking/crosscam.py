"""Cross-camera association: give tracks from several cameras global ids by appearance.

Called once per epoch window with the (camera, track id, embedding) sightings of that window.
Assumptions, stated because the result depends on them:
- one appearance embedder serves every camera, so cosine similarity is comparable across them;
- an object is at most one live track per camera: two tracks seen in the same camera in the
  same window are never merged (a track that ended in a camera may be continued by a new one);
- no camera topology, travel time or geometry is used, only appearance and the threshold;
- a window is solved camera by camera (sorted by name), each with a Hungarian assignment of
  its new tracks to the known identities: optimal per camera, not jointly over all cameras.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
from scipy.optimize import linear_sum_assignment


def normalize(v: np.ndarray) -> np.ndarray:
    """L2-normalise along the last axis (zero vectors stay zero)."""
    v = np.asarray(v, dtype=np.float64)
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)


@dataclass(frozen=True)
class Sighting:
    """One appearance of a track in a window: its camera, per-camera track id and embedding."""

    camera: str
    track_id: int
    embedding: np.ndarray


@dataclass
class Identity:
    """A global object: the running mean of its tracks' embeddings and where it was seen."""

    global_id: int
    embedding_sum: np.ndarray
    count: int = 0
    tracks: dict[str, int] = field(default_factory=dict)  # camera -> latest track id there
    last_window: int = 0

    @property
    def embedding(self) -> np.ndarray:
        return normalize(self.embedding_sum)

    def absorb(self, camera: str, track_id: int, embedding: np.ndarray, window: int) -> None:
        self.embedding_sum = self.embedding_sum + embedding
        self.count += 1
        self.tracks[camera] = track_id
        self.last_window = window


class CrossCameraMatcher:
    """Global ids across cameras from appearance, kept stable across windows."""

    def __init__(self, threshold: float = 0.6, forget_after: int | None = None):
        """threshold: least cosine similarity to join an identity; forget_after: windows after
        which an identity not seen any more stops being a candidate (None: never)."""
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold {threshold}: a cosine similarity lies in [-1, 1]")
        self.threshold, self.forget_after = threshold, forget_after
        self.identities: dict[int, Identity] = {}
        self.assignment: dict[tuple[str, int], int] = {}
        self.window = -1
        self._next_id = 1

    def global_id(self, camera: str, track_id: int) -> int | None:
        return self.assignment.get((camera, int(track_id)))

    def associate(self, sightings: Iterable[Sighting]) -> dict[tuple[str, int], int]:
        """Assign global ids to the (camera, track id) pairs sighted in the next window."""
        self.window += 1
        tracks = self._mean_embeddings(sightings)
        present: dict[str, set[int]] = {}  # camera -> identities already live there this window
        result: dict[tuple[str, int], int] = {}
        fresh: dict[str, list[tuple[int, np.ndarray]]] = {}
        for (camera, track_id), emb in tracks.items():
            gid = self.assignment.get((camera, track_id))
            if gid is None:
                fresh.setdefault(camera, []).append((track_id, emb))
                continue
            self.identities[gid].absorb(camera, track_id, emb, self.window)
            present.setdefault(camera, set()).add(gid)
            result[(camera, track_id)] = gid
        for camera in sorted(fresh):
            for (track_id, emb), gid in zip(fresh[camera], self._match(camera, fresh[camera], present)):
                if gid is None:
                    gid = self._next_id
                    self._next_id += 1
                    self.identities[gid] = Identity(gid, np.zeros_like(emb))
                self.identities[gid].absorb(camera, track_id, emb, self.window)
                self.assignment[(camera, track_id)] = gid
                present.setdefault(camera, set()).add(gid)
                result[(camera, track_id)] = gid
        return result

    def _mean_embeddings(self, sightings: Iterable[Sighting]) -> dict[tuple[str, int], np.ndarray]:
        sums: dict[tuple[str, int], np.ndarray] = {}
        dim = None
        for s in sightings:
            emb = normalize(np.asarray(s.embedding, dtype=np.float64).ravel())
            if dim is None:
                dim = emb.shape[0]
            elif emb.shape[0] != dim:
                raise ValueError(f"embedding of {s.camera}/{s.track_id} has {emb.shape[0]} dimensions, "
                                 f"others {dim}")
            key = (s.camera, int(s.track_id))
            sums[key] = sums[key] + emb if key in sums else emb
        return {k: normalize(v) for k, v in sums.items()}

    def _match(self, camera: str, fresh: list[tuple[int, np.ndarray]],
               present: dict[str, set[int]]) -> list[int | None]:
        """Hungarian assignment of a camera's new tracks to candidate identities."""
        busy = present.get(camera, set())
        candidates = [ident for gid, ident in self.identities.items() if gid not in busy and
                      (self.forget_after is None or self.window - ident.last_window <= self.forget_after)]
        if not candidates:
            return [None] * len(fresh)
        similarity = np.stack([e for _, e in fresh]) @ np.stack([c.embedding for c in candidates]).T
        rows, cols = linear_sum_assignment(-similarity)
        out: list[int | None] = [None] * len(fresh)
        for r, c in zip(rows, cols):
            if similarity[r, c] >= self.threshold:
                out[r] = candidates[c].global_id
        return out
