"""Importing videos: every shared clip, frame counts by decoding, ground truth, and bad inputs."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamflow_traces.catalog import match_groundtruth
from streamflow_traces.classes import class_index
from streamflow_traces.cli import main
from streamflow_traces.format import TraceError
from streamflow_traces.groundtruth import read_groundtruth
from streamflow_traces.importer import import_video, positions_are_sane, probe_video

# Frame counts from shared/data/README.md, except the highway AVI: its header claims 1700
# frames and FFmpeg decodes 1699 (checked against a direct decode below).
EXPECTED_FRAMES = {
    "pets09_s2l1_view001_480x360_10fps": 795, "tud_stadtmitte_640x480_25fps": 179,
    "ngsim_us101_cam1_640x480_3fps": 177, "ngsim_us101_cam2_640x480_3fps": 156,
    "ngsim_us101_cam3_640x480_3fps": 150, "ngsim_us101_cam4_640x480_3fps": 152,
    "gram_m30hd_1200x720_30fps": 93, "highway_bgslibrary_320x240_60fps": 1699,
}


def decoded_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def test_every_shared_clip_imports(imported: dict) -> None:
    assert set(imported) == set(EXPECTED_FRAMES)
    for name, (clip, trace) in imported.items():
        assert trace.frame_count == EXPECTED_FRAMES[name], name
        assert len(trace.timestamps) == trace.frame_count
        assert np.all(np.diff(trace.timestamps) > 0), name
        size = name.split("_")[-2]
        assert f"{trace.meta.width}x{trace.meta.height}" == size, name
        duration = (trace.frame_count - 1) / trace.meta.fps
        assert trace.duration == pytest.approx(duration, abs=1e-6), name


def test_frame_counts_match_a_direct_decode(imported: dict) -> None:
    for name in ("highway_bgslibrary_320x240_60fps", "tud_stadtmitte_640x480_25fps"):
        clip, trace = imported[name]
        assert trace.frame_count == decoded_frames(clip.video)
    assert imported["highway_bgslibrary_320x240_60fps"][1].meta.extra["container_frame_count"] == 1700


def test_groundtruth_matches_the_source_files(imported: dict) -> None:
    with_gt = {n: ct for n, ct in imported.items() if ct[0].groundtruth is not None}
    assert set(imported) - set(with_gt) == {"highway_bgslibrary_320x240_60fps"}
    for name, (clip, trace) in with_gt.items():
        expected = read_groundtruth(clip.groundtruth, class_index(clip.class_label))
        got = trace.groundtruth()
        assert len(got) == trace.frame_count
        for frame in range(trace.frame_count):
            want = expected.get(frame, np.zeros((0, 6)))
            assert got[frame].shape == want.shape, (name, frame)
            np.testing.assert_allclose(got[frame], want, atol=1e-3, err_msg=f"{name} frame {frame}")
    pets = imported["pets09_s2l1_view001_480x360_10fps"]
    assert pets[0].groundtruth.name == "pets09_s2l1_gt_mot15_480x360.txt"
    assert pets[1].meta.groundtruth.has_ids and pets[1].meta.groundtruth.class_name == "person"
    assert sum(len(b) for b in pets[1].groundtruth().values()) == 4476
    ngsim = imported["ngsim_us101_cam1_640x480_3fps"][1]
    assert ngsim.meta.groundtruth.format == "coco" and not ngsim.meta.groundtruth.has_ids
    assert {int(c) for b in ngsim.groundtruth().values() for c in b[:, 5]} == {class_index("car")}


def test_groundtruth_files_match_clips_by_name(data_dir: Path) -> None:
    gts = sorted((data_dir / "traces" / "gt").iterdir())
    folder = data_dir / "traces"
    assert match_groundtruth(folder / "pets09_s2l1_view001_480x360_10fps.avi", gts).name == \
        "pets09_s2l1_gt_mot15_480x360.txt"
    assert match_groundtruth(folder / "pets09_s2l1_view001_768x576_10fps.avi", gts).name == \
        "pets09_s2l1_gt_mot15_768x576.txt"
    assert match_groundtruth(folder / "tud_stadtmitte_640x480_25fps.mp4", gts).name == "tud_stadtmitte_gt_mot15.txt"
    assert match_groundtruth(folder / "ngsim_us101_cam3_640x480_3fps.mp4", gts).name == \
        "ngsim_us101_cam3_640x480_3fps_coco.json"
    assert match_groundtruth(folder / "highway_bgslibrary_320x240_60fps.avi", gts) is None


def test_groundtruth_of_another_resolution_is_rejected(data_dir: Path, tmp_path: Path) -> None:
    traces = data_dir / "traces"
    with pytest.raises(TraceError, match="outside the 480x360 video"):
        import_video(traces / "pets09_s2l1_view001_480x360_10fps.avi", tmp_path / "t",
                     groundtruth=traces / "gt" / "pets09_s2l1_gt_mot15_768x576.txt", class_label="person")
    assert not (tmp_path / "t" / "meta.json").exists()


def test_timestamps_from_fps_option_and_start(counter_video: Path, tmp_path: Path) -> None:
    trace = import_video(counter_video, tmp_path / "t", fps=4.0, start=100.5)
    np.testing.assert_allclose(trace.timestamps, 100.5 + np.arange(20) / 4.0)
    assert trace.meta.start == 100.5 and trace.meta.fps == 4.0


def test_container_positions_used_only_when_sane() -> None:
    assert positions_are_sane(np.arange(10) * 40.0, 25.0)
    avi_like = np.r_[np.arange(2, 10) * 100.0, 0.0, 0.0]  # read-ahead positions, 0 at the end
    assert not positions_are_sane(avi_like, 10.0)
    assert not positions_are_sane(np.arange(10) * 40.0, 10.0)  # disagrees with the frame rate


def test_groundtruth_beyond_the_video_is_rejected(counter_video: Path, tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("25,1,10,10,5,8,1,-1,-1,-1\n")
    with pytest.raises(TraceError, match="boxes on frame 25 but the video has 20 frames"):
        import_video(counter_video, tmp_path / "t", groundtruth=gt)


def test_existing_trace_needs_force(counter_video: Path, tmp_path: Path) -> None:
    import_video(counter_video, tmp_path / "t")
    with pytest.raises(TraceError, match="already holds a trace"):
        import_video(counter_video, tmp_path / "t")
    assert import_video(counter_video, tmp_path / "t", force=True, fps=5).meta.fps == 5


@pytest.mark.parametrize("content", [b"", b"not a video at all\n" * 100])
def test_unreadable_video(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(TraceError, match="bad.mp4: cannot open video"):
        probe_video(bad)


def test_truncated_mp4_is_corrupt(counter_video: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(counter_video.read_bytes()[: counter_video.stat().st_size // 2])
    with pytest.raises(TraceError, match="cut.mp4: cannot open video"):
        import_video(cut, tmp_path / "t")


def test_cli_import_and_info(counter_video: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["import", str(counter_video), "-o", str(tmp_path / "t"), "--camera", "cam7"]) == 0
    assert "20 frames" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "t")]) == 0
    out = capsys.readouterr().out
    assert "cam7" in out and "64x48" in out and "ground truth  none" in out


def test_cli_errors_are_one_line_exit_2(tmp_path: Path, counter_video: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"\x00" * 4096)
    cases = [["info", str(tmp_path / "missing")],
             ["import", str(bad), "-o", str(tmp_path / "t")],
             ["import", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "t")],
             ["import", str(bad)],
             ["import", str(counter_video), "-o", str(tmp_path / "t"), "--class", "unicorn"],
             ["import", str(counter_video), "-o", str(tmp_path / "t"), "--fps", "-3"],
             ["record", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "r")],
             ["frobnicate"]]
    for argv in cases:
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, captured.err)


def test_link_instead_of_copy(counter_video: Path, tmp_path: Path) -> None:
    trace = import_video(counter_video, tmp_path / "deep" / "t", link=True)
    assert trace.video_path.is_symlink() and not Path(trace.video_path.readlink()).is_absolute()
    assert trace.video_path.resolve() == counter_video.resolve()
    assert probe_video(trace.video_path).frame_count == 20
