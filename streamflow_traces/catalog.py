"""The recorded clips in <repo>/../shared/data/traces: where they are and which ground truth fits.

Ground-truth files are matched to clips by name: a file `KEY_gt_*.txt` or `KEY_coco.json` fits
the clip whose name starts with KEY, and a WxH token in its name must equal the clip's size
(PETS09 ships boxes for 480x360 and for the original 768x576).
"""
from __future__ import annotations


import re
from dataclasses import dataclass
from pathlib import Path

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")
_SIZE = re.compile(r"(\d{2,5})x(\d{2,5})")

# What each scene's boxes are, from shared/data/README.md; MOTChallenge files carry no class.
SCENE_CLASSES = {"pets09": "person", "tud_": "person", "ngsim_": "car", "gram_": "car"}


def shared_data_dir() -> Path | None:
    """The offline data set: $STREAMFLOW_DATA, else <repo>/../shared/data; None when absent."""
    from streamflow_workers.data import shared_data_dir as configured
    path = configured()
    return path if path.is_dir() else None


@dataclass(frozen=True)
class Clip:
    """A recorded video and the ground truth that fits it (None where there is none)."""

    video: Path
    groundtruth: Path | None
    class_label: str | None

    @property
    def name(self) -> str:
        return self.video.stem


def _gt_key(gt: Path) -> str:
    stem = gt.stem
    for marker in ("_gt", "_coco"):
        if marker in stem:
            return stem[: stem.index(marker)]
    return stem


def match_groundtruth(video: Path, candidates: list[Path], size: tuple[int, int] | None = None) -> Path | None:
    """The ground-truth file for `video` among `candidates`: longest name key, COCO before MOT."""
    stem = video.stem
    if size is None:
        m = _SIZE.search(stem)
        size = (int(m.group(1)), int(m.group(2))) if m else None
    fits = []
    for gt in candidates:
        key = _gt_key(gt)
        if not (stem == key or stem.startswith(key + "_")):
            continue
        m = _SIZE.search(gt.stem[len(key):])
        if m and size is not None and (int(m.group(1)), int(m.group(2))) != size:
            continue
        fits.append((len(key), gt.suffix.lower() == ".json", gt.name, gt))
    return max(fits)[3] if fits else None


def scene_class(video: Path) -> str | None:
    """The class the boxes of a known scene are (person, car), for class-less MOT files."""
    for prefix, label in SCENE_CLASSES.items():
        if video.name.startswith(prefix):
            return label
    return None


def shared_clips(data_dir: Path | None = None) -> list[Clip]:
    """Every clip in shared/data/traces with its ground truth; [] when the data is absent."""
    data_dir = data_dir or shared_data_dir()
    if data_dir is None or not (data_dir / "traces").is_dir():
        return []
    folder = data_dir / "traces"
    gts = sorted((folder / "gt").glob("*")) if (folder / "gt").is_dir() else []
    clips = []
    for video in sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES):
        gt = match_groundtruth(video, gts)
        clips.append(Clip(video, gt, scene_class(video) if gt is not None else None))
    return clips
