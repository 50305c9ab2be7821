import numpy as np
import pytest

from streamflow_workers.detect.sampling import SampledDetector
from streamflow_workers.errors import VariantError


class CountingDetector:
    """Test double: returns one box whose score is the frame's value, and records each call."""

    def __init__(self):
        self.calls = []

    def detect(self, frames, camera=None):
        self.calls.append((camera, [int(f[0, 0]) for f in frames]))
        return [np.array([[0, 0, 1, 1, f[0, 0], 2]], np.float32) for f in frames]


def frames(values):
    return [np.full((2, 2), v, np.uint8) for v in values]


def scores(out):
    return [int(b[0, 4]) for b in out]


def test_every_kth_frame_detected_and_reemitted_between():
    inner = CountingDetector()
    sampled = SampledDetector(inner, every=3)
    out = sampled.detect(frames(range(7)))
    assert scores(out) == [0, 0, 0, 3, 3, 3, 6]
    assert inner.calls == [(None, [0, 3, 6])]  # one batched call
    assert scores(sampled.detect(frames([7, 8, 9]))) == [6, 6, 9]  # indices continue


def test_per_camera_state_and_explicit_indices():
    inner = CountingDetector()
    sampled = SampledDetector(inner, every=2)
    assert scores(sampled.detect(frames([5, 6]), camera="a", indices=[5, 6])) == [5, 6]  # first frame always
    assert scores(sampled.detect(frames([1]), camera="b")) == [1]
    assert scores(sampled.detect(frames([7]), camera="a", indices=[7])) == [6]
    assert inner.calls[-1] == ("b", [1])  # frame 7 of camera a needed no call
    out = sampled.detect(frames([7]), camera="a", indices=[7])
    out[0][0, 4] = 99  # re-emitted arrays are copies
    assert scores(sampled.detect(frames([9]), camera="a", indices=[9])) == [6]


def test_every_one_is_pass_through_and_bad_interval():
    inner = CountingDetector()
    assert scores(SampledDetector(inner, 1).detect(frames([1, 2]))) == [1, 2]
    assert SampledDetector(inner, 2).detect([]) == []
    with pytest.raises(VariantError):
        SampledDetector(inner, 0)
