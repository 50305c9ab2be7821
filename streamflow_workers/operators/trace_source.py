"""The `trace` source: recorded cameras replayed at their captured pace as frame records.

A record is {"camera", "index", "ts", "frame" (H x W x 3 BGR uint8), "emitted_at"}; one record
per batch at the epoch the plan's epoch block gives its capture time. Several `paths` in one
source are merged in capture-time order.

On-camera filtering: when the detect operator this source feeds runs a `+diffT` variant, the
source (on the camera host) sends `frame: None` for frames that changed less than T against the
last frame it sent (streamflow_workers/detect/framediff.py); downstream reuses the last results for them.
"""
from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from streamflow.dataflow.operators.sink import EMITTED_AT
from streamflow.dataflow.source import AsyncIterableSource
from streamflow.errors import PlanError


ENCODINGS = ("raw", "jpeg")


def encode_frame(image: Any, encode: str, quality: int = 90) -> Any:
    """The frame as it travels: the decoded array, or JPEG bytes (what a camera would send)."""
    if encode == "raw":
        return image
    import cv2
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def source_record(camera: str, index: int, ts: float, image: Any, encode: str, quality: int,
                  frame_filter: Any = None) -> dict[str, Any]:
    """The record a camera host sends for one frame: the encoded picture, or `frame: None` when
    the frame filter drops it (the profiler builds its samples with this too)."""
    keep = frame_filter is None or frame_filter.keep(camera, image)
    return {"camera": camera, "index": index, "ts": ts, "frame": encode_frame(image, encode, quality) if keep else None}


def frame_filter_for(plan: Any, path: str) -> float | None:
    """The `+diffT` threshold of the detect variants the source at `path` feeds (None: no filter).

    The filter runs on the camera host but is part of the detect variant the planner chose, so
    the source reads it from its consumers in the plan; consumers that disagree are a plan error."""
    if plan is None:
        return None
    from streamflow_workers.errors import VariantError
    from streamflow_workers.variants import parse_variant
    source = next((n for n in plan.nodes if n.path == path and n.role == "source"), None)
    if source is None:
        return None
    thresholds = set()
    for n in plan.nodes:
        variant = n.variant or n.params.get("variant")
        if isinstance(variant, str) and any(i.source == source.name for i in n.inputs):
            try:
                thresholds.add(parse_variant(variant).diff)
            except VariantError:
                continue  # the consumer's own builder reports its bad name
    if len(thresholds) > 1:
        raise PlanError(f"{path}: its consumers ask for different on-camera filters "
                        f"({', '.join(str(t) for t in sorted(thresholds, key=str))}); one source sends one stream")
    return next(iter(thresholds), None)


def frame_image(frame: Any) -> Any:
    """A frame record's image as a BGR array, decoding JPEG bytes when the source encoded it."""
    if isinstance(frame, (bytes, bytearray, memoryview)):
        import cv2
        import numpy as np
        image = cv2.imdecode(np.frombuffer(frame, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError("a frame record holds bytes that are not a JPEG image")
        return image
    return frame


def open_traces(paths: list[str], where: str) -> list[Any]:
    """Open and check every trace (its video decodes a first frame) or raise a PlanError."""
    from streamflow_traces.format import Trace, TraceError
    from streamflow_traces.video import open_capture
    out = []
    for i, path in enumerate(paths):
        field = f"{where}[{i}]" if len(paths) > 1 else where
        try:
            trace = Trace.open(path)
        except TraceError as exc:
            raise PlanError(f"{field}: {exc}") from None
        try:
            cap = open_capture(trace.video_path)
            ok, _frame = cap.read()
            cap.release()
        except TraceError as exc:
            raise PlanError(f"{field}: {exc}") from None
        if not ok and trace.frame_count:
            raise PlanError(f"{field}: {trace.video_path}: the video does not decode (corrupt or unsupported)")
        out.append(trace)
    return out


class TraceSource(AsyncIterableSource):
    """Replays traces; `speed` 1 = recorded pace, 0 = as fast as possible."""

    emits_carried = True  # frame records: numbers, strings and a numpy image or JPEG bytes

    def __init__(self, paths: list[str], speed: float, unit: str, size: int, start: int = 0,
                 stop: int | None = None, stride: int = 1, encode: str = "raw", quality: int = 90,
                 schedule: Any = None, diff: float | None = None) -> None:
        self.paths, self.speed, self.unit, self.size = paths, speed, unit, size
        self.diff = diff
        self.schedule = schedule  # streamflow_traces.schedule.LoadSchedule: speed steps, cameras joining
        self.start, self.stop, self.stride = start, stop, stride
        self.encode, self.quality = encode, quality
        super().__init__(self._records, prefetch=4)

    async def _records(self, ctx: Any) -> AsyncIterator[tuple[int, list[dict[str, Any]]]]:
        from streamflow_traces.replay import FrameReader, first_capture, replay, seek
        readers = [FrameReader(p, start=self.start, stop=self.stop, stride=self.stride) for p in self.paths]
        # pace on the run's clock: frame ts is due (ts - first) / speed after the sources
        # started, also after a resume, when the replay seeks and catches up
        since_origin = time.time() - ctx.clock_origin
        origin = (time.perf_counter() - since_origin, first_capture(readers))
        if self.resume_epoch:
            seek(readers, self.resume_epoch, self.unit, self.size)
        schedule = self.schedule
        frame_filter = None
        if self.diff is not None:
            from streamflow_workers.detect.framediff import FrameDifferenceFilter
            frame_filter = FrameDifferenceFilter(self.diff)
        async for f in replay(readers, self.speed, self.unit, self.size, origin=origin,
                              due=schedule.due if schedule else None):
            if schedule is not None and not schedule.present(f.camera, f.ts - origin[1]):
                continue
            record = source_record(f.camera, f.index, f.ts, f.image, self.encode, self.quality, frame_filter)
            record[EMITTED_AT] = self._captured_at(f.ts - origin[1], ctx.clock_origin)
            yield f.epoch, [record]

    def _captured_at(self, offset: float, clock_origin: float) -> float:
        """When the frame was due on the run's clock (wall time): its capture, as far as latency
        goes. A frame emitted late, by a replay that resumed after a recovery or a live switch
        and catches up, counts the time it was late; one emitted on time is stamped now."""
        now = time.time()
        if self.speed <= 0:       # as fast as possible: no schedule to be late against
            return now
        due = clock_origin + (self.schedule.due(offset) if self.schedule else offset) / self.speed
        return min(now, due)


def build_trace_source(params: dict[str, Any], path: str, plan: Any) -> Any:
    raw = params.get("paths", [params["path"]] if "path" in params else None)
    if not isinstance(raw, list) or not raw or not all(isinstance(p, str) for p in raw):
        raise PlanError(f"{path}.path: expected a trace folder (or 'paths': a list of them)")
    where = f"{path}.paths" if "paths" in params else f"{path}.path"
    paths = [plan.resolve(p) if plan is not None else p for p in raw]
    open_traces(paths, where)
    speed = params.get("speed", 1.0)
    if plan is not None and plan.speed is not None:
        speed = plan.speed
    if not isinstance(speed, (int, float)) or speed < 0:
        raise PlanError(f"{path}.speed: expected a number >= 0, got {speed!r}")
    unit, size = (plan.epoch_unit, plan.epoch_size) if plan is not None else ("frame", 1)
    start, stop, stride = params.get("start", 0), params.get("stop"), params.get("stride", 1)
    for key, value in (("start", start), ("stride", stride)) + ((("stop", stop),) if stop is not None else ()):
        if not isinstance(value, int) or value < (1 if key == "stride" else 0):
            raise PlanError(f"{path}.{key}: expected a non-negative integer, got {value!r}")
    schedule = None
    if params.get("schedule") is not None:
        from streamflow_traces.schedule import ScheduleError, parse_schedule
        try:
            schedule = parse_schedule(params["schedule"], f"{path}.schedule")
        except ScheduleError as exc:
            raise PlanError(str(exc)) from None
    encode, quality = params.get("encode", "raw"), params.get("quality", 90)
    if encode not in ENCODINGS:
        raise PlanError(f"{path}.encode: expected one of {', '.join(ENCODINGS)}, got {encode!r}")
    if not isinstance(quality, int) or not 1 <= quality <= 100:
        raise PlanError(f"{path}.quality: expected a JPEG quality 1..100, got {quality!r}")
    diff = frame_filter_for(plan, path)
    return lambda: TraceSource(paths, float(speed), unit, size, start, stop, stride, encode, quality, schedule, diff)


def trace_groundtruth(params: dict[str, Any], plan: Any) -> dict[str, Any]:
    """{camera: GroundTruth} of the traces a trace source replays (those with annotations)."""
    from streamflow.metrics.groundtruth import GroundTruth
    from streamflow_traces.format import Trace
    raw = params.get("paths", [params.get("path")])
    out = {}
    for p in raw:
        trace = Trace.open(plan.resolve(p) if plan is not None else p)
        if trace.has_groundtruth:
            gt = trace.meta.groundtruth
            out[trace.camera] = GroundTruth(trace.camera, trace.groundtruth(), [float(t) for t in trace.timestamps],
                                            bool(gt.has_ids), gt.class_name)
    return out
