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
from streamflow_workers.runtimes.graph_rewrite import output_transpose_to_numpy, stem_as_conv
from streamflow_workers.runtimes.model_cache import cache_dir, cached_model, content_hash, file_hash
from streamflow_workers.runtimes.onnx_graph import consumers, dynamic_input, graph_inputs, load_onnx

log = logging.getLogger(__name__)

def calibration_batch(frames: int) -> int:
    """How many frames MinMax calibration holds before it merges ranges. It keeps every intermediate
    tensor of every frame until then: at 640 that grew past 20 GB for 16 frames. onnxruntime 1.32
    fails ("No data is collected") when the frame count is a multiple of it, so that is avoided."""
    return next((b for b in (2, 3, 5, 7, 11, 13) if frames % b), frames)

QUANT_OPSET = 13  # per-channel QDQ needs DequantizeLinear's axis attribute (opset 13)
QUANT_RECIPE = "qdq-u8s8-per-channel-minmax-v4"  # change it when the recipe changes


def dynamic_model(source: str | Path) -> Path:
    """The source model with symbolic batch, height and width (any multiple of 32 for YOLOX)."""
    source = Path(source)

    def build(out: Path) -> None:
        onnx.save(dynamic_input(load_onnx(source)), str(out))

    return cached_model(f"{source.stem}-dynamic", content_hash(file_hash(source), "dynamic-v1"), build)


def cpu_model(source: str | Path) -> Path:
    """The dynamic model with graph_rewrite's exact rewrites (stem as one Conv, output Transpose
    left to numpy): what onnxruntime and OpenVINO run, 1.5 ms faster at 640 on onnxruntime."""
    source = Path(source)
    dynamic = dynamic_model(source)

    def build(out: Path) -> None:
        model = load_onnx(dynamic)
        stem_as_conv(model)
        output_transpose_to_numpy(model)
        onnx.save(model, str(out))

    return cached_model(f"{source.stem}-cpu", content_hash(file_hash(dynamic), "cpu-rewrites-v2"), build)


def runnable_model(model_path: str | Path) -> Path:
    """`model_path` if its input height and width are already symbolic (a derived model), else the
    cached `cpu_model`: what onnxruntime and OpenVINO load, to take any input size."""
    path = Path(model_path)
    dims = graph_inputs(load_onnx(path))[0].type.tensor_type.shape.dim
    if len(dims) == 4 and all(d.HasField("dim_param") for d in list(dims)[2:]):
        return path
    return cpu_model(path)


CONV_OPS = ["Conv"]
ACTIVATION_OPS = ["Sigmoid", "Mul", "Add", "Concat", "MaxPool", "Resize"]


def fp32_convs(model: onnx.ModelProto) -> list[str]:
    """Convolutions int8 would hurt more than help, kept fp32 (each rule measured on NGSIM):

    - grouped (depthwise) ones: int8 does not speed them up on x86, and quantised, AP50 at 640
      fell from 0.85 to 0.09;
    - input convolutions (no other Conv between them and the graph input): YOLOX's stem sees raw
      0..255 pixels; quantised, AP50 on NGSIM fell from 0.83 to 0.07;
    - output convolutions (no other Conv between them and a graph output): the box, objectness
      and class logits; quantised, objectness lost a fifth of its range."""
    readers = consumers(model)
    outputs = {o.name for o in model.graph.output}

    def convs_after(names: list[str]) -> set[str]:
        """Conv nodes reached from `names` through non-Conv nodes only."""
        found, seen, stack = set(), set(), list(names)
        while stack:
            for node in readers.get(stack.pop(), []):
                if node.op_type == "Conv":
                    found.add(node.name)
                elif node.name not in seen:
                    seen.add(node.name)
                    stack.extend(node.output)
        return found

    first = convs_after([i.name for i in graph_inputs(model)])
    return [n.name for n in model.graph.node if n.op_type == "Conv" and (
        n.name in first or _reaches_output(n.output[0], readers, outputs)
        or any(a.name == "group" and a.i > 1 for a in n.attribute))]


def _reaches_output(name: str, readers: dict[str, list[onnx.NodeProto]], outputs: set[str]) -> bool:
    """Whether `name` flows into a graph output through non-Conv nodes only."""
    seen, stack = set(), [name]
    while stack:
        value = stack.pop()
        if value in outputs:
            return True
        for node in readers.get(value, []):
            if node.op_type != "Conv" and node.name not in seen:
                seen.add(node.name)
                stack.extend(node.output)
    return False


def fp32_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes kept fp32 when the activations are quantised too: `fp32_convs`, the activations
    (SiLU = Sigmoid, Mul) that read an fp32 convolution, and the head after the output
    convolutions. Measured at 640: with the stem's SiLU quantised AP50 fell to 0.01; with every
    SiLU after an fp32 depthwise one, to 0.63. Quantising the other SiLUs removes the Q/DQ pair
    around each: onnxruntime's int8 went from 3 % slower than fp32 to 6-12 % faster."""
    convs = set(fp32_convs(model))
    readers = consumers(model)
    outputs = {o.name for o in model.graph.output}
    fp32_out = {o for n in model.graph.node if n.name in convs for o in n.output}
    activations = {n.name for n in model.graph.node if n.op_type in ("Sigmoid", "Mul") and n.input[0] in fp32_out}
    head = {n.name for n in model.graph.node if n.op_type != "Conv"
            and any(_reaches_output(o, readers, outputs) for o in n.output)}
    return [n.name for n in model.graph.node if n.name in convs | activations | head]


class _DropAdvice(logging.Filter):
    """Drops onnxruntime.quantization's 'consider pre-processing' advice (symbolic shape inference
    cannot follow YOLOX's free input size; the quantised model is checked by its AP50 instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()


def int8_model(source: str | Path, calibration: list[np.ndarray], activations: bool = True) -> Path:
    """Post-training static quantisation (QDQ, uint8 activations, int8 per-channel weights, MinMax
    ranges) of the source's convolutions and, with `activations`, the SiLUs, adds, concats and pools
    between them (`fp32_nodes` says which stay fp32), calibrated on `calibration` blobs (each
    1 x C x H x W, preprocessed as the detector feeds them). onnxruntime needs `activations` to
    gain from int8; OpenVINO fuses fp32 SiLUs into its int8 convolutions and is faster without."""
    if not calibration:
        raise ModelLoadError("int8 needs calibration frames; none were given")
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    source = Path(source)
    base = cpu_model(source)
    blobs = [np.ascontiguousarray(b, dtype=np.float32) for b in calibration]
    key = content_hash(file_hash(base), QUANT_RECIPE, f"activations={activations}", onnxruntime.__version__,
                       *(b.tobytes() for b in blobs), *(str(b.shape) for b in blobs))

    def build(out: Path) -> None:
        model = onnx.version_converter.convert_version(onnx.load(str(base)), QUANT_OPSET)
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
                            op_types_to_quantize=CONV_OPS + (ACTIVATION_OPS if activations else []),
                            nodes_to_exclude=fp32_nodes(model) if activations else fp32_convs(model),
                            extra_options={"CalibMaxIntermediateOutputs": calibration_batch(len(blobs))})
        finally:
            logging.getLogger().removeFilter(quiet)
            upgraded.unlink(missing_ok=True)

    log.info("int8 model for %s: %d calibration frames", source.name, len(blobs))
    return cached_model(f"{source.stem}-int8", key, build)


def int8_model_of_traces(source: str | Path, size: int, traces: list[str], frames: int,
                         blobs: Callable[[], list[np.ndarray]], activations: bool = True) -> Path:
    """`int8_model(source, blobs(), activations)`, remembered per (source bytes, input size, frame
    count, recipe, onnxruntime version, and the name, size and mtime of every file of the
    calibration traces): a worker loading a variant it quantised before skips decoding and hashing
    the calibration frames (on a 0.25-CPU host, 2 of the 3.5 s it took to load int8 YOLOX-nano@512
    beside a running plan). A changed trace file changes the key; then the frames are decoded,
    and the model is rebuilt only if they differ (int8_model's own key is their content)."""
    import onnxruntime
    stats = []
    for folder in traces:
        for f in sorted(Path(folder).iterdir()) if Path(folder).is_dir() else []:
            st = f.stat()  # follows the trace's links to the shared data
            stats.append(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}")
    memo = cache_dir() / "int8-index" / (content_hash(file_hash(Path(source)), QUANT_RECIPE, f"activations={activations}",
                                                      onnxruntime.__version__, str(size), str(frames), *stats) + ".txt")
    if memo.is_file():
        known = cache_dir() / memo.read_text().strip()
        if known.is_file():
            return known
    path = int8_model(source, blobs(), activations)
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(path.name)
    os.replace(tmp, memo)
    return path


def fp16_model(source: str | Path) -> Path:
    """fp16 weights and activations with fp32 inputs and outputs (for onnxruntime's CUDA provider)."""
    import onnxruntime
    from onnxruntime.transformers.float16 import convert_float_to_float16
    base = cpu_model(source)

    def build(out: Path) -> None:
        onnx.save(convert_float_to_float16(onnx.load(str(base)), keep_io_types=True), str(out))

    return cached_model(f"{Path(source).stem}-fp16", content_hash(file_hash(base), "fp16-v1",
                                                                 onnxruntime.__version__), build)
