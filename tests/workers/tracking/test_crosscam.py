"""Cross-camera association on embeddings with known identities."""
from __future__ import annotations

import numpy as np
import pytest

from streamflow_workers.tracking.crosscam import CrossCameraMatcher, Sighting


def identities(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def noisy(v: np.ndarray, rng: np.random.Generator, sigma: float = 0.08) -> np.ndarray:
    return v + rng.normal(0, sigma, v.shape)


def test_tracks_of_one_object_across_cameras_share_a_global_id() -> None:
    truth = identities(8)
    rng = np.random.default_rng(1)
    # Three cameras see overlapping subsets, with their own track numbering, several frames each.
    seen = {"cam1": [0, 1, 2, 3, 4], "cam2": [2, 3, 4, 5, 6], "cam3": [0, 4, 6, 7]}
    sightings, owner = [], {}
    for camera, objs in seen.items():
        for local, obj in enumerate(rng.permutation(objs)):
            owner[(camera, 10 + local)] = int(obj)
            sightings += [Sighting(camera, 10 + local, noisy(truth[obj], rng)) for _ in range(3)]
    result = CrossCameraMatcher(threshold=0.6).associate(sightings)
    assert set(result) == set(owner)
    for a in owner:
        for b in owner:
            assert (result[a] == result[b]) == (owner[a] == owner[b]), (a, b)
    assert len(set(result.values())) == 8


def test_ids_stay_stable_across_windows_and_cameras() -> None:
    truth = identities(3)
    rng = np.random.default_rng(2)
    matcher = CrossCameraMatcher(threshold=0.6)
    first = matcher.associate([Sighting("cam1", 1, noisy(truth[0], rng)), Sighting("cam1", 2, noisy(truth[1], rng))])
    second = matcher.associate([Sighting("cam1", 1, noisy(truth[0], rng))])
    later = matcher.associate([Sighting("cam2", 7, noisy(truth[1], rng)), Sighting("cam2", 8, noisy(truth[2], rng))])
    assert second[("cam1", 1)] == first[("cam1", 1)]
    assert later[("cam2", 7)] == first[("cam1", 2)]
    assert later[("cam2", 8)] not in first.values()
    assert matcher.global_id("cam2", 7) == first[("cam1", 2)]


def test_two_live_tracks_in_one_camera_are_never_merged() -> None:
    v = identities(1)[0]
    result = CrossCameraMatcher().associate([Sighting("cam1", 1, v), Sighting("cam1", 2, v)])
    assert result[("cam1", 1)] != result[("cam1", 2)]


def test_a_new_track_in_the_same_camera_can_continue_an_identity() -> None:
    v = identities(1)[0]
    matcher = CrossCameraMatcher()
    a = matcher.associate([Sighting("cam1", 1, v)])
    b = matcher.associate([Sighting("cam1", 5, v)])  # the tracker lost and re-found the object
    assert b[("cam1", 5)] == a[("cam1", 1)]


def test_threshold_and_forgetting() -> None:
    truth = identities(2)
    matcher = CrossCameraMatcher(threshold=0.99)
    rng = np.random.default_rng(3)
    a = matcher.associate([Sighting("cam1", 1, truth[0])])
    b = matcher.associate([Sighting("cam2", 1, noisy(truth[0], rng, 0.2))])  # too unlike at 0.99
    assert a[("cam1", 1)] != b[("cam2", 1)]
    forgetful = CrossCameraMatcher(threshold=0.5, forget_after=1)
    x = forgetful.associate([Sighting("cam1", 1, truth[1])])
    forgetful.associate([])
    forgetful.associate([])
    y = forgetful.associate([Sighting("cam2", 3, truth[1])])
    assert x[("cam1", 1)] != y[("cam2", 3)]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="dimensions"):
        CrossCameraMatcher().associate([Sighting("a", 1, np.ones(4)), Sighting("b", 1, np.ones(5))])
    with pytest.raises(ValueError):
        CrossCameraMatcher(threshold=2)
