"""Model files derived from a shipped ONNX file: symbolic input dims, int8 (post-training static
quantisation calibrated on real frames), fp16 weights. Each is cached under a content hash
(model_cache), so it is built once per host and rebuilt when anything it depends on changes.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

from streamflow_workers.errors import ModelLoadError
from streamflow_workers.runtimes.model_cache import cache_dir, cached_model, content_hash, file_hash
from streamflow_workers.runtimes.onnx_graph import dynamic_input, graph_inputs, load_onnx

log = logging.getLogger(__name__)

def calibration_batch(frames: int) -> int:
    """How many frames MinMax calibration holds before it merges ranges. It keeps every intermediate
    tensor of every frame until then: at 640 that grew past 20 GB for 16 frames. onnxruntime 1.32
    fails ("No data is collected") when the frame count is a multiple of it, so that is avoided."""
    return next((b for b in (2, 3, 5, 7, 11, 13) if frames % b), frames)

QUANT_OPSET = 13  # per-channel QDQ needs DequantizeLinear's axis attribute (opset 13)
QUANT_RECIPE = "qdq-u8s8-per-channel-conv-minmax-v3"  # change it when the recipe changes


def dynamic_model(source: str | Path) -> Path:
    """The source model with symbolic batch, height and width (any multiple of 32 for YOLOX)."""
    source = Path(source)

    def build(out: Path) -> None:
        onnx.save(dynamic_input(load_onnx(source)), str(out))

    return cached_model(f"{source.stem}-dynamic", content_hash(file_hash(source), "dynamic-v1"), build)


def with_free_size(model_path: str | Path) -> Path:
    """`model_path` if its input height and width are already symbolic (a derived model), else the
    cached dynamic copy: what onnxruntime and OpenVINO load, to take any input size."""
    path = Path(model_path)
    dims = graph_inputs(load_onnx(path))[0].type.tensor_type.shape.dim
    if len(dims) == 4 and all(d.HasField("dim_param") for d in list(dims)[2:]):
        return path
    return dynamic_model(path)


def fp32_convs(model: onnx.ModelProto) -> list[str]:
    """Convolutions int8 would hurt more than help, kept fp32 (each rule measured on NGSIM):

    - grouped (depthwise) ones: int8 does not speed them up on x86 (quantised, YOLOX-nano ran
      slower on both onnxruntime and OpenVINO);
    - input convolutions (no other Conv between them and the graph input): YOLOX's stem sees raw
      0..255 pixels; quantised, AP50 on NGSIM fell from 0.83 to 0.07;
    - output convolutions (no other Conv between them and a graph output): the box, objectness
      and class logits; quantised, objectness lost a fifth of its range."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in model.graph.output}

    def convs_after(names: list[str]) -> set[str]:
        """Conv nodes reached from `names` through non-Conv nodes only."""
        found, seen, stack = set(), set(), list(names)
        while stack:
            for node in consumers.get(stack.pop(), []):
                if node.op_type == "Conv":
                    found.add(node.name)
                elif node.name not in seen:
                    seen.add(node.name)
                    stack.extend(node.output)
        return found

    def reaches_output(name: str) -> bool:
        seen, stack = set(), [name]
        while stack:
            value = stack.pop()
            if value in outputs:
                return True
            for node in consumers.get(value, []):
                if node.op_type != "Conv" and node.name not in seen:
                    seen.add(node.name)
                    stack.extend(node.output)
        return False

    first = convs_after([i.name for i in graph_inputs(model)])
    return [n.name for n in model.graph.node if n.op_type == "Conv" and (
        n.name in first or reaches_output(n.output[0]) or any(a.name == "group" and a.i > 1 for a in n.attribute))]


class _DropAdvice(logging.Filter):
    """Drops onnxruntime.quantization's 'consider pre-processing' advice (symbolic shape inference
    cannot follow YOLOX's free input size; the quantised model is checked by its AP50 instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()


def int8_model(source: str | Path, calibration: list[np.ndarray]) -> Path:
    """Post-training static quantisation (QDQ, uint8 activations, int8 per-channel weights, MinMax
    ranges) of the source's non-depthwise convolutions, calibrated on `calibration` blobs
    (each 1 x C x H x W, preprocessed as the detector feeds them)."""
    if not calibration:
        raise ModelLoadError("int8 needs calibration frames; none were given")
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    source = Path(source)
    dynamic = dynamic_model(source)
    blobs = [np.ascontiguousarray(b, dtype=np.float32) for b in calibration]
    key = content_hash(file_hash(dynamic), QUANT_RECIPE, onnxruntime.__version__, *(b.tobytes() for b in blobs),
                       *(str(b.shape) for b in blobs))

    def build(out: Path) -> None:
        model = onnx.version_converter.convert_version(onnx.load(str(dynamic)), QUANT_OPSET)
        name = graph_inputs(model)[0].name
        upgraded = out.with_suffix(".opset13.onnx")
        onnx.save(model, str(upgraded))

        class Frames(CalibrationDataReader):
            def __init__(self) -> None:
                self.blobs = iter(blobs)

            def get_next(self) -> dict[str, np.ndarray] | None:
                blob = next(self.blobs, None)
                return None if blob is None else {name: blob}

        quiet = _DropAdvice()
        logging.getLogger().addFilter(quiet)  # quantize_static advises pre-processing on the root logger
        try:
            quantize_static(str(upgraded), str(out), Frames(), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                            op_types_to_quantize=["Conv"], nodes_to_exclude=fp32_convs(model),
                            extra_options={"CalibMaxIntermediateOutputs": calibration_batch(len(blobs))})
        finally:
            logging.getLogger().removeFilter(quiet)
            upgraded.unlink(missing_ok=True)

    log.info("int8 model for %s: %d calibration frames", source.name, len(blobs))
    return cached_model(f"{source.stem}-int8", key, build)


def int8_model_of_traces(source: str | Path, size: int, traces: list[str], frames: int,
                         blobs: Callable[[], list[np.ndarray]]) -> Path:
    """`int8_model(source, blobs())`, remembered per (source bytes, input size, frame count,
    recipe, onnxruntime version, and the name, size and mtime of every file of the calibration
    traces): a worker loading a variant it quantised before skips decoding and hashing the
    calibration frames (on a 0.25-CPU host, 2 of the 3.5 s it took to load int8 YOLOX-nano@512
    beside a running plan). A changed trace file changes the key; then the frames are decoded,
    and the model is rebuilt only if they differ (int8_model's own key is their content)."""
    import onnxruntime
    stats = []
    for folder in traces:
        for f in sorted(Path(folder).iterdir()) if Path(folder).is_dir() else []:
            st = f.stat()  # follows the trace's links to the shared data
            stats.append(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}")
    memo = cache_dir() / "int8-index" / (content_hash(file_hash(Path(source)), QUANT_RECIPE, onnxruntime.__version__,
                                                      str(size), str(frames), *stats) + ".txt")
    if memo.is_file():
        known = cache_dir() / memo.read_text().strip()
        if known.is_file():
            return known
    path = int8_model(source, blobs())
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(path.name)
    os.replace(tmp, memo)
    return path


def fp16_model(source: str | Path) -> Path:
    """fp16 weights and activations with fp32 inputs and outputs (for onnxruntime's CUDA provider)."""
    import onnxruntime
    from onnxruntime.transformers.float16 import convert_float_to_float16
    dynamic = dynamic_model(source)

    def build(out: Path) -> None:
        onnx.save(convert_float_to_float16(onnx.load(str(dynamic)), keep_io_types=True), str(out))

    return cached_model(f"{Path(source).stem}-fp16", content_hash(file_hash(dynamic), "fp16-v1",
                                                                 onnxruntime.__version__), build)
