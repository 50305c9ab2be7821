"""The trace source stamps each frame with when it was due on the run's clock, so the latency
sinks report for frames a resumed replay emits late (after a recovery or a live switch) counts
the time they were late."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from streamflow.dataflow.operators.sink import EMITTED_AT
from streamflow_traces.replay import FrameReader, first_capture
from streamflow_workers.operators.trace_source import TraceSource

CLIP = Path(__file__).resolve().parents[2] / "traces" / "clips" / "ngsim_cam1"


async def _first(source: TraceSource, ctx: SimpleNamespace, n: int) -> list[tuple[float, dict]]:
    out = []
    async for _epoch, [record] in source._records(ctx):
        out.append((time.time(), record))
        if len(out) == n:
            break
    return out


def test_frames_emitted_on_time_are_stamped_at_emission_and_late_ones_at_their_due_time() -> None:
    start = first_capture([FrameReader(str(CLIP))])
    on_time = SimpleNamespace(clock_origin=time.time())
    for emitted, record in asyncio.run(_first(TraceSource([str(CLIP)], 1.0, "ms", 1000), on_time, 3)):
        assert emitted - 0.05 <= record[EMITTED_AT] <= emitted
        assert record[EMITTED_AT] == pytest.approx(on_time.clock_origin + record["ts"] - start, abs=0.05)
    # a replay resumed at epoch 3 (stream seconds 3-4) of a run that started 6 s ago catches up:
    # its frames go out at once, each stamped with when it was due, 2-3 s ago
    resumed = TraceSource([str(CLIP)], 1.0, "ms", 1000)
    resumed.resume_after(2)
    late = SimpleNamespace(clock_origin=time.time() - 6.0)
    for emitted, record in asyncio.run(_first(resumed, late, 3)):
        due = late.clock_origin + record["ts"] - start
        assert record[EMITTED_AT] == pytest.approx(due, abs=1e-6)
        assert emitted - record[EMITTED_AT] > 1.5
