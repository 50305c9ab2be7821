"""Both runtimes: same interface, batch N equal to N single calls, one-line load errors."""
import numpy as np
import pytest

from workers.errors import ModelLoadError
from workers.runtimes import load_runtime

rng = np.random.default_rng(1)


@pytest.mark.parametrize("kind", ["opencv", "torch"])
def test_batch_equals_single_images(kind, yolox_path):
    runtime = load_runtime(kind, yolox_path, "cpu")
    blob = (rng.random((3, 3, 320, 320)) * 255).astype(np.float32)
    batched = runtime.infer(blob)
    singles = np.concatenate([runtime.infer(blob[i:i + 1]) for i in range(3)])
    assert batched.shape == (3, 2100, 85) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, singles, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["opencv", "torch"])
def test_osnet_batch_on_both_runtimes(kind, osnet_path):
    runtime = load_runtime(kind, osnet_path, "cpu")
    blob = rng.standard_normal((4, 3, 256, 128)).astype(np.float32)
    batched = runtime.infer(blob)
    assert batched.shape == (4, 512)
    np.testing.assert_allclose(batched, np.concatenate([runtime.infer(blob[i:i + 1]) for i in range(4)]),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["opencv", "torch"])
@pytest.mark.parametrize("content", [None, b"", b"\x08\x07not an onnx file at all\xff\xfe" * 50])
def test_missing_or_corrupt_model_is_one_line_error(kind, content, tmp_path):
    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelLoadError) as err:
        load_runtime(kind, path, "cpu")
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert message.startswith("model file not found" if content is None else "cannot load model")


def test_truncated_model_is_one_line_error(yolox_path, tmp_path):
    path = tmp_path / "truncated.onnx"
    path.write_bytes(yolox_path.read_bytes()[:100_000])
    for kind in ("opencv", "torch"):
        with pytest.raises(ModelLoadError) as err:
            load_runtime(kind, path, "cpu")
        assert "\n" not in str(err.value)


def test_unknown_runtime(yolox_path):
    with pytest.raises(ModelLoadError, match="unknown runtime 'tensorrt'"):
        load_runtime("tensorrt", yolox_path)


@pytest.mark.parametrize("kind", ["opencv", "torch"])
def test_cuda_without_gpu_runs_on_cpu(monkeypatch, caplog, osnet_path, kind):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    runtime = load_runtime(kind, osnet_path, "cuda:0")
    assert runtime.device == "cpu"
    assert "device cuda:0 requested but no GPU is available; running on cpu" in caplog.text
    assert runtime.infer(np.zeros((1, 3, 256, 128), np.float32)).shape == (1, 512)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")
def test_torch_runtime_on_cuda_matches_cpu(yolox_path):
    blob = (rng.random((2, 3, 320, 320)) * 255).astype(np.float32)
    cpu = load_runtime("torch", yolox_path, "cpu").infer(blob)
    gpu_runtime = load_runtime("torch", yolox_path, "cuda")
    assert gpu_runtime.device == "cuda:0"
    np.testing.assert_allclose(gpu_runtime.infer(blob), cpu, rtol=1e-2, atol=1e-2)
