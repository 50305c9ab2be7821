"""The record type system: which Python values a record may hold, checked the same way in one
process and across processes (docs/records.md is the user-facing table).

A record crosses a process boundary through the codec (streamflow/communication/codec.py) and
arrives with the same type and value. Inside one process records are never serialised, so the
runtime checks every emitted batch against the same rules (`check_batch`): a program that runs
in one process runs on several, and what one refuses the other refuses with the same message.

Carried: None, bool, int (any size), float (NaN, inf, -0.0 kept), complex, str (any code point),
bytes, Decimal, UUID, datetime/date/time/timedelta (tz None, fixed-offset timezone or
ZoneInfo), numpy scalars and arrays (not object or structured dtypes), list, tuple, dict, set,
frozenset, and namedtuples and dataclasses whose class imports by module and qualified name.
Refused: everything else, including subclasses of the built-in types (OrderedDict, IntEnum...),
bytearray and memoryview (msgpack would deliver them as bytes). Every batch an operator emits is
checked unless the operator builds its records from carried values (`emits_carried`).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import importlib
import uuid
from operator import attrgetter, countOf
from collections.abc import Iterable
from itertools import chain
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from streamflow.errors import StreamflowError

MAX_DEPTH = 100

SCALARS: frozenset[type] = frozenset({
    type(None), bool, int, float, complex, str, bytes, decimal.Decimal, uuid.UUID,
    dt.date, dt.timedelta})
"""Carried as they are, whatever their value."""
ZONED: frozenset[type] = frozenset({dt.datetime, dt.time})
"""Carried when their tzinfo is None, a fixed-offset `datetime.timezone` or a `ZoneInfo`."""
TZINFOS: frozenset[type] = frozenset({type(None), dt.timezone, ZoneInfo})
CONTAINERS: frozenset[type] = frozenset({list, tuple, dict, set, frozenset})
CARRIED_TEXT = ("None, bool, int, float, complex, str, bytes, Decimal, UUID, datetime, "
                "date, time, timedelta, numpy scalars and arrays, list, tuple, dict, set, frozenset, "
                "importable namedtuples and dataclasses")


class RecordTypeError(StreamflowError, TypeError):
    """A value the record type system does not carry; the message names where it sits."""


def class_path(cls: type) -> str:
    """`module:Qualified.Name` of a class, the name other processes import it by."""
    return f"{cls.__module__}:{cls.__qualname__}"


def import_class(path: str) -> type:
    """The class `class_path` named (raises RecordTypeError when it does not import)."""
    module, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise RecordTypeError(f"class {path} does not import here: {exc}") from None
    if not isinstance(obj, type):
        raise RecordTypeError(f"{path} is not a class")
    return obj


def record_class(path: str) -> type:
    """The namedtuple or dataclass a peer's record names, imported only from a module this process
    has loaded or is allowed to import (streamflow/imports.py): a name on the wire is no reason to
    run a module's top level."""
    from streamflow.imports import importable_record_module, refusal
    module = path.partition(":")[0]
    if not importable_record_module(module):
        raise RecordTypeError(f"record class {path}: {refusal(module)}")
    cls = import_class(path)
    if kind_of(cls) not in ("namedtuple", "dataclass"):
        raise RecordTypeError(f"record class {path}: not a namedtuple or dataclass")
    return cls


_KIND: dict[type, str] = {}
"""Per type: 'scalar', 'container', 'ndarray', 'npscalar', 'namedtuple', 'dataclass', or the
reason it is refused (any other string)."""

for _t in SCALARS:
    _KIND[_t] = "scalar"
for _t in ZONED:
    _KIND[_t] = "zoned"
for _t in CONTAINERS:
    _KIND[_t] = "container"
_KIND[np.ndarray] = "ndarray"
_KIND[bytearray] = "bytearray is not carried (msgpack would deliver bytes); use bytes"
_KIND[memoryview] = "memoryview is not carried (msgpack would deliver bytes); use bytes"
OK_KINDS = frozenset({"scalar", "zoned", "container", "ndarray", "npscalar", "namedtuple", "dataclass"})
_tzinfo = attrgetter("tzinfo")


def zone_problem(value: Any) -> str | None:
    """Why a datetime or time's tzinfo cannot be carried, or None."""
    if type(value.tzinfo) in TZINFOS:
        return None
    return (f"{type(value).__name__} with tzinfo {type(value.tzinfo).__name__} is not carried "
            "(use datetime.timezone or zoneinfo.ZoneInfo)")


def _importable(cls: type) -> str | None:
    """None when `cls` imports by name, else why not."""
    if "<locals>" in cls.__qualname__:
        return f"{cls.__qualname__} is defined inside a function; define it at module level so every worker can import it"
    try:
        found = import_class(class_path(cls))
    except RecordTypeError as exc:
        return str(exc)
    if found is not cls:
        return f"{class_path(cls)} names a different class when imported"
    return None


def kind_of(cls: type) -> str:
    """How the type system treats values of type `cls` (cached per type)."""
    kind = _KIND.get(cls)
    if kind is not None:
        return kind
    if issubclass(cls, np.generic):
        kind = "npscalar" if cls not in (np.object_, np.void) else f"numpy {cls.__name__} scalars are not carried"
    elif issubclass(cls, tuple) and hasattr(cls, "_fields") and hasattr(cls, "_make"):
        why = _importable(cls)
        kind = "namedtuple" if why is None else why
    elif dataclasses.is_dataclass(cls):
        why = _importable(cls)
        kind = "dataclass" if why is None else why
    elif issubclass(cls, np.ndarray):
        kind = f"numpy array subclass {cls.__name__} is not carried; pass a plain ndarray"
    else:
        base = next((b for b in cls.__mro__[1:] if b in SCALARS or b in CONTAINERS), None)
        kind = (f"{cls.__name__} (a subclass of {base.__name__}) is not carried; convert it to {base.__name__}"
                if base is not None else f"{cls.__name__} is not a record type")
    _KIND[cls] = kind
    return kind


def array_problem(arr: np.ndarray) -> str | None:
    """Why an array cannot be carried (object or structured dtype), or None."""
    if arr.dtype.hasobject:
        return "numpy arrays of Python objects are not carried"
    if arr.dtype.fields is not None or arr.dtype.kind == "V":
        return "numpy arrays of structured or void dtype are not carried"
    return None


def _children(value: Any, kind: str) -> Iterable[tuple[str, Any]]:
    """(path step, child) pairs of a container-like value, for locating a bad field."""
    cls = type(value)
    if cls is dict:
        for k, v in value.items():
            yield f"[key {k!r}]", k
            yield (f".{k}" if isinstance(k, str) else f"[{k!r}]"), v
    elif cls in (list, tuple) or kind == "namedtuple":
        for i, v in enumerate(value):
            yield f"[{i}]", v
    elif cls in (set, frozenset):
        for v in value:
            yield "{}", v
    elif kind == "dataclass":
        for f in dataclasses.fields(value):
            yield f".{f.name}", getattr(value, f.name)


def locate(value: Any, path: str = "", depth: int = 0) -> tuple[str, str] | None:
    """(path, reason) of the first value the type system refuses inside `value`, or None."""
    if depth > MAX_DEPTH:
        return path, f"nested deeper than {MAX_DEPTH} levels"
    cls = type(value)
    kind = kind_of(cls)
    if kind not in OK_KINDS:
        return path, kind
    if kind == "ndarray":
        why = array_problem(value)
        return (path, why) if why else None
    if kind == "zoned":
        why = zone_problem(value)
        return (path, why) if why else None
    if kind in ("scalar", "npscalar"):
        return None
    for step, child in _children(value, kind):
        found = locate(child, path + step, depth + 1)
        if found is not None:
            return found
    return None


def _level_ok(values: Iterable[Any]) -> list[Any] | None:
    """Check one nesting level of many values at once; return the next level's containers'
    members, or None when something is refused (the caller then locates it precisely)."""
    values = values if type(values) is list else list(values)
    types = set(map(type, values))
    if types <= SCALARS:
        return []
    nxt: list[Any] = []
    for cls in types:
        kind = _KIND.get(cls) or kind_of(cls)
        if kind == "scalar" or kind == "npscalar":
            continue
        if kind not in OK_KINDS:
            return None
        members = [v for v in values if type(v) is cls] if len(types) > 1 else values
        if kind == "zoned":
            if not set(map(type, map(_tzinfo, members))) <= TZINFOS:
                return None
        elif cls is dict:
            if not set(map(type, chain.from_iterable(members))) <= SCALARS:
                nxt += chain.from_iterable(members)
            if not set(map(type, chain.from_iterable(map(dict.values, members)))) <= SCALARS:
                nxt += chain.from_iterable(map(dict.values, members))
        elif kind == "ndarray":
            if any(array_problem(a) for a in members):
                return None
        elif kind == "dataclass":
            names = [f.name for f in dataclasses.fields(cls)]
            nxt += [getattr(m, n) for m in members for n in names]
        elif cls is tuple and len(set(map(len, members))) == 1:
            # records of one shape: check column by column, each usually of one type
            for column in zip(*members):
                if not _level_ok_column(column, nxt):
                    return None
        else:  # list, tuple, set, frozenset, namedtuple
            nxt += chain.from_iterable(members)
    return nxt


def _level_ok_column(column: tuple[Any, ...], nxt: list[Any]) -> bool:
    """One column of same-shaped tuples: scalars pass at once; anything else joins `nxt`."""
    types = set(map(type, column))
    if types <= SCALARS:
        return True
    if len(types) == 1:
        (cls,) = types
        if _KIND.get(cls) == "zoned":
            return set(map(type, map(_tzinfo, column))) <= TZINFOS
    nxt += column
    return True


def check_values(values: list[Any]) -> tuple[str, str] | None:
    """None when every value (recursively) is carried; else (path, reason) of the first that is not."""
    level = values
    for _depth in range(MAX_DEPTH + 1):
        if not level:
            return None
        nxt = _level_ok(level)
        if nxt is None:
            break
        level = nxt
    for i, v in enumerate(values):
        found = locate(v, f"record {i}")
        if found is not None:
            return found
    return "record", f"nested deeper than {MAX_DEPTH} levels"


def check_batch(batch: Any) -> None:
    """Raise RecordTypeError naming the record, field and type when `batch` holds a value the
    type system does not carry. Lists of scalars cost one C-level pass; nested values one pass
    per nesting level."""
    cls = type(batch)
    if cls is list:
        if not batch:
            return
        first = type(batch[0])  # one scalar type throughout: counted by identity, no set built
        if first in SCALARS and countOf(map(type, batch), first) == len(batch):
            return
        if set(map(type, batch)) <= SCALARS:
            return
        found = check_values(batch)
    elif cls is np.ndarray:
        why = array_problem(batch)
        found = ("batch", why) if why else None
    else:
        found = locate(batch, "batch")
    if found is not None:
        path, why = found
        raise RecordTypeError(f"{path}: {why} (records carry {CARRIED_TEXT})")
