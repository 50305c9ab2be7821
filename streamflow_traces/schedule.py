"""Load changes in a replay: a speed schedule and cameras that join or leave.

    {"speed": [[0, 1], [30, 2]],                       # from stream second 30 on, twice the pace
     "cameras": {"ngsim_cam3": {"start_s": 20},        # camera 3 joins at stream second 20
                 "ngsim_cam4": {"start_s": 20, "stop_s": 60}}}

Times are stream seconds: capture time since the replay's first frame. The schedule is part of
the source's definition, so a replay that resumes after a checkpoint reproduces it exactly.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any


class ScheduleError(ValueError):
    """A schedule that does not parse; the message names the field."""


@dataclass
class LoadSchedule:
    speeds: list[tuple[float, float]] = field(default_factory=lambda: [(0.0, 1.0)])  # (from s, speed)
    cameras: dict[str, tuple[float, float | None]] = field(default_factory=dict)    # camera -> (start, stop)

    def due(self, t: float) -> float:
        """Wall seconds after the replay's start at which stream second `t` is emitted."""
        wall, starts = 0.0, [s for s, _v in self.speeds]
        for i, (start, speed) in enumerate(self.speeds):
            end = starts[i + 1] if i + 1 < len(starts) else float("inf")
            if t <= start:
                break
            wall += (min(t, end) - start) / speed
        return wall

    def speed_at(self, t: float) -> float:
        i = bisect.bisect_right([s for s, _v in self.speeds], t) - 1
        return self.speeds[max(0, i)][1]

    def present(self, camera: str, t: float) -> bool:
        """Whether `camera` sends frames at stream second `t`."""
        span = self.cameras.get(camera)
        if span is None:
            return True
        start, stop = span
        return t >= start and (stop is None or t < stop)


def parse_schedule(raw: Any, where: str = "schedule") -> LoadSchedule:
    if not isinstance(raw, dict):
        raise ScheduleError(f"{where}: expected an object with 'speed' and/or 'cameras'")
    unknown = sorted(set(raw) - {"speed", "cameras"})
    if unknown:
        raise ScheduleError(f"{where}: unknown field(s) {', '.join(unknown)} (known: speed, cameras)")
    speeds: list[tuple[float, float]] = [(0.0, 1.0)]
    if "speed" in raw:
        steps = raw["speed"]
        if not isinstance(steps, list) or not steps:
            raise ScheduleError(f"{where}.speed: expected a list of [from_s, speed] pairs")
        parsed = []
        for i, step in enumerate(steps):
            if (not isinstance(step, list) or len(step) != 2
                    or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in step)
                    or step[0] < 0 or step[1] <= 0):
                raise ScheduleError(f"{where}.speed[{i}]: expected [from_s >= 0, speed > 0], got {step!r}")
            parsed.append((float(step[0]), float(step[1])))
        if [s for s, _v in parsed] != sorted({s for s, _v in parsed}):
            raise ScheduleError(f"{where}.speed: the from_s values must increase")
        speeds = parsed if parsed[0][0] == 0 else [(0.0, 1.0), *parsed]
    cameras: dict[str, tuple[float, float | None]] = {}
    for camera, span in (raw.get("cameras") or {}).items():
        w = f"{where}.cameras.{camera}"
        if not isinstance(span, dict) or set(span) - {"start_s", "stop_s"}:
            raise ScheduleError(f"{w}: expected {{'start_s': s, 'stop_s': s}}")
        start, stop = span.get("start_s", 0), span.get("stop_s")
        for key, v in (("start_s", start), ("stop_s", stop)):
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0):
                raise ScheduleError(f"{w}.{key}: expected seconds >= 0, got {v!r}")
        if stop is not None and stop <= start:
            raise ScheduleError(f"{w}: stop_s must come after start_s")
        cameras[camera] = (float(start), None if stop is None else float(stop))
    return LoadSchedule(speeds, cameras)
