"""Convert an ONNX graph into a torch.nn.Module that executes it node by node with torch ops.

Covers the operators YOLOX-nano (opset 11) and OSNet-x0.25 (opset 12) use. Weights become module
buffers (so `.to(device)` moves them); shape-like operands (Reshape targets, Slice bounds,
Resize scales, Pad widths) must be constants and are read once at conversion, while every shape
they produce is computed from the runtime tensor: batch and input size stay free. In YOLOX-nano
the Focus Slices end at INT64_MAX and the two Resizes use scales (2, 2), so both follow the input;
its three head Reshapes froze batch 1 ([1, 85, -1]) and are freed to [0, 85, -1] before conversion.
Sigmoid(x) * x pairs run as one fused SiLU.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper

from streamflow_workers.errors import ModelLoadError
from streamflow_workers.runtimes.onnx_graph import constant_values, free_batch_axis, graph_inputs

_INT64_MAX = np.iinfo(np.int64).max


class UnsupportedOnnxError(ModelLoadError):
    """The graph uses an operator or attribute value this converter does not implement."""


@dataclass
class _Step:
    """One node ready to run: tensor inputs by name, outputs by name, and the torch function."""

    op_type: str
    inputs: list[str]
    outputs: list[str]
    fn: Callable[..., torch.Tensor]


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _spatial_padding(pads: list[int], node: onnx.NodeProto) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """ONNX pads (begin..., end...) -> symmetric torch padding, or an explicit F.pad tuple."""
    half = len(pads) // 2
    begin, end = pads[:half], pads[half:]
    if begin == end:
        return tuple(begin), None
    explicit: list[int] = []
    for b, e in zip(reversed(begin), reversed(end)):
        explicit += [b, e]
    return (0,) * half, tuple(explicit)


def _check_auto_pad(node: onnx.NodeProto, attrs: dict) -> None:
    if _text(attrs.get("auto_pad", "NOTSET")) != "NOTSET":
        raise UnsupportedOnnxError(f"{node.op_type} node {node.name!r}: auto_pad is not supported")


def _conv(node, attrs, consts):
    _check_auto_pad(node, attrs)
    kernel = attrs.get("kernel_shape")
    if kernel is not None and len(kernel) != 2:
        raise UnsupportedOnnxError(f"Conv node {node.name!r}: only 2-d convolution is supported")
    stride = tuple(attrs.get("strides", [1, 1]))
    dilation = tuple(attrs.get("dilations", [1, 1]))
    groups = attrs.get("group", 1)
    padding, explicit = _spatial_padding(list(attrs.get("pads", [0, 0, 0, 0])), node)

    def conv(x, w, b=None):
        if explicit is not None:
            x = F.pad(x, explicit)
        return F.conv2d(x, w, b, stride, padding, dilation, groups)

    return conv, node.input


def _max_pool(node, attrs, consts):
    _check_auto_pad(node, attrs)
    if len(node.output) > 1 and node.output[1]:
        raise UnsupportedOnnxError(f"MaxPool node {node.name!r}: the Indices output is not supported")
    kernel = tuple(attrs["kernel_shape"])
    stride = tuple(attrs.get("strides", [1] * len(kernel)))
    dilation = tuple(attrs.get("dilations", [1] * len(kernel)))
    ceil = bool(attrs.get("ceil_mode", 0))
    padding, explicit = _spatial_padding(list(attrs.get("pads", [0] * 2 * len(kernel))), node)

    def max_pool(x):
        if explicit is not None:
            x = F.pad(x, explicit, value=float("-inf"))
        return F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode=ceil)

    return max_pool, node.input[:1]


def _average_pool(node, attrs, consts):
    _check_auto_pad(node, attrs)
    kernel = tuple(attrs["kernel_shape"])
    stride = tuple(attrs.get("strides", [1] * len(kernel)))
    ceil = bool(attrs.get("ceil_mode", 0))
    include_pad = bool(attrs.get("count_include_pad", 0))
    padding, explicit = _spatial_padding(list(attrs.get("pads", [0] * 2 * len(kernel))), node)
    if explicit is not None:
        raise UnsupportedOnnxError(f"AveragePool node {node.name!r}: asymmetric pads are not supported")

    def average_pool(x):
        return F.avg_pool2d(x, kernel, stride, padding, ceil_mode=ceil, count_include_pad=include_pad)

    return average_pool, node.input[:1]


def _const_operand(node, consts, position, what):
    if position >= len(node.input) or not node.input[position]:
        return None
    name = node.input[position]
    if name not in consts:
        raise UnsupportedOnnxError(f"{node.op_type} node {node.name!r}: {what} must be a constant in this converter")
    return consts[name]


def _reshape(node, attrs, consts):
    target = [int(v) for v in _const_operand(node, consts, 1, "the target shape")]
    if attrs.get("allowzero", 0):
        raise UnsupportedOnnxError(f"Reshape node {node.name!r}: allowzero=1 is not supported")

    def reshape(x):
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(target)]
        return x.reshape(shape)

    return reshape, node.input[:1]


def _slice(node, attrs, consts):
    if "starts" in attrs:  # opset < 10 carries bounds as attributes
        starts, ends = attrs["starts"], attrs["ends"]
        axes = attrs.get("axes", list(range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts = _const_operand(node, consts, 1, "starts").tolist()
        ends = _const_operand(node, consts, 2, "ends").tolist()
        axes_v = _const_operand(node, consts, 3, "axes")
        steps_v = _const_operand(node, consts, 4, "steps")
        axes = axes_v.tolist() if axes_v is not None else list(range(len(starts)))
        steps = steps_v.tolist() if steps_v is not None else [1] * len(starts)
    if any(s <= 0 for s in steps):
        raise UnsupportedOnnxError(f"Slice node {node.name!r}: only positive steps are supported")
    bounds = [(a, s, None if e >= _INT64_MAX // 2 else e, st) for a, s, e, st in zip(axes, starts, ends, steps)]

    def slice_(x):
        index = [slice(None)] * x.dim()
        for axis, start, end, step in bounds:
            index[axis] = slice(start, end, step)
        return x[tuple(index)]

    return slice_, node.input[:1]


def _resize(node, attrs, consts):
    mode = _text(attrs.get("mode", "nearest"))
    transform = _text(attrs.get("coordinate_transformation_mode", "half_pixel"))
    nearest = _text(attrs.get("nearest_mode", "round_prefer_floor"))
    if mode != "nearest" or transform != "asymmetric" or nearest != "floor":
        raise UnsupportedOnnxError(
            f"Resize node {node.name!r}: only mode=nearest, asymmetric, floor is supported "
            f"(got {mode}, {transform}, {nearest})")
    scales = _const_operand(node, consts, 2, "scales")
    sizes = _const_operand(node, consts, 3, "sizes")
    if scales is not None and scales.size:
        if scales.size != 4 or scales[0] != 1 or scales[1] != 1:
            raise UnsupportedOnnxError(f"Resize node {node.name!r}: only spatial scales of a 4-d tensor are supported")
        factor = (float(scales[2]), float(scales[3]))

        def resize(x):  # torch 'nearest' is ONNX asymmetric + floor
            return F.interpolate(x, scale_factor=factor, mode="nearest")
    elif sizes is not None and sizes.size == 4:
        size = (int(sizes[2]), int(sizes[3]))

        def resize(x):
            return F.interpolate(x, size=size, mode="nearest")
    else:
        raise UnsupportedOnnxError(f"Resize node {node.name!r}: needs constant scales or sizes")
    return resize, node.input[:1]


def _pad(node, attrs, consts):
    mode = _text(attrs.get("mode", "constant"))
    if mode != "constant":
        raise UnsupportedOnnxError(f"Pad node {node.name!r}: only constant padding is supported")
    pads = attrs["pads"] if "pads" in attrs else _const_operand(node, consts, 1, "pads").tolist()
    value = _const_operand(node, consts, 2, "the constant value")
    fill = float(value.reshape(-1)[0]) if value is not None and value.size else float(attrs.get("value", 0.0))
    half = len(pads) // 2
    explicit: list[int] = []
    for b, e in zip(reversed(pads[:half]), reversed(pads[half:])):
        explicit += [int(b), int(e)]

    def pad(x):
        return F.pad(x, explicit, value=fill) if any(explicit) else x

    return pad, node.input[:1]


def _gemm(node, attrs, consts):
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    trans_a, trans_b = bool(attrs.get("transA", 0)), bool(attrs.get("transB", 0))

    def gemm(a, b, c=None):
        a = a.t() if trans_a else a
        b = b.t() if trans_b else b
        y = alpha * (a @ b) if alpha != 1.0 else a @ b
        return y if c is None else y + (beta * c if beta != 1.0 else c)

    return gemm, node.input


def _batch_norm(node, attrs, consts):
    eps = float(attrs.get("epsilon", 1e-5))
    if len(node.output) > 1 and any(node.output[1:]):
        raise UnsupportedOnnxError(f"BatchNormalization node {node.name!r}: training outputs are not supported")

    def batch_norm(x, scale, bias, mean, var):
        return F.batch_norm(x, mean, var, scale, bias, training=False, eps=eps)

    return batch_norm, node.input


def _concat(node, attrs, consts):
    axis = attrs["axis"]
    return (lambda *xs: torch.cat(xs, dim=axis)), node.input


def _transpose(node, attrs, consts):
    perm = attrs.get("perm")
    return (lambda x: x.permute(*perm) if perm else x.permute(*reversed(range(x.dim())))), node.input


def _global_average_pool(node, attrs, consts):
    return (lambda x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True)), node.input


def _silu_pairs(nodes: list[onnx.NodeProto], graph_outputs: set[str]) -> dict[int, int]:
    """Sigmoid(x) feeding only Mul(x, sigmoid) is SiLU: map Mul index -> Sigmoid index to fuse."""
    consumers: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        for name in node.input:
            consumers.setdefault(name, []).append(i)
    pairs = {}
    for i, node in enumerate(nodes):
        if node.op_type != "Sigmoid" or node.output[0] in graph_outputs:
            continue
        users = consumers.get(node.output[0], [])
        if len(users) != 1:
            continue
        mul = nodes[users[0]]
        if mul.op_type == "Mul" and sorted(mul.input) == sorted([node.input[0], node.output[0]]):
            pairs[users[0]] = i
    return pairs


def _elementwise(fn):
    return lambda node, attrs, consts: (fn, node.input)


_BUILDERS = {
    "Conv": _conv,
    "MaxPool": _max_pool,
    "AveragePool": _average_pool,
    "GlobalAveragePool": _global_average_pool,
    "Reshape": _reshape,
    "Slice": _slice,
    "Resize": _resize,
    "Pad": _pad,
    "Gemm": _gemm,
    "BatchNormalization": _batch_norm,
    "Concat": _concat,
    "Transpose": _transpose,
    "Sigmoid": _elementwise(torch.sigmoid),
    "Relu": _elementwise(torch.relu),
    "Mul": _elementwise(torch.mul),
    "Add": _elementwise(torch.add),
}
SUPPORTED_OPS = frozenset(_BUILDERS) | {"Constant"}


class OnnxModule(torch.nn.Module):
    """Runs a converted ONNX graph; call it with the graph inputs as tensors (NCHW float32)."""

    def __init__(self, model: onnx.ModelProto):
        super().__init__()
        model = free_batch_axis(model)
        unsupported = sorted({n.op_type for n in model.graph.node} - SUPPORTED_OPS)
        if unsupported:
            raise UnsupportedOnnxError(f"ONNX operators not supported by the torch converter: {', '.join(unsupported)}")
        consts = constant_values(model)
        self.input_names = [i.name for i in graph_inputs(model)]
        self.output_names = [o.name for o in model.graph.output]
        self._steps: list[_Step] = []
        self._buffer_of: dict[str, str] = {}
        nodes = list(model.graph.node)
        silu = _silu_pairs(nodes, set(self.output_names))
        fused_sigmoids = set(silu.values())
        for index, node in enumerate(nodes):
            if node.op_type == "Constant" or index in fused_sigmoids:
                continue
            if index in silu:
                self._steps.append(_Step("SiLU", [nodes[silu[index]].input[0]], [node.output[0]], F.silu))
                continue
            fn, tensor_inputs = _BUILDERS[node.op_type](node, _attrs(node), consts)
            names = [n for n in tensor_inputs]
            for name in names:
                if name and name in consts and name not in self._buffer_of:
                    buffer = f"c{len(self._buffer_of)}"
                    array = consts[name]
                    tensor = torch.from_numpy(np.array(array, dtype=np.float32 if array.dtype == np.float64 else array.dtype))
                    self.register_buffer(buffer, tensor)
                    self._buffer_of[name] = buffer
            self._steps.append(_Step(node.op_type, names, [o for o in node.output], fn))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.input_names):
            raise TypeError(f"expected {len(self.input_names)} input(s) {self.input_names}, got {len(inputs)}")
        env: dict[str, torch.Tensor] = dict(zip(self.input_names, inputs))
        for name, buffer in self._buffer_of.items():
            env[name] = getattr(self, buffer)
        for step in self._steps:
            args = [env[n] for n in step.inputs if n]
            env[step.outputs[0]] = step.fn(*args)
        outputs = tuple(env[n] for n in self.output_names)
        return outputs[0] if len(outputs) == 1 else outputs


def convert(model: onnx.ModelProto) -> OnnxModule:
    """Build the torch module for an ONNX model (unsupported op -> UnsupportedOnnxError, one line)."""
    return OnnxModule(model).eval()
