"""The on-camera filter tool end to end on a few highway frames, and its one-line error."""
from tools import filter_table


def test_filter_cuts_bytes_and_prints_the_count_error(tmp_path, data_dir, capsys):
    out, plot = tmp_path / "filter.md", tmp_path / "filter.png"
    code = filter_table.main(["--frames", "24", "--thresholds", "0.05", "--variant", "yolox_nano@256:ort",
                              "--reference", "yolox_nano@320:ort", "--out", str(out), "--plot", str(plot)])
    assert code == 0
    rows = [line for line in out.read_text().splitlines() if line.startswith("| none") or line.startswith("| +diff")]
    sent = [int(r.split("|")[2]) for r in rows]
    assert sent[0] == 24 and 0 < sent[1] < 24  # 60 frames/s: many frames barely change
    printed = capsys.readouterr().out
    assert "+diff0.05: bytes leaving the camera host" in printed and "count error" in printed
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_bad_threshold_is_one_line_exit_2(tmp_path, capsys):
    code = filter_table.main(["--thresholds", "1.5", "--out", str(tmp_path / "f.md"), "--plot", str(tmp_path / "f.png")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --thresholds: each must be in [0, 1)"
