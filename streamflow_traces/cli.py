"""`streamflow trace import|record|info ...`: main(argv) with argv = the words after `trace`.

User errors (missing trace, corrupt video, bad option) print one line `error: ...` and return 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from streamflow_traces.format import Trace, TraceError

EXIT_USAGE = 2


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one line instead of usage + message."""

    def error(self, message: str):  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="streamflow trace", description="Import, record and inspect video traces.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    imp = sub.add_parser("import", help="turn a video file (and its ground truth) into a trace folder")
    imp.add_argument("video", help="video file (anything OpenCV's FFmpeg reads)")
    imp.add_argument("-o", "--out", required=True, help="trace folder to write")
    imp.add_argument("--gt", help="ground truth: MOTChallenge .txt/.csv or COCO .json")
    imp.add_argument("--fps", type=float, help="frame rate for the timestamps (default: the container's)")
    imp.add_argument("--camera", help="camera id (default: the video's file name)")
    imp.add_argument("--start", type=float, default=0.0,
                     help="capture time of frame 0, unix seconds (default 0: relative time)")
    imp.add_argument("--class", dest="class_label", help="COCO class of class-less MOT boxes, e.g. person or car")
    imp.add_argument("--link", action="store_true",
                     help="symlink the video (relative path) instead of copying it")
    imp.add_argument("--force", action="store_true", help="overwrite an existing trace")

    rec = sub.add_parser("record", help="record a camera, RTSP/HTTP URL or file into a trace folder")
    rec.add_argument("source", help="camera index (0), RTSP/HTTP URL or video file")
    rec.add_argument("-o", "--out", required=True, help="trace folder to write")
    rec.add_argument("--max-frames", type=int, help="stop after N frames")
    rec.add_argument("--duration", type=float, help="stop after S seconds")
    rec.add_argument("--fps-out", type=float, help="frame rate written in the video file (default: the source's)")
    rec.add_argument("--camera", help="camera id (default: from the source)")
    rec.add_argument("--realtime", action="store_true", help="pace a file source at its frame rate, like a camera")
    rec.add_argument("--force", action="store_true", help="overwrite an existing trace")

    info = sub.add_parser("info", help="summarise a trace folder")
    info.add_argument("trace", help="trace folder")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def _run(args: argparse.Namespace) -> int:
    progress = sys.stderr.isatty()
    if args.command == "import":
        from streamflow_traces.importer import import_video
        trace = import_video(args.video, args.out, groundtruth=args.gt, fps=args.fps, camera=args.camera,
                             start=args.start, class_label=args.class_label, force=args.force,
                             link=args.link, progress=progress)
        claimed = trace.meta.extra.get("container_frame_count")
        if claimed and claimed != trace.frame_count:
            print(f"note: decoded {trace.frame_count} frames; the container claims {claimed}", file=sys.stderr)
        print(f"{trace.directory}: {trace.frame_count} frames, {trace.duration:.2f} s"
              + (", with ground truth" if trace.has_groundtruth else ""))
    elif args.command == "record":
        from streamflow_traces.recorder import record
        trace = record(args.source, args.out, max_frames=args.max_frames, duration=args.duration,
                       fps_out=args.fps_out, camera=args.camera, realtime=args.realtime,
                       force=args.force, progress=progress)
        print(f"{trace.directory}: {trace.frame_count} frames, {trace.duration:.2f} s")
    else:
        from streamflow_traces.info import format_info, trace_info
        summary = trace_info(Trace.open(args.trace))
        print(json.dumps(summary, indent=2) if args.json else format_info(summary))
    return 0


def _quiet_opencv() -> None:
    """OpenCV warns on stderr about every capture backend it tries; the error line says it all."""
    import cv2
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one trace command; returns the exit status."""
    try:
        _quiet_opencv()
        return _run(build_parser().parse_args(argv))
    except (TraceError, _UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
