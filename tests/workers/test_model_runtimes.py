"""Every runtime: same interface, batch N equal to N single calls, one-line load errors, CUDA fallback."""
import numpy as np
import pytest

from streamflow_workers.errors import ModelLoadError
from streamflow_workers.runtimes import RUNTIMES, load_runtime

rng = np.random.default_rng(1)


@pytest.mark.parametrize("kind", RUNTIMES)
def test_batch_equals_single_images(kind, yolox_path):
    runtime = load_runtime(kind, yolox_path, "cpu")
    blob = (rng.random((3, 3, 320, 320)) * 255).astype(np.float32)
    batched = runtime.infer(blob)
    singles = np.concatenate([runtime.infer(blob[i:i + 1]) for i in range(3)])
    assert batched.shape == (3, 2100, 85) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, singles, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", RUNTIMES)
def test_osnet_batch_on_every_runtime(kind, osnet_path):
    runtime = load_runtime(kind, osnet_path, "cpu")
    blob = rng.standard_normal((4, 3, 256, 128)).astype(np.float32)
    batched = runtime.infer(blob)
    assert batched.shape == (4, 512)
    np.testing.assert_allclose(batched, np.concatenate([runtime.infer(blob[i:i + 1]) for i in range(4)]),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", RUNTIMES)
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
    for kind in RUNTIMES:
        with pytest.raises(ModelLoadError) as err:
            load_runtime(kind, path, "cpu")
        assert "\n" not in str(err.value)


def test_unknown_runtime(yolox_path):
    with pytest.raises(ModelLoadError, match="unknown runtime 'tensorrt'"):
        load_runtime("tensorrt", yolox_path)


@pytest.mark.parametrize("kind", RUNTIMES)
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


@pytest.mark.parametrize("kind, line", [
    ("onnxruntime", "device cuda:0 requested but this onnxruntime build has no CUDA provider "
                    "(install onnxruntime-gpu); running on cpu"),
    ("openvino", "device cuda:0 requested but OpenVINO sees no GPU device; running on cpu")])
def test_gpu_host_without_the_runtimes_gpu_build_runs_on_cpu(monkeypatch, caplog, osnet_path, kind, line):
    """torch sees a GPU, the runtime cannot use it: one line, then CPU."""
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    runtime = load_runtime(kind, osnet_path, "cuda:0")
    assert runtime.device == "cpu" and caplog.text.count("running on cpu") == 1 and line in caplog.text


@pytest.mark.parametrize("kind", RUNTIMES)
def test_fp16_on_cpu_says_so_and_runs_fp32(caplog, yolox_path, kind):
    blob = (rng.random((1, 3, 320, 320)) * 255).astype(np.float32)
    fp32 = load_runtime(kind, yolox_path, "cpu").infer(blob)
    half = load_runtime(kind, yolox_path, "cpu", "fp16")
    assert "fp16 runs on a GPU only; running fp32 on cpu" in caplog.text
    np.testing.assert_allclose(half.infer(blob), fp32, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("kind", ["onnxruntime", "openvino"])
def test_any_multiple_of_32_gives_the_same_raw_head_as_cv2(yolox_path, kind):
    """The one ONNX file (exported at 416) at 288 and 544: symbolic dims, same numbers as cv2.dnn."""
    runtime, reference = load_runtime(kind, yolox_path), load_runtime("opencv", yolox_path)
    for size in (288, 544):
        blob = (rng.random((2, 3, size, size)) * 255).astype(np.float32)
        out = runtime.infer(blob)
        assert out.shape == (2, sum((size // s) ** 2 for s in (8, 16, 32)), 85)
        np.testing.assert_allclose(out, reference.infer(blob), rtol=1e-3, atol=2e-3)


def test_derived_models_live_in_the_cache_under_a_content_hash(yolox_path, tmp_path, monkeypatch):
    from streamflow_workers.runtimes.derived import dynamic_model
    monkeypatch.setenv("STREAMFLOW_CACHE", str(tmp_path))
    before = yolox_path.read_bytes()
    path = dynamic_model(yolox_path)
    assert path.parent == tmp_path / "models" and path.name.startswith("yolox_nano-dynamic-")
    assert dynamic_model(yolox_path) == path and yolox_path.read_bytes() == before  # cached; data untouched
