"""COCO's 80 class names in index order: the class_id column of boxes, and names for --class."""
from __future__ import annotations

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)


def class_index(name: str) -> int:
    """COCO index of a class name (case-insensitive); ValueError naming the name if unknown."""
    key = name.strip().lower()
    if key in COCO_CLASSES:
        return COCO_CLASSES.index(key)
    raise ValueError(f"unknown class {name!r} (expected a COCO class name such as person, car, truck)")


def class_name(index: int) -> str | None:
    """Name of a COCO class index, None for -1 or out of range."""
    return COCO_CLASSES[index] if 0 <= index < len(COCO_CLASSES) else None
