"""The detect table tool end to end on a few frames, and its one-line error."""
from tools import detect_table


def test_table_and_plot_are_written(tmp_path, ngsim, yolox_path, capsys, monkeypatch):
    monkeypatch.setenv("STREAMFLOW_CACHE", str(tmp_path / "cache"))
    out, plot = tmp_path / "table.md", tmp_path / "plot.png"
    code = detect_table.main(["--frames", "2", "--sizes", "320", "--runtimes", "cv2", "ort", "ov",
                              "--calibration-frames", "2", "--out", str(out), "--plot", str(plot)])
    assert code == 0
    text = out.read_text()
    for row in ("| yolox_nano@320:cv2 | cv2.dnn | fp32 |", "| yolox_nano@320:ort | onnxruntime | fp32 |",
                "| yolox_nano@320:ov | OpenVINO | fp32 |", "| yolox_nano@320:int8:ort | onnxruntime | int8 |",
                "| yolox_nano@320:int8:ov | OpenVINO | int8 |", "| mog2 | OpenCV code | fp32 |"):
        assert row in text
    assert "int8:cv2" not in text  # cv2.dnn runs no int8 variant
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "AP50" in printed and "@320: onnxruntime fp32" in printed and "boxes the same" in printed
    assert list((tmp_path / "cache" / "models").glob("yolox_nano-int8-*.onnx"))  # cached, not beside the data


def test_bad_size_is_one_line_exit_2(tmp_path, capsys):
    code = detect_table.main(["--frames", "1", "--sizes", "500", "--out", str(tmp_path / "t.md"),
                              "--plot", str(tmp_path / "p.png")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --sizes: 500 is not a positive multiple of 32") and "\n" not in err
