"""AP50 for cars on NGSIM US-101 camera 1 against per-frame cost, for YOLOX-nano at each input size
on each runtime (cv2.dnn, onnxruntime, OpenVINO; torch on request) and precision (fp32, int8),
and MOG2; how closely each runtime's boxes agree with cv2.dnn's. Writes docs/detect_table.md and
a PNG plot of AP50 vs ms/frame.

    PYTHONPATH=. python tools/detect_table.py [--frames N] [--sizes 320 640] [--runtimes cv2 ort ov torch]

The ground truth boxes every vehicle as 'car', so YOLOX keeps car, bus and truck (COCO 2, 5, 7)
with NMS across those classes (one box per vehicle) and every kept box counts as a car; MOG2
boxes are cars by construction. AP50 is COCO 101-point interpolated AP at IoU 0.5 over
detections scoring >= 0.01. int8 is calibrated on frames of the other three NGSIM cameras (same
road, never the scored frames). Timing: batch 1, one thread for every runtime, whole detect call,
the variants of one size interleaved frame by frame.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from streamflow.metrics.detection import Agreement, agreement, average_precision
from streamflow_traces.groundtruth import GroundTruthError, read_mot
from streamflow_workers.data import REPO_ROOT, shared_data_dir
from streamflow_workers.detect.filters import VEHICLES
from streamflow_workers.errors import ModelLoadError, VariantError
from streamflow_workers.runtimes import set_threads
from streamflow_workers.variants import RUNTIME_TAGS, YOLOX_SIZES, build_detector, parse_variant
from streamflow_workers.video import VideoError, read_frames

CAR = 2
AP_SCORE_THRESHOLD = 0.01
SAME_BOXES_IOU = 0.99  # the bar for "the same boxes" across runtimes
RUNTIME_LABEL = {"opencv": "cv2.dnn", "torch": "torch", "onnxruntime": "onnxruntime", "openvino": "OpenVINO"}


class ToolError(RuntimeError):
    """A user-caused problem; printed as one line."""


@dataclass
class Row:
    """One (variant) measurement; `runtime` and `precision` as the variant name says."""

    variant: str
    runtime: str
    precision: str
    size: int | None
    gflops: float
    ap50: float
    ms_per_frame: float
    detections: list[np.ndarray] = field(repr=False)
    agree: Agreement | None = None  # against cv2.dnn fp32 at the same size


def ngsim_paths(camera: int) -> tuple[Path, Path]:
    """The NGSIM clip and MOT ground truth of one camera."""
    traces = shared_data_dir() / "traces"
    video = traces / f"ngsim_us101_cam{camera}_640x480_3fps.mp4"
    truth = traces / "gt" / f"ngsim_us101_cam{camera}_640x480_3fps_gt_mot.txt"
    for path in (video, truth):
        if not path.is_file():
            raise ToolError(f"missing NGSIM data: {path}")
    return video, truth


def calibration_traces(cameras: list[int]) -> list[str]:
    """Trace folders of the NGSIM cameras whose frames calibrate int8."""
    folders = [REPO_ROOT / "traces" / "clips" / f"ngsim_cam{c}" for c in cameras]
    for folder in folders:
        if not folder.is_dir():
            raise ToolError(f"missing trace folder for int8 calibration: {folder}")
    return [str(f) for f in folders]


def detector_params(variant: str, calibration: list[str], calibration_frames: int) -> dict:
    """Settings used for scoring: every kept vehicle box counts as a car."""
    spec = parse_variant(variant)
    if spec.model != "yolox_nano":
        return {"class_id": CAR}
    params = {"score_threshold": AP_SCORE_THRESHOLD, "classes": list(VEHICLES), "agnostic_nms": True}
    if spec.precision == "int8":
        params.update(calibration=calibration, calibration_frames=calibration_frames)
    return params


def as_cars(boxes: np.ndarray) -> np.ndarray:
    """Relabel every box as a car (the ground truth's only class)."""
    out = boxes.copy()
    out[:, 5] = CAR
    return out


def measure(variants: list[str], frames: list[np.ndarray], truth: dict[int, np.ndarray],
            params: dict[str, dict], progress: tqdm) -> list[Row]:
    """Run the variants of one input size frame by frame (batch 1), interleaved: each frame goes
    through every variant in turn, so a slower or busier stretch of the machine weighs on all of
    them alike and their ratios compare like with like. Each detect call is timed."""
    detectors = {}
    for variant in variants:
        progress.set_postfix_str(f"loading {variant}")
        detectors[variant] = build_detector(variant, device="cpu", **params[variant])
        if parse_variant(variant).model == "yolox_nano":
            detectors[variant].detect(frames[:1])  # warm-up: first-call allocations are not per-frame cost
    detections = {v: [] for v in variants}
    elapsed = dict.fromkeys(variants, 0.0)
    progress.set_postfix_str(", ".join(variants))
    for frame in frames:
        for variant, detector in detectors.items():
            start = time.perf_counter()
            boxes = detector.detect([frame], camera="cam")[0]
            elapsed[variant] += time.perf_counter() - start
            detections[variant].append(as_cars(boxes))
            progress.update(1)
    rows = []
    for variant in variants:
        spec = parse_variant(variant)
        ap = average_precision(dict(enumerate(detections[variant])), truth, 0.5, frames=range(len(frames)))
        runtime = spec.runtime or ("opencv" if spec.model == "yolox_nano" else "OpenCV code")
        rows.append(Row(variant, runtime, spec.precision, spec.size, spec.gflops_per_frame, ap,
                        1000 * elapsed[variant] / len(frames), detections[variant]))
    return rows


def fp32_of(rows: list[Row], row: Row, runtime: str | None = None) -> Row | None:
    """The fp32 row of the same size on `runtime` (default: the row's own runtime)."""
    return next((r for r in rows if r.size == row.size and r.precision == "fp32"
                 and r.runtime == (runtime or row.runtime)), None)


def markdown(rows: list[Row], frames: int, camera: int, calibration: list[int], command: str) -> str:
    """The table as markdown, with the method stated above it."""
    lines = [
        f"# Detect variants on NGSIM US-101 camera {camera} ({frames} frames, 640x480)",
        "",
        f"Generated by `{command}`. AP50: COCO 101-point interpolated",
        "AP at IoU 0.5 for cars; the ground truth boxes every vehicle as 'car', so YOLOX keeps COCO",
        "car, bus and truck with NMS across them and every kept box counts as a car (detections with",
        f"score >= {AP_SCORE_THRESHOLD}). ms/frame: whole detect call (letterbox, inference, decoding,",
        "NMS), batch 1, one thread for every runtime, on this machine, the variants of one size",
        "interleaved frame by frame. x cv2: ms against cv2.dnn fp32 at the same size in this run. Agreement: boxes greedy-matched at IoU 0.5 against cv2.dnn fp32",
        f"at the same size, mean IoU of the matched boxes (>= {SAME_BOXES_IOU} is 'the same boxes') and",
        "the matched fraction. int8: post-training static quantisation (QDQ, per-channel weights, MinMax)",
        f"calibrated on frames of NGSIM camera(s) {', '.join(map(str, calibration))}; dAP50 is against fp32 on",
        "the same runtime. Timings depend on what else runs: the 1-minute load average was",
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end of this run.",
        "",
        "| variant | runtime | precision | AP50 (cars) | dAP50 vs fp32 | ms/frame | x cv2 | mean IoU vs cv2 | matched |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        cv2_row = fp32_of(rows, row, "opencv")
        ratio = f"{row.ms_per_frame / cv2_row.ms_per_frame:.2f}" if cv2_row is not None and row.size else "–"
        fp32 = fp32_of(rows, row) if row.precision != "fp32" else None
        delta = f"{row.ap50 - fp32.ap50:+.3f}" if fp32 is not None else "–"
        agree = (f"{row.agree.mean_iou:.4f} | {row.agree.matched_fraction:.3f}" if row.agree is not None
                 else "– | –")
        lines.append(f"| {row.variant} | {RUNTIME_LABEL.get(row.runtime, row.runtime)} | {row.precision} | "
                     f"{row.ap50:.3f} | {delta} | {row.ms_per_frame:.1f} | {ratio} | {agree} |")
    return "\n".join(lines) + "\n"


def summary(rows: list[Row]) -> list[str]:
    """The figures the issue asks for, one line each: runtime ratios at 640 and int8 trade-offs."""
    out = []
    for size in sorted({r.size for r in rows if r.size}):
        cv2_row = next((r for r in rows if r.size == size and r.runtime == "opencv" and r.precision == "fp32"), None)
        for row in (r for r in rows if r.size == size and r.runtime != "opencv" and cv2_row is not None):
            if row.precision == "fp32":
                same = row.agree is not None and row.agree.mean_iou >= SAME_BOXES_IOU
                out.append(f"@{size}: {RUNTIME_LABEL[row.runtime]} fp32 {row.ms_per_frame:.1f} ms = "
                           f"{row.ms_per_frame / cv2_row.ms_per_frame:.2f}x cv2.dnn ({cv2_row.ms_per_frame:.1f} ms); "
                           f"boxes {'the same' if same else 'DIFFER'} (mean IoU {row.agree.mean_iou:.4f})")
            else:
                fp32 = fp32_of(rows, row)
                if fp32 is not None:
                    out.append(f"@{size}: {RUNTIME_LABEL[row.runtime]} {row.precision} {row.ms_per_frame:.1f} ms vs "
                               f"fp32 {fp32.ms_per_frame:.1f} ms ({row.ms_per_frame / fp32.ms_per_frame:.2f}x); "
                               f"AP50 {fp32.ap50:.3f} -> {row.ap50:.3f} ({row.ap50 - fp32.ap50:+.3f})")
    return out


def plot(rows: list[Row], path: Path, camera: int) -> None:
    """AP50 against ms/frame, one line per runtime and precision, labelled by input size."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, ScalarFormatter

    fig, ax = plt.subplots(figsize=(8, 5))
    styles = {"opencv": "o", "torch": "s", "onnxruntime": "D", "openvino": "^"}
    for runtime, marker in styles.items():
        for precision, linestyle in (("fp32", "-"), ("int8", "--"), ("fp16", ":")):
            picked = sorted((r for r in rows if r.runtime == runtime and r.precision == precision and r.size),
                            key=lambda r: r.size)
            if not picked:
                continue
            ax.plot([r.ms_per_frame for r in picked], [r.ap50 for r in picked], marker=marker, linestyle=linestyle,
                    label=f"YOLOX-nano, {RUNTIME_LABEL[runtime]} {precision}")
            if runtime == "opencv":
                for r in picked:
                    ax.annotate(str(r.size), (r.ms_per_frame, r.ap50), textcoords="offset points", xytext=(4, 5),
                                fontsize=8)
    for r in rows:
        if r.size is None:
            ax.plot([r.ms_per_frame], [r.ap50], marker="*", markersize=10, linestyle="none", color="tab:green",
                    label=f"{r.variant} (OpenCV code)")
    ax.set_xscale("log")
    ticks = [t for t in (2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
             if min(r.ms_per_frame for r in rows) / 1.5 <= t <= max(r.ms_per_frame for r in rows) * 1.5]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel("ms per frame (batch 1, one thread, log scale); labels: input size")
    ax.set_ylabel("AP50, cars")
    ax.set_title(f"Detect variants on NGSIM US-101 camera {camera}: runtimes and precisions")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def variant_names(args: argparse.Namespace) -> list[str]:
    """mog2, then per size every runtime at fp32 and the int8-capable ones at each other precision."""
    for size in args.sizes:
        if size <= 0 or size % 32:
            raise ToolError(f"--sizes: {size} is not a positive multiple of 32")
    names = ["mog2"] if args.mog2 else []
    for size in args.sizes:
        for precision in args.precisions:
            for tag in args.runtimes:
                if precision == "fp32" or RUNTIME_TAGS[tag] in ("onnxruntime", "openvino"):
                    names.append(f"yolox_nano@{size}" + (f":{precision}" if precision != "fp32" else "") + f":{tag}")
    for name in names:  # a bad combination is an error whatever data is present
        parse_variant(name)
    return names


def run(args: argparse.Namespace) -> tuple[str, list[str]]:
    set_threads(1)
    import torch
    torch.set_num_threads(1)
    variants = variant_names(args)
    video, truth_path = ngsim_paths(args.camera)
    truth = read_mot(truth_path, class_id=CAR)
    calibration = calibration_traces(args.calibration_cameras) if "int8" in args.precisions else []
    frames = list(read_frames(video, count=args.frames))
    rows: list[Row] = []
    params = {v: detector_params(v, calibration, args.calibration_frames) for v in variants}
    with tqdm(total=len(variants) * len(frames), unit="frame", desc="detect variants") as progress:
        for size in dict.fromkeys(parse_variant(v).size for v in variants):  # in order; mog2 has None
            rows += measure([v for v in variants if parse_variant(v).size == size], frames, truth, params, progress)
    for row in rows:
        reference = fp32_of(rows, row, "opencv")
        if row.size is not None and reference is not None and reference is not row:
            row.agree = agreement(dict(enumerate(reference.detections)), dict(enumerate(row.detections)))
    command = "PYTHONPATH=. python tools/detect_table.py" + (" " + " ".join(args.argv) if args.argv else "")
    table = markdown(rows, len(frames), args.camera, args.calibration_cameras, command)
    lines = summary(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n" + "\n".join(f"- {line}" for line in lines)
                        + f"\n\n![AP50 vs ms/frame]({args.plot.name})\n")
    plot(rows, args.plot, args.camera)
    return table, lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=None, help="first N frames (default: all)")
    parser.add_argument("--camera", type=int, default=1, choices=(1, 2, 3, 4))
    parser.add_argument("--sizes", type=int, nargs="+", default=list(YOLOX_SIZES), help="YOLOX input sizes")
    parser.add_argument("--runtimes", nargs="+", default=["cv2", "ort", "ov"], choices=list(RUNTIME_TAGS))
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"], choices=("fp32", "int8"))
    parser.add_argument("--no-mog2", dest="mog2", action="store_false", help="leave out the MOG2 row")
    parser.add_argument("--calibration-cameras", type=int, nargs="+", default=[2, 3, 4], choices=(1, 2, 3, 4),
                        help="NGSIM cameras whose frames calibrate int8 (default 2 3 4)")
    parser.add_argument("--calibration-frames", type=int, default=16, help="calibration frames in all (default 16)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "detect_table.md")
    parser.add_argument("--plot", type=Path, default=REPO_ROOT / "docs" / "detect_ap_vs_ms.png")
    args = parser.parse_args(argv)
    args.argv = [a for a in (sys.argv[1:] if argv is None else argv)]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        table, lines = run(args)
    except (ToolError, ModelLoadError, VariantError, VideoError, GroundTruthError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table)
    print("\n".join(lines))
    print(f"wrote {args.out} and {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
