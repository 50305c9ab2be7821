"""Derived model files (dynamic-shape, int8, fp16) cached under a content hash, never beside the
shared data: `$STREAMFLOW_CACHE/models` or `~/.cache/streamflow/models`.

The file name carries a hash of everything the file is derived from (source bytes, transform,
calibration frames, library version), so a changed input yields a new file and a stale one is
never reused. Writers build into a temporary file and rename it: workers that start together
on one host may build the same file twice, but none reads a half-written one.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def cache_dir() -> Path:
    """Where derived models live (created on first use)."""
    root = os.environ.get("STREAMFLOW_CACHE")
    path = (Path(root) if root else Path.home() / ".cache" / "streamflow") / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def content_hash(*parts: bytes | str) -> str:
    """sha256 over the parts (length-prefixed so boundaries count), 16 hex digits."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else bytes(part)
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()[:16]


def file_hash(path: Path) -> str:
    """Content hash of a file's bytes."""
    return content_hash(Path(path).read_bytes())


def cached_model(stem: str, key: str, build: Callable[[Path], None]) -> Path:
    """`<cache>/<stem>-<key>.onnx`, built by `build(tmp_path)` unless it already exists."""
    target = cache_dir() / f"{stem}-{key}.onnx"
    if target.is_file():
        return target
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{stem}-", suffix=".onnx")
    os.close(fd)
    try:
        build(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
