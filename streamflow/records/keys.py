"""Partition keys: one deterministic hash for every key type records can carry, and the
canonical form that groups keys the same way in every process.

Python's own `hash` is salted per process for str, bytes and datetimes and, on Python 3.11,
depends on object identity for None and NaN; a hash partition built on it sends equal keys to
different instances on different processes. `key_hash` is the same in every process and every
run and agrees with equality: equal keys (1, 1.0, True, numpy scalars of the same value; -0.0 and
0.0; every NaN, which keyed operators treat as one key) hash alike.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import uuid
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from streamflow.errors import StreamflowError
from streamflow.records.typesystem import class_path

MASK = (1 << 64) - 1
NAN = float("nan")
"""The canonical NaN: keyed operators replace every NaN in a key by this object, so all NaN keys
meet (Python compares a float by identity before value, and NaN != NaN)."""
_NONE_HASH = 0x9E3779B97F4A7C15
_NAN_HASH = 0x7FF8000000000001


class PartitionKeyError(StreamflowError, TypeError):
    """A key that cannot be partitioned (unhashable or outside the record type system)."""


def _mix(h: int) -> int:
    """splitmix64 finaliser: spreads nearby integers over all 64 bits."""
    h = (h + 0x9E3779B97F4A7C15) & MASK
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & MASK
    return h ^ (h >> 31)


def _text(data: bytes, tag: int) -> int:
    return _mix(zlib.crc32(data) ^ (tag << 32) ^ (len(data) << 40))


def _number(key: Any) -> int:
    """Numbers hash by value, so that equal numbers of different types meet. Python's numeric
    hash (value modulo 2**61 - 1) is deterministic; only NaN needs a fixed value."""
    if key != key:
        return _NAN_HASH
    return _mix(hash(key) & MASK)


def _sequence(items: Iterable[Any]) -> int:
    h = 0x345678
    for item in items:
        h = _mix(h ^ key_hash(item))
    return h


def _fixed(key: Any) -> int:
    """Dates and times: by value, aware datetimes and times by their UTC instant (as == does)."""
    cls = type(key)
    if cls is dt.datetime:
        offset = key.utcoffset()
        if offset is not None:
            return _mix(_micros(key.replace(tzinfo=None) - offset) ^ 0xA3)
        return _mix(_micros(key) ^ 0x5A)
    if cls is dt.date:
        return _mix(key.toordinal() ^ 0xDA7E)
    if cls is dt.time:
        offset = key.utcoffset()
        day = dt.datetime(2000, 1, 3, key.hour, key.minute, key.second, key.microsecond)
        return _mix(_micros(day - offset if offset is not None else day) ^ (0x71 if offset is None else 0x72))
    if cls is dt.timedelta:
        return _mix(((key.days * 86400 + key.seconds) * 1_000_000 + key.microseconds) & MASK)
    if cls is uuid.UUID:
        return _mix(key.int & MASK) ^ _mix(key.int >> 64)
    raise PartitionKeyError(f"{cls.__name__} is not a key type")


def _micros(value: dt.datetime) -> int:
    epoch = dt.datetime(1970, 1, 1)
    delta = value - epoch
    return ((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds) & MASK


def key_hash(key: Any) -> int:
    """A 64-bit hash of `key`, the same in every process and every Python run."""
    cls = type(key)
    if cls is str:
        return _text(key.encode("utf-8", "surrogatepass"), 1)
    if cls is int or cls is bool or cls is float:
        return _number(key)
    if key is None:
        return _NONE_HASH
    if cls is tuple or cls is list:
        return _sequence(key)
    if cls is bytes or cls is bytearray:
        return _text(bytes(key), 2)
    if cls is frozenset or cls is set:
        return _mix(sum(key_hash(item) for item in key) & MASK) ^ 0xF5
    if cls is complex or cls is decimal.Decimal:
        if cls is decimal.Decimal and key.is_nan():
            return _NAN_HASH
        return _number(key)
    if isinstance(key, np.generic):
        if isinstance(key, np.number) or cls is np.bool_:
            return _number(key.item())
        if isinstance(key, np.str_):
            return key_hash(str(key))
        if isinstance(key, np.bytes_):
            return key_hash(bytes(key))
        return key_hash(key.item())
    if cls in (dt.datetime, dt.date, dt.time, dt.timedelta, uuid.UUID):
        return _fixed(key)
    if isinstance(key, tuple):  # namedtuple: equal to the plain tuple of its fields
        return _sequence(key)
    if dataclasses.is_dataclass(key) and not isinstance(key, type):
        return _mix(_text(class_path(cls).encode(), 3) ^
                    _sequence(getattr(key, f.name) for f in dataclasses.fields(key)))
    raise PartitionKeyError(f"{cls.__name__} cannot be a partition key (keys may be None, bool, int, float, "
                    "complex, str, bytes, Decimal, UUID, dates and times, numpy scalars, or tuples, "
                    "lists, frozensets and frozen dataclasses of those)")


def canonical(key: Any) -> Any:
    """`key` with every NaN replaced by the one canonical NaN and -0.0 by 0.0, so keyed
    operators group and match NaN keys together and name zero keys alike in every process."""
    cls = type(key)
    if cls is float:
        if key != key:
            return NAN
        return 0.0 if key == 0.0 else key
    if cls is tuple:
        if any(type(k) in (float, tuple, frozenset) for k in key):
            return tuple(canonical(k) for k in key)
        return key
    if cls is frozenset:
        if any(type(k) in (float, tuple, frozenset) for k in key):
            return frozenset(canonical(k) for k in key)
        return key
    return key


def needs_canonical(key: Any) -> bool:
    """Whether `canonical(key)` may differ from `key` (floats, or containers that may hold one)."""
    cls = type(key)
    if cls is float:
        return key != key or key == 0.0
    return cls is tuple or cls is frozenset


KEY_SCALARS: frozenset[type] = frozenset({str, int, bool, float, bytes, type(None)})


def check_keys(keys: list[Any], where: str) -> None:
    """Raise PartitionKeyError naming `where` when a key cannot be partitioned (one pass over types)."""
    if set(map(type, keys)) <= KEY_SCALARS:
        return
    for key in keys:
        try:
            key_hash(key)
        except PartitionKeyError as exc:
            raise PartitionKeyError(f"{where}: key {_short(key)}: {exc}") from None
        try:
            hash(key)
        except TypeError:
            raise PartitionKeyError(f"{where}: key {_short(key)} is a {type(key).__name__}, which is "
                                    "unhashable (use a tuple or frozenset)") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def hash_fn(key: Callable[[Any], Any]) -> Callable[[Any], int]:
    """record -> key_hash(key(record))."""
    return lambda record: key_hash(key(record))


