"""Accuracy of a run against ground truth, from what its sinks wrote.

A sink asks for it with `"evaluate": {"task": "detection" | "tracking", "classes": [...]}`;
ground truth comes from the plan's sources (a source kind with a `groundtruth` hook, such as a
recorded trace). Only the frames the run saw are scored. Frames a sampled detector skipped
(`boxes: null`) reuse the camera's latest detections, as the tracker does.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from streamflow.dataflow.catalog import lookup
from streamflow.metrics.detection import average_precision, count_errors, precision_recall
from streamflow.metrics.groundtruth import GroundTruth
from streamflow.plan import NodePlan, Plan

TASKS = ("detection", "tracking")


def _sink_files(node: NodePlan, plan: Plan) -> list[Path]:
    path = Path(plan.resolve(node.params["path"]))
    files = [path] if path.exists() else []
    return files + sorted(path.parent.glob(f"{path.stem}.*{path.suffix}"))


def _records(files: list[Path]) -> list[dict[str, Any]]:
    out = []
    for f in files:
        with f.open() as fh:
            out += [json.loads(line) for line in fh if line.strip()]
    return out


def ground_truth(plan: Plan) -> dict[str, GroundTruth]:
    """Ground truth of every camera the plan's sources replay, by camera id."""
    out: dict[str, GroundTruth] = {}
    for node in plan.nodes:
        if node.role != "source":
            continue
        kind = lookup(node.kind, "source", f"{node.path}.kind")
        if kind.groundtruth is not None:
            out.update(kind.groundtruth(node.params, plan))
    return out


def _class_ids(names: list[str | int] | None) -> set[int] | None:
    if names is None:
        return None
    from_names = {"person": 0, "bicycle": 1, "car": 2, "motorcycle": 3, "bus": 5, "truck": 7}
    return {n if isinstance(n, int) else from_names.get(n, -1) for n in names}


def _per_frame(records: list[dict[str, Any]], field: str, classes: set[int] | None
               ) -> dict[str, dict[int, np.ndarray]]:
    """camera -> frame -> boxes, carrying the latest boxes over frames marked null."""
    by_camera: dict[str, dict[int, Any]] = {}
    for r in records:
        by_camera.setdefault(r["camera"], {})[int(r["index"])] = r.get(field)
    out: dict[str, dict[int, np.ndarray]] = {}
    for camera, frames in by_camera.items():
        last = np.zeros((0, 6))
        boxes: dict[int, np.ndarray] = {}
        for index in sorted(frames):
            value = frames[index]
            if value is not None:
                last = np.asarray(value, dtype=np.float64).reshape(-1, 6)
                if classes is not None and len(last):
                    last = last[np.isin(last[:, 5], list(classes))]
            boxes[index] = last
        out[camera] = boxes
    return out


def score_detection(records: list[dict[str, Any]], truth: dict[str, GroundTruth],
                    classes: list[str | int] | None = None) -> dict[str, Any]:
    """Detection accuracy of frame records ({camera, index, boxes}) against ground truth."""
    return _detection(_per_frame(records, "boxes", _class_ids(classes)), truth)


def _detection(pred: dict[str, dict[int, np.ndarray]], truth: dict[str, GroundTruth]) -> dict[str, Any]:
    dets, gts, errors = {}, {}, []
    per_camera = {}
    for camera, frames in pred.items():
        gt = truth[camera]
        cam_dets = {(camera, i): b for i, b in frames.items()}
        cam_gts = {(camera, i): gt.boxes.get(i, np.zeros((0, 6))) for i in frames}
        dets.update(cam_dets)
        gts.update(cam_gts)
        err = count_errors(cam_dets, cam_gts, score_threshold=0.3)
        errors += list(err)
        per_camera[camera] = {"ap50": round(float(average_precision(cam_dets, cam_gts)), 4),
                              "frames": len(frames), "count_mae_per_frame": round(float(np.mean(np.abs(err))), 3)}
    pr = precision_recall(dets, gts, score_threshold=0.3)
    return {"ap50": round(float(average_precision(dets, gts)), 4),
            "precision@0.3": round(pr.precision, 4), "recall@0.3": round(pr.recall, 4),
            "count_mae_per_frame": round(float(np.mean(np.abs(errors))), 3) if errors else None,
            "frames": len(dets), "per_camera": per_camera}


def _tracking(pred: dict[str, dict[int, np.ndarray]], truth: dict[str, GroundTruth]) -> dict[str, Any]:
    from streamflow.metrics.tracking import count_error, tracking_report
    per_camera = {}
    for camera, frames in pred.items():
        gt = truth[camera]
        gt_frames = {i: gt.boxes.get(i, np.zeros((0, 6))) for i in frames}
        ts = {i: gt.timestamps[i] for i in frames if i < len(gt.timestamps)}
        if gt.has_ids:
            block = tracking_report(gt_frames, frames, ts)
            per_camera[camera] = {k: block[k] for k in ("mota", "idf1", "id_switches", "count_mae_per_frame",
                                                        "count_mae_per_second")}
        else:  # boxes without identities: only counts can be scored
            c = count_error(gt_frames, frames, ts)
            per_camera[camera] = {"count_mae_per_frame": c.per_frame_mae, "count_mae_per_second": c.per_second_mae}
    keys = set.intersection(*(set(v) for v in per_camera.values())) if per_camera else set()
    mean = {k: round(float(np.mean([v[k] for v in per_camera.values()])), 4) for k in sorted(keys)}
    return {**mean, "per_camera": per_camera}


def evaluate(plan: Plan) -> dict[str, Any]:
    """{sink name: accuracy block} for every sink with an `evaluate` block."""
    truth: dict[str, GroundTruth] | None = None
    out: dict[str, Any] = {}
    for node in plan.nodes:
        spec = node.params.get("evaluate") if node.role == "sink" else None
        if not spec:
            continue
        task = spec.get("task", "detection")
        if task not in TASKS:
            out[node.name] = {"error": f"unknown task {task!r} (expected {', '.join(TASKS)})"}
            continue
        if truth is None:
            truth = ground_truth(plan)
        records = _records(_sink_files(node, plan))
        field = "boxes" if task == "detection" else "tracks"
        pred = _per_frame(records, field, _class_ids(spec.get("classes")) if task == "detection" else None)
        missing = sorted(c for c in pred if c not in truth)
        if missing:
            out[node.name] = {"error": f"no ground truth for camera(s) {', '.join(missing)}"}
            continue
        if not pred:
            out[node.name] = {"error": "the sink wrote no records"}
            continue
        out[node.name] = {"task": task, **(_detection(pred, truth) if task == "detection" else _tracking(pred, truth))}
    return out
