"""The on-camera frame-difference filter, and the source sending `frame: None` for what it drops."""
import numpy as np
import pytest

from streamflow.errors import PlanError
from streamflow_workers.detect.framediff import FrameDifferenceFilter
from streamflow_workers.operators.trace_source import frame_filter_for, source_record


def picture(moved: int) -> np.ndarray:
    """A grey 128x128 picture with a white 32x32 'car' shifted right by `moved` pixels."""
    image = np.full((128, 128, 3), 90, np.uint8)
    image[48:80, moved:moved + 32] = 250
    return image


def test_drops_what_barely_changed_against_the_last_frame_sent():
    kept = FrameDifferenceFilter(0.02)
    # each step moves the car 2 px: 1.6 % of the picture changes against the previous frame, below
    # the threshold, yet the filter sends every third step because it compares with the last frame *sent*
    sends = [kept.keep("cam", picture(x)) for x in (0, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18)]
    assert sends == [True, False, False, False, True, False, True, False, True, False, True]
    assert kept.keep("other", picture(0))  # per camera


def test_zero_threshold_sends_every_changed_frame_and_bad_threshold():
    every = FrameDifferenceFilter(0.0)
    assert all(every.keep("c", picture(x)) for x in range(5))
    with pytest.raises(ValueError):
        FrameDifferenceFilter(1.0)


def test_source_record_is_the_frame_or_none():
    kept = FrameDifferenceFilter(0.5)
    first = source_record("c", 0, 0.0, picture(0), "jpeg", 90, kept)
    second = source_record("c", 1, 0.1, picture(1), "jpeg", 90, kept)
    assert isinstance(first["frame"], bytes) and second["frame"] is None and second["index"] == 1


class Node:
    def __init__(self, name, role, path, variant=None, inputs=()):
        self.name, self.role, self.path, self.variant, self.params = name, role, path, variant, {}
        self.inputs = [type("In", (), {"source": s})() for s in inputs]


class PlanStub:
    def __init__(self, *nodes):
        self.nodes = list(nodes)


def test_the_source_takes_the_filter_of_the_detect_variant_it_feeds():
    cams = Node("cams", "source", "sources[0]")
    plan = PlanStub(cams, Node("detect", "operator", "operators[0]", "yolox_nano@416:ov+diff0.03", ["cams"]))
    assert frame_filter_for(plan, "sources[0]") == 0.03
    assert frame_filter_for(PlanStub(cams, Node("d", "operator", "operators[0]", "yolox_nano@416", ["cams"])),
                            "sources[0]") is None
    clash = PlanStub(cams, Node("a", "operator", "operators[0]", "mog2+diff0.01", ["cams"]),
                     Node("b", "operator", "operators[1]", "yolox_nano@320", ["cams"]))
    with pytest.raises(PlanError, match="different on-camera filters"):
        frame_filter_for(clash, "sources[0]")
