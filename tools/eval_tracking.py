"""Evaluate the SORT tracker fed with a trace's ground-truth boxes, perturbed as a detector would:
box jitter (a fraction of the box size) and missed detections. Prints MOTA, IDF1, switches and
count error per setting and plots MOTA/IDF1 against jitter. Usage:

    PYTHONPATH=. python tools/eval_tracking.py [--clip pets09] [--plot out/eval_tracking.png]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamflow.metrics.tracking import tracking_report  # noqa: E402
from streamflow_traces.catalog import shared_clips  # noqa: E402
from streamflow_traces.classes import class_index  # noqa: E402
from streamflow_traces.groundtruth import read_groundtruth  # noqa: E402
from streamflow_workers.tracking.sort import Tracker  # noqa: E402


def perturbed(boxes: np.ndarray, jitter: float, drop: float, rng: np.random.Generator) -> np.ndarray:
    """Ground-truth boxes as detections: score 1, each kept with probability 1 - drop, corners
    moved by Gaussian noise of `jitter` times the box's width/height."""
    d = boxes[rng.random(len(boxes)) >= drop].copy()
    d[:, 4] = 1.0
    size = np.c_[d[:, 2] - d[:, 0], d[:, 3] - d[:, 1], d[:, 2] - d[:, 0], d[:, 3] - d[:, 1]]
    d[:, :4] += rng.normal(0, jitter, (len(d), 4)) * size
    return d


def evaluate(gt: dict[int, np.ndarray], fps: float, jitter: float, drop: float, seed: int,
             **tracker_params) -> dict:
    rng = np.random.default_rng(seed)
    tracker, pred = Tracker(**tracker_params), {}
    for frame in sorted(gt):
        pred[frame] = tracker.update(perturbed(gt[frame], jitter, drop, rng), frame)[:, :6]
    return tracking_report(gt, pred, timestamps={f: f / fps for f in gt})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", action="append", help="clip name part (default: every clip with track ids)")
    parser.add_argument("--jitter", type=float, nargs="+", default=[0.0, 0.02, 0.05, 0.1])
    parser.add_argument("--drop", type=float, nargs="+", default=[0.0, 0.1])
    parser.add_argument("--max-age", type=int, default=3)
    parser.add_argument("--min-hits", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, help="write a PNG of MOTA and IDF1 against jitter")
    args = parser.parse_args(argv)

    clips = [c for c in shared_clips() if c.groundtruth is not None and c.groundtruth.suffix == ".txt"
             and (not args.clip or any(k in c.name for k in args.clip))]
    results = []
    for clip in clips:
        gt_raw = read_groundtruth(clip.groundtruth, class_index(clip.class_label))
        if not any(np.any(b[:, 4] >= 0) for b in gt_raw.values() if len(b)):
            continue  # MOTA/IDF1 need track ids
        fps = float(clip.name.rsplit("_", 1)[-1].removesuffix("fps"))
        frames = range(max(gt_raw) + 1)
        gt = {f: gt_raw.get(f, np.zeros((0, 6))) for f in frames}
        settings = [(j, d) for d in args.drop for j in args.jitter]
        for jitter, drop in tqdm(settings, desc=clip.name):
            r = evaluate(gt, fps, jitter, drop, args.seed, max_age=args.max_age, min_hits=args.min_hits)
            results.append((clip.name, jitter, drop, r))
    if not results:
        print("error: no shared clip with track ids found", file=sys.stderr)
        return 2

    print(f"\nSORT (max_age {args.max_age}, min_hits {args.min_hits}) fed with perturbed ground truth")
    header = f"{'clip':<36} {'jitter':>6} {'drop':>5} {'MOTA':>7} {'IDF1':>7} {'IDsw':>5} {'miss':>6} " \
             f"{'FP':>5} {'cnt/frame':>9} {'cnt/s':>6}"
    print(header)
    print("-" * len(header))
    for name, jitter, drop, r in results:
        m = r["clear_mot"]
        print(f"{name:<36} {jitter:>6.2f} {drop:>5.2f} {r['mota']:>7.4f} {r['idf1']:>7.4f} {r['id_switches']:>5} "
              f"{m['misses']:>6} {m['false_positives']:>5} {r['count_mae_per_frame']:>9.3f} "
              f"{r['count_mae_per_second']:>6.3f}")

    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
        for ax, metric in zip(axes, ("mota", "idf1")):
            for name in dict.fromkeys(n for n, *_ in results):
                for drop in args.drop:
                    pts = [(j, r[metric]) for n, j, d, r in results if n == name and d == drop]
                    ax.plot(*zip(*pts), marker="o", label=f"{name.split('_')[0]}, drop {drop:g}")
            ax.set_xlabel("box jitter (fraction of box size)")
            ax.set_title(metric.upper())
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("score")
        axes[1].legend(fontsize=7)
        fig.suptitle("SORT fed with perturbed ground truth", fontsize=10)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
