"""The op profile tool: per-op times from onnxruntime's profiler and the convolutions' work."""
from tools import op_profile


def test_conv_work_scales_with_the_input_area(yolox_path, tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMFLOW_CACHE", str(tmp_path / "cache"))
    from streamflow_workers.runtimes.derived import runnable_model
    model = runnable_model(yolox_path)
    dense_320, depthwise_320 = op_profile.conv_macs(model, 320)
    dense_640, depthwise_640 = op_profile.conv_macs(model, 640)
    assert dense_320 > 10 * depthwise_320 > 0  # YOLOX-nano's depthwise convolutions are cheap
    assert abs(dense_640 / dense_320 - 4.0) < 1e-9 and abs(depthwise_640 / depthwise_320 - 4.0) < 1e-9


def test_prints_ops_and_the_share_of_peak(yolox_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STREAMFLOW_CACHE", str(tmp_path / "cache"))
    assert op_profile.main(["--size", "320", "--runs", "2", "--fma-per-cycle", "16", "--ghz", "3"]) == 0
    out = capsys.readouterr().out
    conv_row = next(line for line in out.splitlines() if line.startswith("Conv "))
    assert float(conv_row.split()[1]) > 0 and int(conv_row.split()[2]) > 100  # YOLOX-nano has 113 convolutions after the stem rewrite
    assert "GMAC/s" in out and "% of it" in out


def test_bad_size_is_one_line_exit_2(capsys):
    assert op_profile.main(["--size", "500"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --size 500 is not a positive multiple of 32"
