"""Recording through cv2.VideoCapture from a file source: a valid trace, also after SIGINT."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from streamflow_traces.format import Trace, TraceError
from streamflow_traces.recorder import record
from streamflow_traces.replay import FrameReader

REPO = Path(__file__).resolve().parents[2]


def test_record_a_file_source(counter_video: Path, tmp_path: Path, frame_number) -> None:
    before = time.time()
    trace = record(str(counter_video), tmp_path / "rec", max_frames=12)
    after = time.time()
    assert trace.frame_count == 12 and (trace.meta.width, trace.meta.height) == (64, 48)
    assert before <= trace.timestamps[0] <= trace.timestamps[-1] <= after  # wall clock at grab
    assert np.all(np.diff(trace.timestamps) >= 0)
    assert trace.meta.fps == 10.0 and trace.meta.start == trace.timestamps[0]
    levels = [frame_number(f.image) for f in FrameReader(trace)]
    assert levels == list(range(12))  # the written video holds the recorded frames, in order


def test_record_until_the_source_ends(counter_video: Path, tmp_path: Path) -> None:
    trace = record(str(counter_video), tmp_path / "rec", fps_out=5.0)
    assert trace.frame_count == 20 and trace.meta.fps == 5.0
    assert len(list(FrameReader(trace))) == 20


def test_realtime_paces_a_file_source(counter_video: Path, tmp_path: Path) -> None:
    trace = record(str(counter_video), tmp_path / "rec", max_frames=4, realtime=True)
    steps = np.diff(trace.timestamps)
    assert np.all(steps >= 0.09)  # 10 fps: a grab waits for its slot (a lower bound, not a timing)


def test_record_errors(tmp_path: Path, counter_video: Path) -> None:
    with pytest.raises(TraceError, match="cannot open source"):
        record(str(tmp_path / "none.mp4"), tmp_path / "rec")
    with pytest.raises(TraceError, match="--max-frames 0"):
        record(str(counter_video), tmp_path / "rec", max_frames=0)


def test_sigint_ends_the_recording_with_a_valid_trace(data_dir: Path, tmp_path: Path) -> None:
    source = data_dir / "traces" / "pets09_s2l1_view001_480x360_10fps.avi"
    out = tmp_path / "rec"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "streamflow_traces.cli", "record", str(source), "-o", str(out),
                             "--realtime"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    frames = out / "frames.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not frames.exists() or len(frames.read_text().splitlines()) < 5):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    trace = Trace.open(out)
    assert 5 <= trace.frame_count < 795
    assert len(list(FrameReader(trace))) == trace.frame_count
    assert f"{trace.frame_count} frames" in stdout


def test_default_camera_ids() -> None:
    from streamflow_traces.recorder import default_camera
    assert default_camera("0") == "camera0" and default_camera(2) == "camera2"
    assert default_camera("rtsp://10.0.0.5:554/stream1") == "stream1"
    assert default_camera("http://cam.local/") == "cam.local"
    assert default_camera("/data/lobby.mp4") == "lobby"
