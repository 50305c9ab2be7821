"""Read an ONNX file with one-line errors, and free its batch axis from constants frozen at export.

Exporters that trace `x.view(x.shape[0], ...)` with batch 1 write Reshape targets such as
`[1, 85, -1]`; batch N then silently mixes images. `free_batch_axis` rewrites such leading 1s
to ONNX's "copy this dimension" (0) so the same graph runs any batch on every runtime.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from streamflow_workers.errors import ModelLoadError


def load_onnx(model_path: str | Path) -> onnx.ModelProto:
    """Parse an ONNX file; a missing, empty or corrupt file raises ModelLoadError with one line."""
    path = Path(model_path)
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf DecodeError, checker ValidationError, OSError
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load model {path}: not a valid ONNX file ({reason[:120]})") from None
    if not model.graph.node:
        raise ModelLoadError(f"cannot load model {path}: the ONNX graph has no nodes")
    return model


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The graph's real inputs (older exporters also list initializers as inputs)."""
    inits = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    """The nodes reading each value, by value name."""
    found: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    """The node writing each value, by value name."""
    return {out: node for node in model.graph.node for out in node.output}


def drop_unused_initializers(model: onnx.ModelProto) -> None:
    """Remove initializers no node reads (in place), so runtimes do not warn about them."""
    used = {name for node in model.graph.node for name in node.input}
    kept = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


def constant_values(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Every value known before running: initializers and outputs of Constant nodes."""
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            attr = {a.name: a for a in node.attribute}
            if "value" not in attr:
                raise ModelLoadError(f"Constant node {node.name!r}: only the 'value' form is supported")
            values[node.output[0]] = numpy_helper.to_array(attr["value"].t)
    return values


def export_batch(model: onnx.ModelProto) -> int | None:
    """The fixed batch size the graph was exported with, or None if its batch axis is symbolic."""
    dims = graph_inputs(model)[0].type.tensor_type.shape.dim
    return dims[0].dim_value if dims and dims[0].HasField("dim_value") else None


def free_batch_axis(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a copy whose Reshape targets keep the runtime batch instead of the export's.

    A constant Reshape target whose first entry equals the export batch, applied to a tensor whose
    inferred leading dimension is that same export batch, is taken as batch-preserving and its
    first entry becomes 0 ("copy input dim 0"). Graph inputs get a symbolic batch dimension.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    batch = export_batch(model)
    if batch is None:
        return model
    inferred = onnx.shape_inference.infer_shapes(model)
    leading = {}
    for info in list(inferred.graph.value_info) + list(inferred.graph.input):
        dims = info.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value"):
            leading[info.name] = dims[0].dim_value
    consts = constant_values(model)
    for index, node in enumerate(model.graph.node):
        if node.op_type != "Reshape" or node.input[1] not in consts:
            continue
        target = consts[node.input[1]].astype(np.int64)
        if target.ndim != 1 or target.size < 2 or target[0] != batch or leading.get(node.input[0]) != batch:
            continue
        freed = target.copy()
        freed[0] = 0
        name = f"{node.input[1]}__batch_free_{index}"
        model.graph.initializer.append(numpy_helper.from_array(freed, name))
        node.input[1] = name
    for value in graph_inputs(model):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = "batch"
    return model


def dynamic_input(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose input and output dims are symbolic (`dim_param`): batch, height, width, anchors.

    The shipped YOLOX-nano was exported at 1 x 3 x 416 x 416; its Slices, Resizes and (freed)
    Reshapes follow the runtime tensor, so only the declared shapes pin it. onnxruntime checks
    inputs against them, so they are made symbolic and the stale inferred shapes dropped."""
    model = free_batch_axis(model)
    for value in graph_inputs(model):
        dims = value.type.tensor_type.shape.dim
        for index, name in ((2, "height"), (3, "width")):
            if len(dims) > index:
                dims[index].Clear()
                dims[index].dim_param = name
    for value in model.graph.output:  # YOLOX (batch, anchors, 85): the anchor count follows the input size
        dims = list(value.type.tensor_type.shape.dim)
        for index, dim in enumerate(dims[:2] if len(dims) == 3 else dims[:1]):
            dim.Clear()
            dim.dim_param = ("batch", "anchors")[index]
    del model.graph.value_info[:]
    drop_unused_initializers(model)
    return model


def conv_macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of all Conv nodes at the graph's declared input shape."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            out_shape = shapes[node.output[0]]
            total += int(np.prod(weights[node.input[1]])) * int(np.prod(out_shape[2:]))
    return total
