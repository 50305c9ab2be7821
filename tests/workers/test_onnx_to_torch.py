"""The converter against ONNX's reference evaluator (op by op) and against cv2.dnn (whole models)."""
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from streamflow_workers.runtimes.onnx_graph import constant_values, free_batch_axis, load_onnx
from streamflow_workers.runtimes.onnx_to_torch import UnsupportedOnnxError, convert

rng = np.random.default_rng(0)


def single_node_model(node, x_shape, initializers=(), opset=13):
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    graph = helper.make_graph([node], "g", inputs, outputs,
                              [numpy_helper.from_array(a, n) for n, a in initializers])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def run_both(model, x):
    expected = ReferenceEvaluator(model).run(None, {"x": x})[0]
    with torch.inference_mode():
        got = convert(model)(torch.from_numpy(x)).numpy()
    return expected, got


CASES = {
    "conv_asymmetric_pads_groups": (
        helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1, 0, 2, 1],
                         strides=[2, 1], group=2),
        (1, 4, 9, 8),
        [("w", rng.standard_normal((6, 2, 3, 3)).astype(np.float32)), ("b", rng.standard_normal(6).astype(np.float32))]),
    "maxpool": (helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[5, 5], pads=[2, 2, 2, 2], strides=[1, 1]),
                (2, 3, 8, 8), []),
    "maxpool_asymmetric": (helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], pads=[0, 0, 1, 1],
                                            strides=[2, 2]), (1, 2, 7, 7), []),
    "averagepool": (helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2]),
                    (1, 3, 8, 6), []),
    "global_average_pool": (helper.make_node("GlobalAveragePool", ["x"], ["y"]), (2, 5, 4, 3), []),
    "slice_steps": (helper.make_node("Slice", ["x", "s", "e", "a", "t"], ["y"]), (1, 3, 8, 8),
                    [("s", np.array([0, 1], np.int64)), ("e", np.array([2**63 - 1, 7], np.int64)),
                     ("a", np.array([2, 3], np.int64)), ("t", np.array([2, 2], np.int64))]),
    "reshape_copy_and_infer": (helper.make_node("Reshape", ["x", "s"], ["y"]), (2, 4, 3, 5),
                               [("s", np.array([0, 4, -1], np.int64))]),
    "transpose": (helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1]), (2, 3, 4, 5), []),
    "pad": (helper.make_node("Pad", ["x", "p"], ["y"], mode="constant"), (1, 2, 3, 3),
            [("p", np.array([0, 0, 1, 2, 0, 0, 3, 0], np.int64))]),
    "sigmoid": (helper.make_node("Sigmoid", ["x"], ["y"]), (2, 3, 4, 4), []),
    "relu": (helper.make_node("Relu", ["x"], ["y"]), (2, 3, 4, 4), []),
    "add_broadcast": (helper.make_node("Add", ["x", "c"], ["y"]), (2, 3, 4, 4),
                      [("c", rng.standard_normal((3, 1, 1)).astype(np.float32))]),
    "mul_broadcast": (helper.make_node("Mul", ["x", "c"], ["y"]), (2, 3, 4, 4),
                      [("c", rng.standard_normal((1, 4)).astype(np.float32))]),
    "gemm_transb": (helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1, alpha=0.5, beta=2.0), (3, 6),
                    [("w", rng.standard_normal((4, 6)).astype(np.float32)), ("b", rng.standard_normal(4).astype(np.float32))]),
    "batchnorm": (helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], epsilon=1e-3), (2, 5, 3, 3),
                  [("g", rng.random(5).astype(np.float32)), ("b", rng.random(5).astype(np.float32)),
                   ("m", rng.random(5).astype(np.float32)), ("v", rng.random(5).astype(np.float32) + 0.5)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_single_operator_matches_onnx_reference(case):
    node, shape, inits = CASES[case]
    x = rng.standard_normal(shape).astype(np.float32)
    # the reference evaluator reads BatchNormalization < 14 as training mode; 15 states inference
    opset = 15 if case == "batchnorm" else 13
    expected, got = run_both(single_node_model(node, shape, inits, opset), x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_resize_nearest_asymmetric_floor_doubles():
    node = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], mode="nearest",
                            coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    model = single_node_model(node, (1, 2, 3, 5), [("roi", np.zeros(0, np.float32)),
                                                   ("scales", np.array([1, 1, 2, 2], np.float32))], opset=11)
    x = rng.standard_normal((1, 2, 3, 5)).astype(np.float32)
    expected, got = run_both(model, x)
    np.testing.assert_array_equal(got, expected)


def test_silu_pattern_is_fused_and_exact():
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    module = convert(model)
    assert [s.op_type for s in module._steps] == ["SiLU"]
    x = rng.standard_normal((2, 3)).astype(np.float32)
    expected, got = run_both(model, x)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_unknown_operator_is_a_clear_one_line_error():
    model = single_node_model(helper.make_node("Softmax", ["x"], ["y"]), (2, 3))
    with pytest.raises(UnsupportedOnnxError) as err:
        convert(model)
    assert str(err.value) == "ONNX operators not supported by the torch converter: Softmax"


def test_unsupported_attribute_is_a_clear_error():
    node = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], mode="linear")
    model = single_node_model(node, (1, 1, 2, 2), [("roi", np.zeros(0, np.float32)),
                                                   ("scales", np.array([1, 1, 2, 2], np.float32))], opset=11)
    with pytest.raises(UnsupportedOnnxError, match="only mode=nearest"):
        convert(model)


def test_frozen_batch_reshapes_are_freed(yolox_path, osnet_path):
    for path, frozen in ((yolox_path, [1, 85, -1]), (osnet_path, [1, -1])):
        model = load_onnx(path)
        consts = constant_values(model)
        before = [consts[n.input[1]].tolist() for n in model.graph.node if n.op_type == "Reshape"]
        assert all(t == frozen for t in before)
        freed = free_batch_axis(model)
        consts = constant_values(freed)
        after = [consts[n.input[1]].tolist() for n in freed.graph.node if n.op_type == "Reshape"]
        assert all(t == [0] + frozen[1:] for t in after)


def test_yolox_module_runs_any_batch_and_size_like_opencv(yolox_path):
    import cv2

    model = load_onnx(yolox_path)
    net = cv2.dnn.readNetFromONNX(np.frombuffer(free_batch_axis(model).SerializeToString(), np.uint8))
    module = convert(model)
    for shape in ((2, 3, 320, 320), (1, 3, 256, 384)):
        x = (rng.random(shape) * 255).astype(np.float32)
        with torch.inference_mode():
            got = module(torch.from_numpy(x)).numpy()
        net.setInput(x)
        expected = net.forward()
        anchors = sum((shape[2] // s) * (shape[3] // s) for s in (8, 16, 32))
        assert got.shape == expected.shape == (shape[0], anchors, 85)
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)
