"""Batches on the wire without pickle: msgpack for records, raw frames for numpy arrays.

A numpy batch travels as one header plus its buffer, sent and received without a copy. A list
of records goes through msgpack; tuples keep their type (ext 1) and numpy arrays inside records
(video frames in a dict) leave the msgpack body as out-of-band frames (ext 2), so a 6 MB frame
is never copied into the message. Anything else msgpack cannot represent is refused.
"""
from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

EXT_TUPLE = 1
EXT_ARRAY = 2
KIND_NDARRAY = 0
KIND_MSGPACK = 1


class CodecError(TypeError):
    """A record that cannot cross a process boundary (we never fall back to pickle)."""


def _array_meta(arr: np.ndarray) -> list[Any]:
    if arr.dtype.hasobject:
        raise CodecError("numpy arrays of Python objects cannot be sent between processes")
    return [arr.dtype.str, list(arr.shape)]


def _contiguous(arr: np.ndarray) -> np.ndarray:
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def encode(batch: Any) -> tuple[int, list[Any], list[Any]]:
    """(kind, meta, frames) for a batch; frames are buffers sent as separate zmq frames."""
    if isinstance(batch, np.ndarray):
        arr = _contiguous(batch)
        return KIND_NDARRAY, _array_meta(arr), [memoryview(arr).cast("B") if arr.size else b""]
    frames: list[Any] = [None]

    def default(obj: Any) -> Any:
        if isinstance(obj, tuple):
            return msgpack.ExtType(EXT_TUPLE, msgpack.packb(list(obj), default=default,
                                                            strict_types=True, use_bin_type=True))
        if isinstance(obj, np.ndarray):
            arr = _contiguous(obj)
            frames.append(memoryview(arr).cast("B") if arr.size else b"")
            return msgpack.ExtType(EXT_ARRAY, msgpack.packb([len(frames) - 1, *_array_meta(arr)]))
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, (set, frozenset)):
            return sorted(obj)
        raise CodecError(f"cannot send a {type(obj).__name__} between processes "
                         "(records must be msgpack types, tuples or numpy arrays)")
    try:
        frames[0] = msgpack.packb(batch, default=default, strict_types=True, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(str(exc)) from None
    return KIND_MSGPACK, [], frames


def decode(kind: int, meta: list[Any], frames: list[Any]) -> Any:
    """The batch `encode` made; numpy arrays view the received frames without copying."""
    if kind == KIND_NDARRAY:
        dtype, shape = meta
        return np.frombuffer(frames[0], dtype=np.dtype(dtype)).reshape(shape)

    def ext_hook(code: int, data: bytes) -> Any:
        if code == EXT_TUPLE:
            return tuple(msgpack.unpackb(data, ext_hook=ext_hook, raw=False, strict_map_key=False))
        if code == EXT_ARRAY:
            index, dtype, shape = msgpack.unpackb(data, raw=False)
            return np.frombuffer(frames[index], dtype=np.dtype(dtype)).reshape(shape)
        raise CodecError(f"unknown msgpack extension type {code}")
    return msgpack.unpackb(frames[0], ext_hook=ext_hook, raw=False, strict_map_key=False,
                           use_list=True)


def nbytes(frames: list[Any]) -> int:
    """Payload size of encoded frames."""
    return sum(f.nbytes if isinstance(f, memoryview) else len(f) for f in frames)
