import numpy as np
import pytest

from streamflow_workers.detect.mog2 import Mog2Detector
from streamflow_workers.detect.sampling import SampledDetector
from streamflow_workers.detect.yolox import YoloxDetector
from streamflow_workers.errors import VariantError
from streamflow_workers.runtimes.onnx_graph import conv_macs, load_onnx
from streamflow_workers.variants import (YOLOX_NANO_GMACS_AT_416, VariantSpec, build_detector, build_embedder,
                              list_variants, parse_variant)


def test_parse_names():
    assert parse_variant("yolox_nano@416") == VariantSpec("detect", "yolox_nano", 416, 1)
    assert parse_variant("yolox_nano@1280/4") == VariantSpec("detect", "yolox_nano", 1280, 4)
    assert parse_variant("mog2/2").every == 2
    assert parse_variant("osnet_x0_25").kind == "embed"
    assert parse_variant("yolox_nano@416/2").name == "yolox_nano@416/2"
    assert parse_variant("yolox_nano@416/2").base == "yolox_nano@416"


@pytest.mark.parametrize("bad", ["yolox_nano", "yolox_nano@500", "yolox@416", "mog2@320", "osnet_x0_25/2",
                                 "", "YOLOX"])
def test_unknown_variant_names_the_known_ones(bad):
    with pytest.raises(VariantError) as err:
        parse_variant(bad)
    assert "yolox_nano@320" in str(err.value) and "mog2" in str(err.value) and "\n" not in str(err.value)


def test_zero_sampling_interval():
    with pytest.raises(VariantError, match="needs k >= 1"):
        parse_variant("yolox_nano@416/0")


def test_list_is_ordered_by_nominal_cost():
    assert list_variants() == ["mog2", "yolox_nano@320", "yolox_nano@416", "yolox_nano@640",
                               "yolox_nano@960", "yolox_nano@1280"]
    names = list_variants("detect", sampling=(1, 2))
    costs = [parse_variant(n).relative_cost for n in names]
    assert costs == sorted(costs) and len(names) == 12
    assert parse_variant("yolox_nano@640/2").relative_cost == pytest.approx(parse_variant("yolox_nano@640").relative_cost / 2)
    assert list_variants("embed") == ["histogram", "osnet_x0_25", "mobilenetv2"]
    with pytest.raises(VariantError):
        list_variants("track")


def test_nominal_cost_is_counted_from_the_graph(yolox_path):
    assert conv_macs(load_onnx(yolox_path)) / 1e9 == pytest.approx(YOLOX_NANO_GMACS_AT_416, rel=1e-3)
    assert parse_variant("yolox_nano@640").gflops_per_frame == pytest.approx(2 * 0.5226 * (640 / 416) ** 2)


def test_build_detectors(yolox_path):
    detector = build_detector("yolox_nano@320", "torch", "cpu", score_threshold=0.2, classes=[2])
    assert isinstance(detector, YoloxDetector) and detector.size == 320 and detector.runtime.name == "torch"
    sampled = build_detector("mog2/3", min_area=50)
    assert isinstance(sampled, SampledDetector) and sampled.every == 3
    assert isinstance(sampled.detector, Mog2Detector) and sampled.detector.min_area == 50
    frames = [np.zeros((64, 64, 3), np.uint8)] * 4
    assert len(sampled.detect(frames, camera="c")) == 4


def test_build_errors():
    with pytest.raises(VariantError, match="unknown parameter"):
        build_detector("mog2", history_len=3)
    with pytest.raises(VariantError, match="not a detect variant"):
        build_detector("osnet_x0_25")
    with pytest.raises(VariantError, match="not an embed variant"):
        build_embedder("mog2")


def test_precision_runtime_and_filter_in_names():
    spec = parse_variant("yolox_nano@640:int8:ort")
    assert (spec.size, spec.precision, spec.runtime, spec.diff) == (640, "int8", "onnxruntime", None)
    assert spec.name == spec.base == "yolox_nano@640:int8:ort"
    assert parse_variant("yolox_nano@640:fp32:ov").name == "yolox_nano@640:ov"  # fp32 is the default
    assert parse_variant("yolox_nano@640").runtime is None  # the operator's runtime parameter decides
    full = parse_variant("yolox_nano@352:ov+diff0.02/2")
    assert (full.size, full.diff, full.every, full.base, full.name) == (
        352, 0.02, 2, "yolox_nano@352:ov", "yolox_nano@352:ov+diff0.02/2")
    assert parse_variant("mog2+diff0.05").diff == 0.05
    assert parse_variant("yolox_nano@640").with_runtime("openvino").name == "yolox_nano@640:ov"


@pytest.mark.parametrize("bad, why", [("yolox_nano@640:int8", "int8 runs on onnxruntime or OpenVINO"),
                                      ("yolox_nano@640:int8:cv2", "int8 runs on onnxruntime or OpenVINO"),
                                      ("yolox_nano@640+diff1.5", "0 < T < 1"),
                                      ("mog2:ort", "unknown variant"), ("osnet_x0_25+diff0.1", "unknown variant"),
                                      ("yolox_nano@640:ort:int8", "unknown variant")])
def test_bad_precision_runtime_or_filter(bad, why):
    with pytest.raises(VariantError, match=why):
        parse_variant(bad)


def test_int8_without_calibration_is_one_line_error(yolox_path):
    from streamflow_workers.errors import ModelLoadError
    with pytest.raises(ModelLoadError, match="int8 calibration needs trace folders"):
        build_detector("yolox_nano@320:int8:ort")
