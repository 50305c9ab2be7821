"""Calibration frames for int8 quantisation: frames of the workflow's own traces, spread evenly
over each trace (the scene's range of light and traffic, not its first second)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from streamflow_workers.errors import ModelLoadError

DEFAULT_FRAMES = 16


def calibration_frames(paths: list[str | Path], count: int = DEFAULT_FRAMES) -> list[np.ndarray]:
    """`count` BGR frames in all, evenly spaced over the traces in `paths` (trace folders)."""
    from streamflow_traces.format import Trace, TraceError
    from streamflow_traces.replay import FrameReader
    if not paths:
        raise ModelLoadError("int8 calibration needs trace folders ('calibration' parameter or the upstream source)")
    frames: list[np.ndarray] = []
    per_trace = [count // len(paths) + (i < count % len(paths)) for i in range(len(paths))]
    for path, wanted in zip(paths, per_trace):
        if wanted == 0:
            continue
        try:
            trace = Trace.open(path)
            stride = max(1, trace.frame_count // wanted)
            frames.extend(f.image for f in FrameReader(trace, stop=stride * wanted, stride=stride))
        except (TraceError, OSError) as exc:
            raise ModelLoadError(f"int8 calibration: {str(exc).splitlines()[0]}") from None
    return frames
