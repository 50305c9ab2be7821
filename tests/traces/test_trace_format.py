"""The trace folder format: validation errors name the file (and line), data round-trips."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from streamflow_traces.format import Trace, TraceError
from streamflow_traces.importer import import_video


@pytest.fixture
def trace_dir(tmp_path: Path, counter_video: Path) -> Path:
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,10,10,5,8,1,-1,-1,-1\n3,1,12,10,5,8,1,-1,-1,-1\n3,2,30,20,6,6,1,-1,-1,-1\n")
    import_video(counter_video, tmp_path / "trace", groundtruth=gt, class_label="car", start=1700000000.0)
    return tmp_path / "trace"


def test_open_exposes_meta_timestamps_and_groundtruth(trace_dir: Path) -> None:
    trace = Trace.open(trace_dir)
    assert trace.meta.frame_count == 20 and trace.meta.width == 64 and trace.meta.height == 48
    assert trace.meta.camera == "counter" and trace.meta.fps == 10.0
    assert trace.timestamps.dtype == np.float64
    np.testing.assert_allclose(trace.timestamps, 1700000000.0 + np.arange(20) / 10, rtol=0, atol=1e-6)
    gt = trace.groundtruth()
    assert sorted(gt) == list(range(20))
    np.testing.assert_allclose(gt[0], [[10, 10, 15, 18, 1, 2]])
    assert gt[1].shape == (0, 6)
    np.testing.assert_allclose(gt[2], [[12, 10, 17, 18, 1, 2], [30, 20, 36, 26, 2, 2]])
    assert trace.meta.groundtruth.has_ids and trace.meta.groundtruth.class_name == "car"


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no such trace folder"):
        Trace.open(tmp_path / "nope")


def test_missing_meta(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"meta\.json: missing"):
        Trace.open(tmp_path)


def test_missing_video(trace_dir: Path) -> None:
    (trace_dir / "counter.mp4").unlink()
    with pytest.raises(TraceError, match="counter.mp4: video file missing"):
        Trace.open(trace_dir)


def test_bad_json_line_names_file_and_line(trace_dir: Path) -> None:
    lines = (trace_dir / "frames.jsonl").read_text().splitlines()
    lines[4] = '{"index": 4, "ts": '
    (trace_dir / "frames.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceError) as err:
        Trace.open(trace_dir)
    message = str(err.value)
    assert "frames.jsonl:5: bad JSON" in message and "\n" not in message


def test_frame_count_mismatch(trace_dir: Path) -> None:
    lines = (trace_dir / "frames.jsonl").read_text().splitlines()
    (trace_dir / "frames.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(TraceError, match="19 frames, but meta.json says frame_count 20"):
        Trace.open(trace_dir)


def test_timestamps_must_not_go_back(trace_dir: Path) -> None:
    lines = (trace_dir / "frames.jsonl").read_text().splitlines()
    lines[3] = json.dumps({"index": 3, "ts": 1.0})
    (trace_dir / "frames.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceError, match="frames.jsonl:4: timestamp 1.0 goes back"):
        Trace.open(trace_dir)


def test_bad_meta_field(trace_dir: Path) -> None:
    meta = json.loads((trace_dir / "meta.json").read_text())
    del meta["fps"]
    (trace_dir / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(TraceError, match="meta.json: missing field 'fps'"):
        Trace.open(trace_dir)


def test_bad_annotation_line(trace_dir: Path) -> None:
    with (trace_dir / "annotations.jsonl").open("a") as fh:
        fh.write('{"index": 3, "boxes": [[1, 2, 3]]}\n')
    trace = Trace.open(trace_dir)
    with pytest.raises(TraceError, match=r"annotations.jsonl:21: boxes must be rows of 6"):
        trace.groundtruth()


def test_trace_without_groundtruth(tmp_path: Path, counter_video: Path) -> None:
    trace = import_video(counter_video, tmp_path / "t")
    assert not trace.has_groundtruth and trace.meta.groundtruth is None
    with pytest.raises(TraceError, match="no ground truth"):
        trace.groundtruth()


def test_trace_folder_is_relocatable(trace_dir: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere"
    shutil.move(str(trace_dir), moved)
    assert Trace.open(moved).frame_count == 20
