"""The detector chain (decode -> YOLOX-nano -> SORT) three ways, frames/s:

(a) a bare single-threaded Python loop over the same frames;
(b) through streamflow on one worker process (one thread for the model);
(c) the plan's placement on two local worker processes, one thread each: the source on w0,
    detect split between w0 and w1 by share, the tracker on w1.
Targets: (b) >= 0.95 x (a), (c) >= 1.6 x (a). Usage: python tools/bench_pipeline.py [--variant V]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402

from streamflow.cluster.localcluster import LocalCluster  # noqa: E402

CLIPS = [REPO / "traces" / "clips" / f"ngsim_cam{i}" for i in (1, 2)]
DETECT = {"classes": ["car", "truck", "bus"], "agnostic_nms": True, "score_threshold": 0.01}
TRACK = {"iou_threshold": 0.05, "min_hits": 2, "max_age": 2, "min_score": 0.03}


def bare_loop(variant: str, frames: int | None) -> tuple[int, float]:
    """(frames, seconds) of decode + detect + track in one thread."""
    from streamflow_traces.replay import FrameReader, iter_merged
    from streamflow_workers.tracking.sort import CameraTrackers
    from streamflow_workers.variants import build_detector
    cv2.setNumThreads(1)
    detector = build_detector(variant, "opencv", "cpu", **{**DETECT, "classes": [2, 5, 7]})
    trackers = CameraTrackers(**{k: v for k, v in TRACK.items() if k != "min_score"})
    n = 0
    t = time.perf_counter()
    for f in iter_merged([FrameReader(str(p), stop=frames) for p in CLIPS]):
        boxes = detector.detect([f.image])[0]
        trackers.update(f.camera, boxes[boxes[:, 4] >= TRACK["min_score"]], frame=f.index)
        n += 1
    return n, time.perf_counter() - t


def plan(variant: str, frames: int | None, detect_on: list[str], track_on: str, max_size: int) -> dict:
    workers = sorted(set(detect_on) | {track_on, "w0"})
    return {"version": 1, "name": "pipeline", "epoch": {"unit": "frame", "size": 10},
            "workers": [{"name": w, "tier": "edge"} for w in workers],
            "sources": [{"name": "cams", "kind": "trace", "paths": [str(p) for p in CLIPS], "speed": 0,
                         **({"stop": frames} if frames else {}), "worker": "w0"}],
            "operators": [
                {"name": "detect", "kind": "detect", "variant": variant, "params": DETECT, "inputs": ["cams"],
                 "placement": [{"worker": w, "share": 1} for w in detect_on],
                 "batch": {"max_size": max_size, "max_wait_ms": 2}},
                {"name": "track", "kind": "track", "params": TRACK, "inputs": ["detect"],
                 "placement": [{"worker": track_on}]}],
            "sinks": []}


def dataflow_rate(cluster: LocalCluster, p: dict) -> tuple[int, float]:
    report = cluster.run(p)
    assert report["status"] == "completed", report["error"]
    return report["operators"]["track"]["records"], report["duration_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="yolox_nano@416")
    parser.add_argument("--frames", type=int, default=None, help="frames per camera (default: all)")
    parser.add_argument("--repeat", type=int, default=2, help="best of N (default 2)")
    args = parser.parse_args()
    best = lambda f: min((f() for _ in range(args.repeat)), key=lambda r: r[1] / r[0])  # noqa: E731

    n_a, t_a = best(lambda: bare_loop(args.variant, args.frames))
    with LocalCluster([("w0", "edge")], threads=1) as one:
        n_b, t_b = best(lambda: dataflow_rate(one, plan(args.variant, args.frames, ["w0"], "w0", 1)))
        n_b4, t_b4 = best(lambda: dataflow_rate(one, plan(args.variant, args.frames, ["w0"], "w0", 4)))
    with LocalCluster([("w0", "edge"), ("w1", "edge")], threads=1) as two:
        n_c, t_c = best(lambda: dataflow_rate(two, plan(args.variant, args.frames, ["w0", "w1"], "w1", 1)))
    a, b, b4, c = n_a / t_a, n_b / t_b, n_b4 / t_b4, n_c / t_c
    assert n_a == n_b == n_c, (n_a, n_b, n_c)
    print(f"detector chain: decode -> {args.variant} (opencv) -> SORT, {n_a} frames of 2 NGSIM cameras")
    print(f"(a) bare single-threaded loop:          {a:7.2f} frames/s")
    print(f"(b) streamflow, one worker, batch 1:    {b:7.2f} frames/s  = {b / a:.2f} x (a)")
    print(f"    same with dynamic batching (4):     {b4:7.2f} frames/s  = {b4 / a:.2f} x (a)")
    print(f"(c) two local workers, one thread each: {c:7.2f} frames/s  = {c / a:.2f} x (a)")


if __name__ == "__main__":
    main()
