"""`detect`: a detector variant (YOLOX-nano at an input size, or MOG2) over frame records.

Frame sampling (`/k` in the variant) runs the model on frames whose index is a multiple of k and
marks the others `boxes: None`; downstream (the tracker, the evaluator) reuse the camera's latest
detections for them, as a sampled pipeline does. Frames the camera host filtered out (`+diffT`,
records with `frame: None`) are marked the same way. MOG2 keeps a background model per camera.
int8 variants calibrate on the `calibration` trace folders, by default the upstream source's.
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import numpy as np

from streamflow.errors import PlanError
from streamflow_workers.operators.batching import BatchingOperator
from streamflow_workers.operators.common import batch_params, class_list, one_line, worker_device
from streamflow_workers.operators.trace_source import frame_image

LOADED: dict[tuple[str, ...], Any] = {}  # stateless detectors loaded in this process
RUNNING: dict[tuple[str, ...], int] = {}  # LOADED key -> started instances using it
PRELOADED: set[tuple[str, ...]] = set()  # loaded for a switch whose instances have not started


def unload_unused() -> list[tuple[str, ...]]:
    """Drop the detectors no started instance uses and no pending switch loaded: after a live
    switch, the old variant's model (the old generation has closed before the new one starts)."""
    gone = [k for k in list(LOADED) if not RUNNING.get(k) and k not in PRELOADED]  # list(): a preload may add
    for key in gone:
        del LOADED[key]
    return gone


DETECT_PARAMS = ("runtime", "classes", "score_threshold", "nms_threshold", "agnostic_nms", "keep_frame", "batch",
                 "variant", "model", "appearance", "region", "min_size", "calibration")


class DetectOperator(BatchingOperator):
    """Batched detection; output records carry `boxes` (K x 6: x1 y1 x2 y2 score class)."""

    def __init__(self, variant: str, runtime: str, options: dict[str, Any], keep_frame: bool,
                 plan: Any, max_size: int, max_wait_ms: float, appearance: str | None = None,
                 region: list[list[float]] | None = None, min_size: list[float] | None = None) -> None:
        super().__init__(max_size, max_wait_ms)
        from streamflow_workers.variants import parse_variant
        self.spec = parse_variant(variant)
        self.runtime, self.options, self.keep_frame, self.plan = runtime, options, keep_frame, plan
        self.appearance = appearance
        self.region, self.min_size = region, min_size
        self.detector: Any = None
        self.embedder: Any = None
        self.key: tuple[str, ...] | None = None  # this instance's entry in LOADED
        self.running = False

    def on_start(self) -> None:
        self.load(worker_device(self.plan, self.ctx.worker_name))
        if self.key is not None:
            RUNNING[self.key] = RUNNING.get(self.key, 0) + 1
            self.running = True
            PRELOADED.discard(self.key)
            unload_unused()

    def on_close(self) -> None:
        super().on_close()
        if self.running and self.key is not None:
            RUNNING[self.key] -= 1  # still loaded: the next generation may run it again
            self.running = False

    def warm(self, worker_name: str) -> None:
        """Load the stateless detector into this process's LOADED table before a live switch
        deploys the plan (streamflow/cluster/preload.py), so on_start finds it loaded."""
        if self.spec.model != "mog2":
            device = worker_device(self.plan, worker_name)
            PRELOADED.add(self._key(device))  # before it is in LOADED: unload_unused may run meanwhile
            self.load(device)

    def _key(self, device: str) -> tuple[str, ...]:
        from streamflow_workers.runtimes import threads
        return (self.spec.base, self.runtime, device, str(threads()),
                json.dumps(self.options, sort_keys=True, default=str))

    def load(self, device: str) -> None:
        """Build the detector (and appearance embedder) on `device` (the profiler calls this too).
        Stateless detectors are kept per process: the next generation of a run (after a
        recovery or a reconfiguration) reuses the loaded model instead of loading it again."""
        from streamflow_workers.variants import build_detector, build_embedder
        if self.spec.model == "mog2":  # a background model per camera: state, never shared
            self.detector = build_detector(self.spec.base, self.runtime, device, **self.options)
        else:
            key = self.key = self._key(device)
            self.detector = LOADED.get(key)
            if self.detector is None:
                self.detector = LOADED[key] = build_detector(self.spec.base, self.runtime, device, **self.options)
        if self.appearance:
            self.embedder = build_embedder(self.appearance, device)

    def process(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        every = self.spec.every
        chosen = [i for i, r in enumerate(records) if r["index"] % every == 0 and r.get("frame") is not None]
        images = {i: frame_image(records[i]["frame"]) for i in chosen}
        boxes: dict[int, np.ndarray] = {}
        if self.spec.model == "mog2":
            for i in chosen:  # background models are per camera and need frames in order
                boxes[i] = self.detector.detect([images[i]], camera=records[i]["camera"])[0]
        elif chosen:
            for i, b in zip(chosen, self.detector.detect([images[i] for i in chosen])):
                boxes[i] = b
        if self.region is not None or self.min_size is not None:
            from streamflow_workers.detect.filters import keep_in_region, keep_min_size
            for i, b in boxes.items():
                if self.region is not None:
                    b = keep_in_region(b, self.region)
                if self.min_size is not None:
                    b = keep_min_size(b, *self.min_size)
                boxes[i] = b
        out = []
        for i, r in enumerate(records):
            rec = {k: v for k, v in r.items() if k != "frame" or self.keep_frame}
            rec["boxes"] = boxes.get(i)
            if self.embedder is not None and rec["boxes"] is not None:
                rec["embeddings"] = self.embedder.embed(images[i], rec["boxes"][:, :4])
            out.append(rec)
        return out


@lru_cache(maxsize=64)
def check_detector(variant: str, options: str) -> None:
    """Load the detector once per process as fp32 on OpenCV (the cheap loader) to validate a plan;
    other runtimes and int8 load (and quantise) on the worker."""
    from streamflow_workers.variants import build_detector, parse_variant
    spec = parse_variant(variant)
    plain = variant if spec.size is None else f"{spec.model}@{spec.size}"
    build_detector(plain, "opencv", "cpu", **{k: v for k, v in json.loads(options).items() if k != "calibration"})


def upstream_traces(plan: Any, path: str) -> list[str]:
    """Trace folders of the trace sources feeding the operator at `path` (int8 calibration frames)."""
    if plan is None:
        return []
    node = next((n for n in plan.nodes if path == f"{n.path}.params"), None)
    feeding = {i.source for i in node.inputs} if node is not None else set()
    out = []
    for n in plan.nodes:
        if n.name in feeding and n.role == "source" and n.kind == "trace":
            raw = n.params.get("paths", [n.params["path"]] if "path" in n.params else [])
            out.extend(plan.resolve(p) for p in raw)
    return out


def build_detect(params: dict[str, Any], path: str, plan: Any) -> Any:
    from streamflow_workers.errors import ModelLoadError, VariantError
    from streamflow_workers.variants import parse_variant
    variant = params.get("variant")
    where = path.rsplit(".params", 1)[0]
    if not isinstance(variant, str):
        raise PlanError(f"{where}.variant: missing (e.g. 'yolox_nano@416', 'mog2', 'yolox_nano@640/2')")
    try:
        spec = parse_variant(variant)
    except VariantError as exc:
        raise PlanError(f"{where}.variant: {one_line(exc)}") from None
    if spec.kind != "detect":
        raise PlanError(f"{where}.variant: {variant!r} is not a detect variant")
    unknown = sorted(set(params) - set(DETECT_PARAMS))
    if unknown:
        raise PlanError(f"{path}: unknown parameter(s) {', '.join(unknown)} (known: {', '.join(DETECT_PARAMS)})")
    from streamflow_workers.runtimes import RUNTIMES
    runtime = params.get("runtime", "opencv")
    if runtime not in RUNTIMES:
        raise PlanError(f"{path}.runtime: expected one of {', '.join(RUNTIMES)}, got {runtime!r}")
    options: dict[str, Any] = {}
    if spec.model == "yolox_nano" and spec.precision == "int8":
        calibration = params.get("calibration")
        if calibration is not None and not (isinstance(calibration, list) and all(isinstance(c, str) for c in calibration)):
            raise PlanError(f"{path}.calibration: expected a list of trace folders")
        paths = ([plan.resolve(c) if plan is not None else c for c in calibration] if calibration
                 else upstream_traces(plan, path))
        if not paths:
            raise PlanError(f"{where}.variant: {variant!r} needs calibration frames: set params.calibration "
                            f"(trace folders) or feed it from a trace source")
        options["calibration"] = paths
    if spec.model == "yolox_nano":
        classes = class_list(params.get("classes"), f"{path}.classes")
        if classes is not None:
            options["classes"] = classes
        for key in ("score_threshold", "nms_threshold"):
            if key in params:
                options[key] = float(params[key])
        if "agnostic_nms" in params:
            options["agnostic_nms"] = bool(params["agnostic_nms"])
        if "model" in params:
            options["model"] = plan.resolve(params["model"]) if plan is not None else params["model"]
    try:  # a model file that does not load is a plan error, found before any worker starts
        check_detector(spec.base, json.dumps(options, sort_keys=True))
    except (ModelLoadError, VariantError) as exc:
        raise PlanError(f"{where}: {one_line(exc)}") from None
    appearance = params.get("appearance")
    if appearance is not None:
        try:
            if parse_variant(appearance).kind != "embed":
                raise VariantError(f"{appearance!r} is not an embed variant")
        except VariantError as exc:
            raise PlanError(f"{path}.appearance: {one_line(exc)}") from None
    region = params.get("region")
    if region is not None and not (isinstance(region, list) and len(region) >= 3 and
                                   all(isinstance(p, list) and len(p) == 2 for p in region)):
        raise PlanError(f"{path}.region: expected a polygon [[x, y], ...] of at least 3 points, in frame pixels")
    min_size = params.get("min_size")
    if min_size is not None and not (isinstance(min_size, list) and len(min_size) == 2):
        raise PlanError(f"{path}.min_size: expected [min_width, min_height] in pixels")
    max_size, max_wait = batch_params(params)
    keep = bool(params.get("keep_frame", False))
    return lambda: DetectOperator(variant, runtime, options, keep, plan, max_size, max_wait, appearance,
                                  region, min_size)
