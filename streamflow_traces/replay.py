"""Replay traces: decode frames, emit them at the recorded pace, merge cameras, map time to epochs.

Decoding runs ahead in a thread with a small bounded queue so a slow decode never delays an
emission deadline; pacing sleeps with asyncio until just before a deadline and then yields to
the loop until it passes, which keeps emissions within about a millisecond of the schedule.
"""
from __future__ import annotations

import asyncio
import heapq
import threading
import time
from contextlib import aclosing
from pathlib import Path
from typing import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, NamedTuple, Sequence, TypeVar

import cv2
import numpy as np

from streamflow_traces.format import Trace, TraceError
from streamflow_traces.video import open_capture

T = TypeVar("T")
DEFAULT_DEPTH = 4  # frames decoded ahead per camera: enough to hide decode jitter, little memory
DEFAULT_SPIN = 0.002  # seconds before a deadline where pacing stops sleeping and yields instead


class Frame(NamedTuple):
    """One decoded frame of one camera: index into the trace, capture time, BGR uint8 image."""

    index: int
    ts: float
    image: np.ndarray


class CameraFrame(NamedTuple):
    """A frame tagged with its camera, as several cameras merge into one stream."""

    camera: str
    index: int
    ts: float
    image: np.ndarray


class FrameReader:
    """Decode a trace's video with OpenCV, frames start, start+stride, ... below stop.

    Iterate it directly to decode in the calling thread, or with `async for` to decode ahead in
    a background thread (`depth` frames at most) while the event loop keeps running.
    """

    def __init__(self, trace: Trace | str | Path, start: int = 0, stop: int | None = None,
                 stride: int = 1, depth: int = DEFAULT_DEPTH):
        self.trace = trace if isinstance(trace, Trace) else Trace.open(trace)
        n = self.trace.frame_count
        stop = n if stop is None else min(stop, n)
        if start < 0 or stride < 1 or depth < 1:
            raise ValueError("FrameReader needs start >= 0, stride >= 1 and depth >= 1")
        self.start, self.stop, self.stride, self.depth = start, stop, stride, depth

    @property
    def camera(self) -> str:
        return self.trace.camera

    def __len__(self) -> int:
        return len(range(self.start, self.stop, self.stride))

    def __iter__(self) -> Iterator[Frame]:
        if self.start >= self.stop:
            return
        path = self.trace.video_path
        cap = open_capture(str(path))
        if not cap.isOpened():
            raise TraceError(f"{path}: cannot open video (corrupt or unsupported format)")
        timestamps = self.trace.timestamps
        try:
            position = 0
            if self.start > 0:
                cap, position = seek_capture(cap, str(path), self.start)
            for index in range(self.start, self.stop, self.stride):
                while position < index:  # grab() skips without converting the picture
                    if not cap.grab():
                        raise TraceError(f"{path}: video ends at frame {position}, trace has {self.trace.frame_count}")
                    position += 1
                ok, image = cap.read()
                if not ok or image is None:
                    raise TraceError(f"{path}: video ends at frame {position}, trace has {self.trace.frame_count}")
                position += 1
                yield Frame(index, float(timestamps[index]), image)
        finally:
            cap.release()

    def __aiter__(self) -> AsyncIterator[Frame]:
        return decode_ahead(self, self.depth)


def seek_capture(cap: cv2.VideoCapture, path: str, index: int) -> tuple[cv2.VideoCapture, int]:
    """Put the decoder on frame `index` (returns the capture and its position): FFmpeg seeks to
    the keyframe at or before it and decodes forward to it (OpenCV's CAP_PROP_POS_FRAMES), so a
    replay resumed late in a clip (a recovery, a live switch) does not decode every frame before
    it. Where the container does not report that position, a fresh capture starts at frame 0 and
    the caller decodes forward from there, as before."""
    if cap.set(cv2.CAP_PROP_POS_FRAMES, index) and int(cap.get(cv2.CAP_PROP_POS_FRAMES)) == index:
        return cap, index
    cap.release()
    cap = open_capture(path)
    if not cap.isOpened():
        raise TraceError(f"{path}: cannot open video (corrupt or unsupported format)")
    return cap, 0


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


_END = object()


async def decode_ahead(items: Iterable[T], depth: int = DEFAULT_DEPTH) -> AsyncIterator[T]:
    """Run a blocking iterator in a thread, at most `depth` items ahead of the consumer."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    slots = threading.Semaphore(depth)
    closed = threading.Event()

    def deliver(item: object) -> bool:
        while not slots.acquire(timeout=0.05):
            if closed.is_set():
                return False
        if closed.is_set():
            return False
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop closed under us
            return False
        return True

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not deliver(item):
                    return
            deliver(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
            deliver(_Failure(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="decode-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            slots.release()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        closed.set()


async def sleep_until(deadline: float, clock: Callable[[], float] = time.perf_counter,
                      spin: float = DEFAULT_SPIN) -> None:
    """Sleep until clock() >= deadline: asyncio.sleep to `spin` before it, then yield to the
    loop until it passes (timer wake-ups are late by up to a millisecond or so)."""
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            return
        await asyncio.sleep(remaining - spin if remaining > spin else 0)


async def _items(frames: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    if hasattr(frames, "__aiter__"):
        stream = aiter(frames)  # type: ignore[arg-type]
        try:
            async for item in stream:
                yield item
        finally:
            if hasattr(stream, "aclose"):
                await stream.aclose()
    else:
        for item in frames:  # type: ignore[union-attr]
            yield item


async def paced(frames: Iterable[T] | AsyncIterable[T], speed: float = 1.0,
                clock: Callable[[], float] = time.perf_counter, *, spin: float = DEFAULT_SPIN,
                origin: tuple[float, float] | None = None,
                due: Callable[[float], float] | None = None) -> AsyncIterator[T]:
    """Emit items (anything with a `.ts` capture time) at their recorded pace times 1/speed,
    relative to the first item, or to `origin` = (clock time, capture time) when given (a
    replay resumed after a recovery keeps the run's schedule and catches up); speed 0 emits as
    fast as possible. `due` maps stream seconds since the origin to wall seconds at speed 1 (a
    load schedule; default: the identity). A late item goes out at once and later ones keep the
    original schedule (no drift is carried forward)."""
    if speed < 0:
        raise ValueError(f"speed {speed}: must be >= 0 (0 = as fast as possible)")
    async with aclosing(_items(frames)) as items:
        async for item in items:
            if speed > 0:
                ts = item.ts  # type: ignore[attr-defined]
                if origin is None:
                    origin = (clock(), ts)
                offset = ts - origin[1]
                await sleep_until(origin[0] + (due(offset) if due else offset) / speed, clock, spin)
            yield item


def _check_cameras(readers: Sequence[FrameReader]) -> None:
    cameras = [r.camera for r in readers]
    duplicates = sorted({c for c in cameras if cameras.count(c) > 1})
    if duplicates:
        raise TraceError(f"camera id {duplicates[0]!r} appears in more than one trace")


async def merge_cameras(readers: Sequence[FrameReader]) -> AsyncIterator[CameraFrame]:
    """Frames of several cameras in capture-time order (heap merge on ts; ties go to the camera
    listed first), each camera decoding ahead in its own thread."""
    _check_cameras(readers)
    streams = [aiter(r) for r in readers]
    heap: list[tuple[float, int, Frame]] = []
    try:
        for k, stream in enumerate(streams):
            first = await anext(stream, None)
            if first is not None:
                heap.append((first.ts, k, first))
        heapq.heapify(heap)
        while heap:
            _, k, frame = heapq.heappop(heap)
            yield CameraFrame(readers[k].camera, *frame)
            following = await anext(streams[k], None)
            if following is not None:
                heapq.heappush(heap, (following.ts, k, following))
    finally:
        for stream in streams:
            await stream.aclose()  # type: ignore[attr-defined]


def iter_merged(readers: Sequence[FrameReader]) -> Iterator[CameraFrame]:
    """The same capture-time merge as merge_cameras, decoding in the calling thread."""
    _check_cameras(readers)
    return heapq.merge(*(_tagged(r) for r in readers), key=lambda f: f.ts)


def _tagged(reader: FrameReader) -> Iterator[CameraFrame]:
    for frame in reader:
        yield CameraFrame(reader.camera, *frame)


def epoch_of(ts: float, start: float, unit: str, size: int, index: int | None = None) -> int:
    """The epoch of a frame as the plan's epoch block says.

    unit "frame": frame index // size (index is required). unit "ms": milliseconds since
    `start` // size, computed on whole microseconds so a frame exactly on a boundary does not
    fall into the previous epoch through float rounding.
    """
    if size < 1:
        raise ValueError(f"epoch size {size}: must be >= 1")
    if unit == "frame":
        if index is None:
            raise ValueError("epoch unit 'frame' needs the frame index")
        return index // size
    if unit == "ms":
        micros = round((ts - start) * 1_000_000)
        if micros < 0:
            raise ValueError(f"capture time {ts} precedes the epoch start {start}")
        return micros // (1000 * size)
    raise ValueError(f"epoch unit {unit!r}: expected 'frame' or 'ms'")


class EpochFrame(NamedTuple):
    """A replayed frame with the epoch the plan's epoch block gives it."""

    epoch: int
    camera: str
    index: int
    ts: float
    image: np.ndarray


def trace_start(readers: Sequence[FrameReader]) -> float:
    """Where "ms" epochs count from: the earliest frame 0 of all the traces."""
    return min((float(r.trace.timestamps[0]) for r in readers if r.trace.frame_count), default=0.0)


def first_capture(readers: Sequence[FrameReader]) -> float:
    """The capture time of the first frame a replay of `readers` emits."""
    return min((float(r.trace.timestamps[r.start]) for r in readers if r.start < r.stop), default=0.0)


def seek(readers: Sequence[FrameReader], epoch: int, unit: str = "frame", size: int = 1) -> None:
    """Move every reader to its first frame at or after `epoch` (a replay resuming after a
    checkpoint); epochs grow with the frame index, so a binary search over the stride finds it."""
    start = trace_start(readers)
    for r in readers:
        steps = range(r.start, r.stop, r.stride)
        lo, hi = 0, len(steps)
        while lo < hi:
            mid = (lo + hi) // 2
            i = steps[mid]
            if epoch_of(float(r.trace.timestamps[i]), start, unit, size, i) < epoch:
                lo = mid + 1
            else:
                hi = mid
        r.start = steps[lo] if lo < len(steps) else r.stop


async def replay(readers: Sequence[FrameReader], speed: float = 1.0, unit: str = "frame", size: int = 1,
                 clock: Callable[[], float] = time.perf_counter,
                 origin: tuple[float, float] | None = None,
                 due: Callable[[float], float] | None = None) -> AsyncIterator[EpochFrame]:
    """What a trace source emits: the cameras merged in capture order, paced at `speed`, each
    frame with its epoch. "ms" epochs count from the earliest frame 0 of all the traces, like
    "frame" epochs count from frame 0, so a replay that starts later keeps the same epochs.
    `origin` = (clock time, capture time) pins the pace to the run's schedule (see `paced`)."""
    start = trace_start(readers)
    async with aclosing(paced(merge_cameras(readers), speed, clock, origin=origin, due=due)) as frames:
        async for f in frames:
            yield EpochFrame(epoch_of(f.ts, start, unit, size, f.index), f.camera, f.index, f.ts, f.image)
