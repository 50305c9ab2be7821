"""Exact CPU rewrites of ONNX graphs: a space-to-depth stem becomes one stride-2 Conv, an output
Transpose is left to numpy; both give the original numbers, and anything else is left alone."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from streamflow_workers.runtimes.graph_rewrite import output_perm, output_transpose_to_numpy, stem_as_conv

rng = np.random.default_rng(3)
PHASES = [(0, 0), (1, 0), (0, 1), (1, 1)]  # YOLOX's Focus order: (dy, dx) of each concatenated slice


def focus_model(phases=PHASES, step=2, kernel=3, transpose=True) -> onnx.ModelProto:
    """Image -> four double Slices (rows, then columns) -> Concat -> Conv -> (Transpose) -> output."""
    inits = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
             (("zero", [0]), ("one", [1]), ("end", [2 ** 62]), ("ax2", [2]), ("ax3", [3]), ("step", [step]))]
    nodes, parts = [], []
    for k, (dy, dx) in enumerate(phases):
        nodes.append(helper.make_node("Slice", ["img", ("zero", "one")[dy], "end", "ax2", "step"], [f"r{k}"]))
        nodes.append(helper.make_node("Slice", [f"r{k}", ("zero", "one")[dx], "end", "ax3", "step"], [f"s{k}"]))
        parts.append(f"s{k}")
    nodes.append(helper.make_node("Concat", parts, ["stem"], axis=1))
    weight = rng.standard_normal((5, 12, kernel, kernel)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    inits += [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")]
    pad = kernel // 2
    nodes.append(helper.make_node("Conv", ["stem", "w", "b"], ["conv"], kernel_shape=[kernel, kernel],
                                  pads=[pad] * 4, name="conv0"))
    nodes.append(helper.make_node("Transpose", ["conv"], ["out"], perm=[0, 2, 3, 1]) if transpose
                 else helper.make_node("Identity", ["conv"], ["out"]))
    image = helper.make_tensor_value_info("img", TensorProto.FLOAT, ["n", 3, "h", "w"])
    graph = helper.make_graph(nodes, "focus", [image], [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def run(model: onnx.ModelProto, image: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"img": image})[0]


@pytest.mark.parametrize("phases", [PHASES, [(1, 1), (0, 0), (0, 1), (1, 0)]])
@pytest.mark.parametrize("kernel", [1, 3])
def test_stem_becomes_one_stride_2_conv_with_the_same_output(phases, kernel):
    model = focus_model(phases, kernel=kernel, transpose=False)
    image = (rng.random((2, 3, 32, 48)) * 255).astype(np.float32)
    expected = run(model, image)
    assert stem_as_conv(model)
    assert [n.op_type for n in model.graph.node] == ["Conv", "Identity"]
    conv = model.graph.node[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    assert conv.input[0] == "img" and attrs["strides"] == [2, 2] and attrs["kernel_shape"] == [2 * kernel] * 2
    assert {t.name for t in model.graph.initializer} == {"w__stem_as_conv", "b"}  # the slice constants are gone
    np.testing.assert_allclose(run(model, image), expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("change", [dict(step=3), dict(phases=[(0, 0), (1, 0), (0, 1), (0, 0)])])
def test_anything_but_a_2x2_space_to_depth_is_left_alone(change):
    model = focus_model(**change)
    before = model.SerializeToString()
    assert not stem_as_conv(model)
    assert model.SerializeToString() == before


def test_output_transpose_is_left_to_numpy_as_a_view(tmp_path):
    model = focus_model()
    image = (rng.random((1, 3, 16, 16)) * 255).astype(np.float32)
    expected = run(model, image)
    assert output_transpose_to_numpy(model) and stem_as_conv(model)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    perm = output_perm(path)
    assert perm == (0, 2, 3, 1)
    raw = run(model, image)
    np.testing.assert_allclose(raw.transpose(perm), expected, rtol=1e-4, atol=1e-3)
    assert not output_transpose_to_numpy(model)  # nothing left to drop
