"""Batches on the wire without pickle: msgpack for records, raw frames for numpy arrays.

A numpy batch travels as one header plus its buffer, sent and received without a copy. A list
of records goes through msgpack; every type of the record type system (streamflow/records/
typesystem.py, docs/records.md) that msgpack does not carry natively travels as an extension
type, so it arrives with the same type and value. Numpy arrays inside records (video frames in
a dict) leave the msgpack body as out-of-band frames, so a 6 MB frame is never copied into the
message; arrays arrive read-only, viewing the received buffer. What the type system refuses is
refused here with the same message (`check_batch` names the record, field and type).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import uuid
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import msgpack
import numpy as np

from streamflow.records.typesystem import (OK_KINDS, RecordTypeError, array_problem, check_batch,
                                           class_path, kind_of, record_class, zone_problem)

KIND_NDARRAY = 0
KIND_MSGPACK = 1

EXT_TUPLE, EXT_ARRAY, EXT_SET, EXT_FROZENSET, EXT_BIGINT, EXT_NAMEDTUPLE, EXT_DATACLASS = 1, 2, 3, 4, 5, 6, 7
EXT_NPSCALAR, EXT_COMPLEX, EXT_DECIMAL, EXT_UUID = 8, 10, 11, 12
EXT_DATETIME, EXT_DATE, EXT_TIME, EXT_TIMEDELTA = 13, 14, 15, 16
TEXT = "surrogatepass"  # str may hold any code point, lone surrogates included


class CodecError(RecordTypeError):
    """A record that cannot cross a process boundary (we never fall back to pickle)."""


def _contiguous(arr: np.ndarray) -> np.ndarray:
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def _tz(tzinfo: Any) -> Any:
    if tzinfo is None:
        return None
    if isinstance(tzinfo, ZoneInfo):
        return ["zone", tzinfo.key]
    offset = tzinfo.utcoffset(None)
    name = tzinfo.tzname(None)
    default = dt.timezone(offset).tzname(None)
    return ["offset", offset.days, offset.seconds, offset.microseconds, None if name == default else name]


def _untz(spec: Any) -> Any:
    if spec is None:
        return None
    if spec[0] == "zone":
        return ZoneInfo(spec[1])
    offset = dt.timedelta(spec[1], spec[2], spec[3])
    return dt.timezone(offset) if spec[4] is None else dt.timezone(offset, spec[4])


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)


class _Encoder:
    """msgpack `default`: extension types for what msgpack does not carry natively."""

    def __init__(self) -> None:
        self.frames: list[Any] = [None]

    def pack(self, obj: Any) -> bytes:
        return msgpack.packb(obj, default=self.default, strict_types=True, use_bin_type=True,
                             unicode_errors=TEXT)

    def default(self, obj: Any) -> Any:
        cls = type(obj)
        ext = _SIMPLE.get(cls)
        if ext is not None:
            code, fn = ext
            return msgpack.ExtType(code, fn(self, obj))
        if cls is int:  # beyond 64 bits
            return msgpack.ExtType(EXT_BIGINT, _int_bytes(obj))
        kind = kind_of(cls)
        if kind not in OK_KINDS:
            raise CodecError(kind)
        if kind == "ndarray":
            why = array_problem(obj)
            if why:
                raise CodecError(why)
            arr = _contiguous(obj)
            self.frames.append(memoryview(arr).cast("B") if arr.size else b"")
            return msgpack.ExtType(EXT_ARRAY, msgpack.packb([len(self.frames) - 1, arr.dtype.str, list(arr.shape)]))
        if kind == "npscalar":
            return msgpack.ExtType(EXT_NPSCALAR, msgpack.packb([obj.dtype.str, obj.tobytes()]))
        if kind == "namedtuple":
            return msgpack.ExtType(EXT_NAMEDTUPLE, self.pack([class_path(cls), list(obj)]))
        if kind == "dataclass":
            values = [getattr(obj, f.name) for f in dataclasses.fields(obj)]
            return msgpack.ExtType(EXT_DATACLASS, self.pack([class_path(cls), values]))
        raise CodecError(f"{cls.__name__} is not a record type")


def _zoned(obj: Any) -> None:
    why = zone_problem(obj)
    if why:
        raise CodecError(why)


def _datetime(enc: _Encoder, v: dt.datetime) -> bytes:
    _zoned(v)
    return enc.pack([v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, v.fold, _tz(v.tzinfo)])


def _time(enc: _Encoder, v: dt.time) -> bytes:
    _zoned(v)
    return enc.pack([v.hour, v.minute, v.second, v.microsecond, v.fold, _tz(v.tzinfo)])


_SIMPLE: dict[type, tuple[int, Callable[[_Encoder, Any], bytes]]] = {
    tuple: (EXT_TUPLE, lambda e, v: e.pack(list(v))),
    set: (EXT_SET, lambda e, v: e.pack(list(v))),
    frozenset: (EXT_FROZENSET, lambda e, v: e.pack(list(v))),
    complex: (EXT_COMPLEX, lambda e, v: e.pack([v.real, v.imag])),
    decimal.Decimal: (EXT_DECIMAL, lambda e, v: str(v).encode()),
    uuid.UUID: (EXT_UUID, lambda e, v: v.bytes),
    dt.datetime: (EXT_DATETIME, _datetime),
    dt.date: (EXT_DATE, lambda e, v: e.pack(v.toordinal())),
    dt.time: (EXT_TIME, _time),
    dt.timedelta: (EXT_TIMEDELTA, lambda e, v: e.pack([v.days, v.seconds, v.microseconds])),
}


def encode(batch: Any) -> tuple[int, list[Any], list[Any]]:
    """(kind, meta, frames) for a batch; frames are buffers sent as separate zmq frames.

    Raises RecordTypeError naming the record, field and type of a value that cannot cross."""
    if type(batch) is np.ndarray:
        why = array_problem(batch)
        if why:
            raise CodecError(f"batch: {why}")
        arr = _contiguous(batch)
        return KIND_NDARRAY, [arr.dtype.str, list(arr.shape)], [memoryview(arr).cast("B") if arr.size else b""]
    enc = _Encoder()
    try:
        enc.frames[0] = enc.pack(batch)
    except (TypeError, ValueError, OverflowError) as exc:
        check_batch(batch)  # names the record and field; the same message as in one process
        raise CodecError(str(exc)) from None
    return KIND_MSGPACK, [], enc.frames


class _Decoder:
    """msgpack `ext_hook`: rebuilds the extension types `_Encoder` made."""

    def __init__(self, frames: list[Any]) -> None:
        self.frames = frames
        self.classes: dict[str, type] = {}

    def unpack(self, data: bytes) -> Any:
        return msgpack.unpackb(data, ext_hook=self.ext_hook, raw=False, strict_map_key=False,
                               use_list=True, unicode_errors=TEXT)

    def cls(self, path: str) -> type:
        found = self.classes.get(path)
        if found is None:
            found = self.classes[path] = record_class(path)
        return found

    def ext_hook(self, code: int, data: bytes) -> Any:
        if code == EXT_TUPLE:
            return tuple(self.unpack(data))
        if code == EXT_ARRAY:
            index, dtype, shape = msgpack.unpackb(data, raw=False)
            return np.frombuffer(self.frames[index], dtype=np.dtype(dtype)).reshape(shape)
        if code == EXT_SET:
            return set(self.unpack(data))
        if code == EXT_FROZENSET:
            return frozenset(self.unpack(data))
        if code == EXT_BIGINT:
            return int.from_bytes(data, "little", signed=True)
        if code == EXT_NAMEDTUPLE:
            path, values = self.unpack(data)
            return self.cls(path)._make(values)
        if code == EXT_DATACLASS:
            path, values = self.unpack(data)
            cls = self.cls(path)
            obj = object.__new__(cls)
            for f, v in zip(dataclasses.fields(cls), values):
                object.__setattr__(obj, f.name, v)
            return obj
        if code == EXT_NPSCALAR:
            dtype, raw = msgpack.unpackb(data, raw=False)
            dtype = np.dtype(dtype)
            if dtype.itemsize == 0:  # np.str_('') and np.bytes_(b'')
                return dtype.type()
            return np.frombuffer(raw, dtype=dtype)[0]
        if code == EXT_COMPLEX:
            re, im = self.unpack(data)
            return complex(re, im)
        if code == EXT_DECIMAL:
            return decimal.Decimal(data.decode())
        if code == EXT_UUID:
            return uuid.UUID(bytes=data)
        if code == EXT_DATETIME:
            *parts, fold, tz = self.unpack(data)
            return dt.datetime(*parts, tzinfo=_untz(tz), fold=fold)
        if code == EXT_DATE:
            return dt.date.fromordinal(self.unpack(data))
        if code == EXT_TIME:
            *parts, fold, tz = self.unpack(data)
            return dt.time(*parts, tzinfo=_untz(tz), fold=fold)
        if code == EXT_TIMEDELTA:
            return dt.timedelta(*self.unpack(data))
        raise CodecError(f"unknown msgpack extension type {code}")


def decode(kind: int, meta: list[Any], frames: list[Any]) -> Any:
    """The batch `encode` made; numpy arrays view the received frames without copying."""
    if kind == KIND_NDARRAY:
        dtype, shape = meta
        return np.frombuffer(frames[0], dtype=np.dtype(dtype)).reshape(shape)
    return _Decoder(frames).unpack(frames[0])


def pack_value(value: Any) -> bytes:
    """One value (operator state, a snapshot) as bytes; numpy arrays travel inside the body."""
    kind, meta, frames = encode([value])
    return msgpack.packb([kind, meta, [bytes(f) for f in frames]], use_bin_type=True)


def unpack_value(data: bytes) -> Any:
    """The value `pack_value` made (arrays are copies, writable)."""
    kind, meta, frames = msgpack.unpackb(data, raw=False)
    batch = decode(kind, meta, [bytearray(f) for f in frames])
    return batch[0]


def nbytes(frames: list[Any]) -> int:
    """Payload size of encoded frames."""
    return sum(f.nbytes if isinstance(f, memoryview) else len(f) for f in frames)
