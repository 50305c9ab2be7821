"""The detect table tool end to end on a few frames, and its one-line error."""
from tools import detect_table


def test_table_and_plot_are_written(tmp_path, ngsim, yolox_path, capsys):
    out, plot = tmp_path / "table.md", tmp_path / "plot.png"
    code = detect_table.main(["--frames", "2", "--variants", "mog2", "yolox_nano@320",
                              "--out", str(out), "--plot", str(plot)])
    assert code == 0
    text = out.read_text()
    assert "| yolox_nano@320 | opencv |" in text and "| yolox_nano@320 | torch |" in text
    assert "| mog2 | opencv |" in text and "| mog2 | torch |" not in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "AP50" in capsys.readouterr().out


def test_unknown_variant_is_one_line_exit_2(tmp_path, capsys):
    code = detect_table.main(["--frames", "1", "--variants", "yolox_nano@999", "--out", str(tmp_path / "t.md"),
                              "--plot", str(tmp_path / "p.png")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown variant 'yolox_nano@999'") and "\n" not in err
