"""A one-screen summary of a trace: camera, size, pace, length and what ground truth it carries."""
from __future__ import annotations

from typing import Any

import numpy as np

from streamflow_traces.format import Trace


def trace_info(trace: Trace) -> dict[str, Any]:
    """The summary as a dict (what `streamflow trace info` prints, and tests check)."""
    meta = trace.meta
    ts = trace.timestamps
    steps = np.diff(ts)
    info: dict[str, Any] = {
        "path": str(trace.directory),
        "camera": meta.camera,
        "video": meta.video,
        "size": f"{meta.width}x{meta.height}",
        "fps": meta.fps,
        "measured_fps": (len(steps) / float(ts[-1] - ts[0])) if len(steps) and ts[-1] > ts[0] else None,
        "frames": meta.frame_count,
        "start": meta.start,
        "duration_s": trace.duration,
        "max_gap_s": float(steps.max()) if len(steps) else 0.0,
        "groundtruth": None,
    }
    if trace.has_groundtruth:
        boxes = trace.groundtruth()
        counts = np.array([len(b) for b in boxes.values()])
        ids = {int(i) for b in boxes.values() for i in b[:, 4] if i >= 0}
        gt = meta.groundtruth
        info["groundtruth"] = {
            "source": gt.source if gt else None,
            "format": gt.format if gt else None,
            "class": gt.class_name if gt else None,
            "boxes": int(counts.sum()),
            "frames_with_boxes": int((counts > 0).sum()),
            "boxes_per_frame": float(counts.mean()) if len(counts) else 0.0,
            "track_ids": len(ids) if ids else None,
        }
    return info


def format_info(info: dict[str, Any]) -> str:
    """The summary as aligned text lines."""
    fps = f"{info['fps']:g}"
    if info["measured_fps"] is not None and abs(info["measured_fps"] - info["fps"]) > 0.01 * info["fps"]:
        fps += f" (timestamps: {info['measured_fps']:.2f})"
    rows = [
        ("trace", info["path"]),
        ("camera", info["camera"]),
        ("video", f"{info['video']}, {info['size']}"),
        ("fps", fps),
        ("frames", f"{info['frames']}, {info['duration_s']:.2f} s (largest gap {info['max_gap_s'] * 1000:.1f} ms)"),
        ("start", f"{info['start']:.6f} (unix s)"),
    ]
    gt = info["groundtruth"]
    if gt is None:
        rows.append(("ground truth", "none"))
    else:
        ids = f"{gt['track_ids']} track ids" if gt["track_ids"] else "no track ids"
        rows.append(("ground truth", f"{gt['boxes']} boxes of {gt['class'] or 'unstated class'} "
                                     f"({gt['boxes_per_frame']:.1f}/frame), {ids}; from {gt['source']} ({gt['format']})"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
