"""Benchmark trace replay: decode frames/s per clip, and pacing error against the recorded schedule.

Pacing error of a frame = (emission time - first emission) - (ts - first ts) / speed, measured
with time.perf_counter right where a consumer receives the frame. Usage:

    PYTHONPATH=. python tools/bench_replay.py [TRACE_DIR ...] [--seconds 3] [--loop uvloop] [--plot out.png]

Without TRACE_DIR it imports every clip of <repo>/../shared/data/traces into a temporary folder.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamflow_traces.catalog import shared_clips  # noqa: E402
from streamflow_traces.format import Trace, TraceError  # noqa: E402
from streamflow_traces.importer import import_video  # noqa: E402
from streamflow_traces.replay import FrameReader, paced  # noqa: E402


def decode_rate(trace: Trace, max_frames: int) -> float:
    """Frames/s of FrameReader decoding in the calling thread."""
    reader = FrameReader(trace, stop=max_frames)
    begin = time.perf_counter()
    count = sum(1 for _ in reader)
    return count / (time.perf_counter() - begin)


async def pacing_errors(trace: Trace, frames: int, speed: float) -> np.ndarray:
    """Emission error in ms of each frame after the first, at `speed`."""
    emitted: list[tuple[float, float]] = []
    async for frame in paced(FrameReader(trace, stop=frames), speed=speed):
        emitted.append((time.perf_counter(), frame.ts))
    t0, ts0 = emitted[0]
    return np.array([((t - t0) - (ts - ts0) / speed) * 1000 for t, ts in emitted[1:]])


def run_loop(coro, loop_name: str):
    if loop_name == "uvloop":
        import uvloop
        return uvloop.run(coro)
    return asyncio.run(coro)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", nargs="*", help="trace folders (default: import the shared clips)")
    parser.add_argument("--seconds", type=float, default=3.0, help="recorded seconds to replay per clip")
    parser.add_argument("--min-frames", type=int, default=30, help="replay at least this many frames per clip")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--decode-frames", type=int, default=300, help="frames to decode for frames/s")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    parser.add_argument("--plot", type=Path, help="write a PNG of the pacing-error distribution")
    args = parser.parse_args(argv)
    if args.speed <= 0:
        parser.error("--speed must be > 0 to measure pacing")

    with tempfile.TemporaryDirectory() as tmp:
        try:
            if args.traces:
                traces = [Trace.open(p) for p in args.traces]
            else:
                clips = shared_clips()
                if not clips:
                    print("error: no trace folders given and no shared data beside the repo", file=sys.stderr)
                    return 2
                traces = [import_video(c.video, Path(tmp) / c.name) for c in tqdm(clips, desc="import")]
        except TraceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

        rows, all_errors = [], {}
        for trace in tqdm(traces, desc="replay"):
            rate = decode_rate(trace, args.decode_frames)
            fps = trace.meta.fps
            frames = min(trace.frame_count, max(args.min_frames, int(args.seconds * fps) + 1))
            errors = run_loop(pacing_errors(trace, frames, args.speed), args.loop)
            all_errors[trace.camera] = errors
            rows.append((trace.camera, f"{trace.meta.width}x{trace.meta.height}", fps, rate, frames,
                         np.median(np.abs(errors)), np.percentile(np.abs(errors), 99), np.abs(errors).max()))

    print(f"\nreplay at speed {args.speed:g} on {args.loop}; error = emission - schedule")
    header = f"{'camera':<36} {'size':>9} {'fps':>6} {'decode f/s':>10} {'frames':>6} " \
             f"{'median ms':>9} {'p99 ms':>7} {'max ms':>7}"
    print(header)
    print("-" * len(header))
    for camera, size, fps, rate, frames, med, p99, mx in rows:
        print(f"{camera:<36} {size:>9} {fps:>6.1f} {rate:>10.0f} {frames:>6} {med:>9.3f} {p99:>7.3f} {mx:>7.3f}")
    every = np.abs(np.concatenate(list(all_errors.values())))
    print(f"{'all':<36} {'':>9} {'':>6} {'':>10} {len(every):>6} {np.median(every):>9.3f} "
          f"{np.percentile(every, 99):>7.3f} {every.max():>7.3f}")

    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 4))
        for camera, errors in all_errors.items():
            ax.plot(np.sort(np.maximum(np.abs(errors), 1e-3)), np.linspace(0, 1, len(errors)), label=camera, lw=1)
        ax.axvline(1.0, color="grey", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("|emission - recorded schedule| (ms, log scale)")
        ax.set_ylabel("fraction of frames")
        ax.set_title(f"replay pacing at speed {args.speed:g} ({args.loop})")
        ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
