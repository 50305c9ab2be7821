"""The int8 model of a set of calibration traces is found again without decoding their frames,
and found anew when a trace file changes (streamflow_workers.runtimes.derived)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from streamflow_workers.runtimes import derived


def test_a_known_int8_model_is_found_without_decoding_frames(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STREAMFLOW_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "model.onnx"
    source.write_bytes(b"onnx bytes")
    trace = tmp_path / "cam"
    trace.mkdir()
    (trace / "meta.json").write_text("{}")
    (trace / "video.mp4").write_bytes(b"frames")
    built: list[int] = []

    def quantise(src, blobs, activations=True):  # the real quantisation is tested with the detectors; here, its name
        built.append(len(blobs))
        out = derived.cache_dir() / f"model-int8-{len(built)}.onnx"
        out.write_bytes(b"int8")
        return out
    monkeypatch.setattr(derived, "int8_model", quantise)
    decoded: list[int] = []

    def blobs() -> list[np.ndarray]:
        decoded.append(1)
        return [np.zeros((1, 3, 32, 32), np.float32)]
    first = derived.int8_model_of_traces(source, 32, [str(trace)], 16, blobs)
    again = derived.int8_model_of_traces(source, 32, [str(trace)], 16, blobs)
    assert first == again and decoded == [1] and built == [1]
    assert derived.int8_model_of_traces(source, 64, [str(trace)], 16, blobs) != first  # another size
    assert derived.int8_model_of_traces(source, 32, [str(trace)], 16, blobs, activations=False) != first  # recipe
    st = (trace / "video.mp4").stat()
    os.utime(trace / "video.mp4", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the trace changed
    changed = derived.int8_model_of_traces(source, 32, [str(trace)], 16, blobs)
    assert len(decoded) == 4
    Path(changed).unlink()  # the model file itself is gone: built again
    derived.int8_model_of_traces(source, 32, [str(trace)], 16, blobs)
    assert len(decoded) == 5
