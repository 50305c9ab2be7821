"""Import every recorded clip of <repo>/../shared/data/traces into trace folders, ground truth
matched by name (see streamflow_traces/catalog.py). Usage:

    PYTHONPATH=. python tools/import_traces.py -o out/traces [--link] [--only ngsim]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm  # noqa: E402

from streamflow_traces.catalog import shared_clips  # noqa: E402
from streamflow_traces.format import TraceError  # noqa: E402
from streamflow_traces.importer import import_video  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, required=True, help="folder to hold one trace folder per clip")
    parser.add_argument("--only", default="", help="import only clips whose name contains this")
    parser.add_argument("--link", action="store_true", help="symlink the videos instead of copying them")
    parser.add_argument("--force", action="store_true", help="overwrite existing traces")
    args = parser.parse_args(argv)
    clips = [c for c in shared_clips() if args.only in c.name]
    if not clips:
        print("error: no clips found (is <repo>/../shared/data/traces there?)", file=sys.stderr)
        return 2
    try:
        for clip in tqdm(clips, desc="import"):
            trace = import_video(clip.video, args.out / clip.name, groundtruth=clip.groundtruth,
                                 class_label=clip.class_label, force=args.force, link=args.link)
            gt = clip.groundtruth.name if clip.groundtruth else "no ground truth"
            tqdm.write(f"{trace.directory}: {trace.frame_count} frames, {trace.duration:.1f} s, {gt}")
    except TraceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
