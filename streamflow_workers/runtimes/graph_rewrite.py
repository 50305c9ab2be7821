"""Exact rewrites of an ONNX graph that let onnxruntime and OpenVINO run it faster on a CPU.

- A space-to-depth stem (YOLOv5/YOLOX "Focus": four stride-2 Slices concatenated on channels,
  then a KxK stride-1 Conv) is one 2Kx2K stride-2 Conv on the image: the same sums, without the
  slicing, the concat and the channel reorder onnxruntime adds for them (1.7 ms of 38 at 640).
- A Transpose that produces a graph output is left to numpy, where it is a free view: the
  runtime returns the pre-transpose tensor and the perm is kept in the model's metadata.

Each rewrite checks that its pattern matches exactly and otherwise leaves the graph alone.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from streamflow_workers.runtimes.onnx_graph import (constant_values, consumers, drop_unused_initializers, graph_inputs,
                                                     producers)

OUTPUT_PERM_KEY = "streamflow.output_perm"  # model metadata: "0,2,1" means out.transpose(0, 2, 1)


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _slice_chain(name: str, writers: dict[str, onnx.NodeProto], source: str) -> list[onnx.NodeProto] | None:
    """The Slice nodes from `source` to `name`, in order, if only Slices lie between them."""
    chain = []
    while name != source:
        node = writers.get(name)
        if node is None or node.op_type != "Slice":
            return None
        chain.append(node)
        name = node.input[0]
    return chain[::-1]


def _phases(model: onnx.ModelProto, concat: onnx.NodeProto, writers: dict[str, onnx.NodeProto], source: str,
            channels: int) -> list[tuple[int, int, int]] | None:
    """(channel, dy, dx) of each concat output channel if the concat is a 2x2 space-to-depth of
    `source`, found by running the slices on a probe whose values name their (c, y, x)."""
    from onnx.reference import ReferenceEvaluator
    chains = [_slice_chain(name, writers, source) for name in concat.input]
    if any(c is None or not c for c in chains):
        return None
    slices = [n for chain in chains for n in chain]
    consts = constant_values(model)
    needed = {i for n in slices for i in n.input[1:] if i}
    if not needed <= consts.keys():
        return None
    size = 8
    probe = np.arange(channels * size * size, dtype=np.float32).reshape(1, channels, size, size)
    graph = helper.make_graph(
        slices + [concat], "probe", [helper.make_tensor_value_info(source, onnx.TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info(concat.output[0], onnx.TensorProto.FLOAT, None)],
        [numpy_helper.from_array(consts[i], i) for i in sorted(needed)])
    probe_model = helper.make_model(graph, opset_imports=model.opset_import)
    out = ReferenceEvaluator(probe_model).run(None, {source: probe})[0]
    if out.shape != (1, 4 * channels, size // 2, size // 2):
        return None
    phases = []
    for k in range(out.shape[1]):
        c, rest = divmod(int(out[0, k, 0, 0]), size * size)
        dy, dx = divmod(rest, size)
        if dy > 1 or dx > 1 or not np.array_equal(out[0, k], probe[0, c, dy::2, dx::2]):
            return None
        phases.append((c, dy, dx))
    return phases if len(set(phases)) == len(phases) else None


def stem_as_conv(model: onnx.ModelProto) -> bool:
    """Replace a space-to-depth stem and its Conv by one stride-2 Conv on the input (in place).

    Conv output (Y, X) reads stem pixel (Y+i-P, X+j-P) of phase (c, dy, dx), i.e. image pixel
    (2Y + 2i+dy - 2P, 2X + 2j+dx - 2P): a 2Kx2K kernel, stride 2, padding 2P, with
    W'[o, c, 2i+dy, 2j+dx] = W[o, k, i, j]. Returns whether the graph changed."""
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        return False
    source = inputs[0].name
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 4 or not dims[1].HasField("dim_value"):
        return False
    channels = dims[1].dim_value
    readers, writers = consumers(model), producers(model)
    concat = next((n for n in model.graph.node if n.op_type == "Concat" and _attrs(n).get("axis") == 1
                   and len(n.input) == 4 and all(_slice_chain(i, writers, source) for i in n.input)), None)
    if concat is None:
        return False
    stem = _stem_values(concat, writers, source)
    users = readers.get(concat.output[0], [])
    if len(users) != 1 or users[0].op_type != "Conv" or any(
            r.output[0] not in stem for v in stem - {concat.output[0]} for r in readers.get(v, [])):
        return False  # the Conv must be the stem's only reader, and the slices must feed the stem only
    conv = users[0]
    attrs = _attrs(conv)
    weight = constant_values(model).get(conv.input[1])
    if weight is None or weight.ndim != 4 or weight.shape[1] != 4 * channels or weight.shape[2] != weight.shape[3]:
        return False
    k = weight.shape[2]
    pads = attrs.get("pads", [0, 0, 0, 0])
    if (attrs.get("group", 1) != 1 or attrs.get("strides", [1, 1]) != [1, 1] or attrs.get("dilations", [1, 1]) != [1, 1]
            or len(set(pads)) != 1 or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
        return False
    phases = _phases(model, concat, writers, source, channels)
    if phases is None:
        return False
    wide = np.zeros((weight.shape[0], channels, 2 * k, 2 * k), dtype=weight.dtype)
    for index, (c, dy, dx) in enumerate(phases):
        wide[:, c, dy::2, dx::2] = weight[:, index]
    name = f"{conv.input[1]}__stem_as_conv"
    model.graph.initializer.append(numpy_helper.from_array(wide, name))
    replacement = helper.make_node("Conv", [source, name, *conv.input[2:]], list(conv.output), name=f"{conv.name}_stem",
                                   kernel_shape=[2 * k, 2 * k], strides=[2, 2], pads=[2 * pads[0]] * 4)
    kept = []
    for node in model.graph.node:
        if node.name == conv.name:
            kept.append(replacement)
        elif node.output[0] not in stem:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    drop_unused_initializers(model)
    return True


def _stem_values(concat: onnx.NodeProto, writers: dict[str, onnx.NodeProto], source: str) -> set[str]:
    """The values the stem's Slices and Concat write."""
    values = {concat.output[0]}
    for name in concat.input:
        values.update(n.output[0] for n in _slice_chain(name, writers, source))
    return values


def output_transpose_to_numpy(model: onnx.ModelProto) -> bool:
    """Drop a Transpose that produces the (only) graph output; its perm goes to the metadata."""
    if len(model.graph.output) != 1:
        return False
    output = model.graph.output[0]
    readers, writers = consumers(model), producers(model)
    node = writers.get(output.name)
    if node is None or node.op_type != "Transpose" or readers.get(output.name):
        return False
    perm = list(_attrs(node).get("perm", []))
    producer = writers.get(node.input[0])
    if not perm or producer is None or len(readers.get(node.input[0], [])) != 1:
        return False  # the Transpose must be the only reader of what it transposes
    producer.output[list(producer.output).index(node.input[0])] = output.name
    model.graph.node.remove(node)
    dims = list(output.type.tensor_type.shape.dim)
    if len(dims) == len(perm):
        inverse = [dims[perm.index(axis)] for axis in range(len(perm))]
        copies = [onnx.TensorShapeProto.Dimension() for _ in inverse]
        for copy, dim in zip(copies, inverse):
            copy.CopyFrom(dim)
        del output.type.tensor_type.shape.dim[:]
        output.type.tensor_type.shape.dim.extend(copies)
    entry = model.metadata_props.add()
    entry.key, entry.value = OUTPUT_PERM_KEY, ",".join(map(str, perm))
    return True


def output_perm(path: str | Path) -> tuple[int, ...] | None:
    """The numpy transpose a runtime applies to the output of a model file rewritten above."""
    model = onnx.load(str(path), load_external_data=False)
    for entry in model.metadata_props:
        if entry.key == OUTPUT_PERM_KEY:
            return tuple(int(p) for p in entry.value.split(","))
    return None
