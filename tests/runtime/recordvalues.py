"""Hypothesis strategies for every value the record type system carries, a strict comparison
(same type and value, NaN equal to NaN), and classes records may carry by name."""
from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import uuid
from collections import namedtuple
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

Reading = namedtuple("Reading", "sensor value")


@dataclasses.dataclass
class Box:
    x1: float
    y1: float
    label: str = "car"


@dataclasses.dataclass(frozen=True)
class Plate:
    region: str
    number: int


ZONES = [None, dt.timezone.utc, dt.timezone(dt.timedelta(hours=-5, minutes=-30)),
         dt.timezone(dt.timedelta(hours=2), "CEST"), ZoneInfo("Europe/Madrid")]

text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-2**200, max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True), st.complex_numbers(allow_nan=True), text,
    st.binary(max_size=16), st.decimals(allow_nan=True),
    st.uuids(), st.dates(), st.timedeltas(),
    st.datetimes(timezones=st.sampled_from(ZONES), allow_imaginary=False),
    st.times(timezones=st.sampled_from([z for z in ZONES if not isinstance(z, ZoneInfo)])),
    hnp.from_dtype(np.dtype("int64")), hnp.from_dtype(np.dtype("float32")),
    hnp.from_dtype(np.dtype("uint8")), hnp.from_dtype(np.dtype("bool")),
    hnp.from_dtype(np.dtype("<U4")), hnp.from_dtype(np.dtype("complex64")),
    hnp.from_dtype(np.dtype("datetime64[ms]")),
)
hashables = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text, st.binary(max_size=8)),
    lambda inner: st.one_of(st.tuples(inner, inner), st.frozensets(inner, max_size=3)), max_leaves=6)
arrays = hnp.arrays(st.sampled_from([np.dtype(t) for t in ("uint8", "int32", "float64", "bool", "<U3", "complex128")]),
                    hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
records = st.recursive(
    st.one_of(scalars, arrays),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.tuples(inner, inner), st.dictionaries(hashables, inner, max_size=4),
        st.sets(hashables, max_size=4), st.frozensets(hashables, max_size=4),
        st.builds(Reading, text, inner), st.builds(Box, st.floats(), st.floats(), text),
        st.builds(Plate, text, st.integers())),
    max_leaves=12)


def strict(v: Any) -> Any:
    """A hashable form holding the type and the exact value of `v` (NaN equal to NaN)."""
    cls = type(v)
    if cls is float:
        return ("float", "nan" if v != v else repr(v))
    if cls is complex:
        return ("complex", strict(v.real), strict(v.imag))
    if cls is decimal.Decimal:
        return ("Decimal", str(v))
    if cls is dict:
        return ("dict", tuple((strict(k), strict(x)) for k, x in v.items()))
    if cls in (set, frozenset):
        return (cls.__name__, frozenset(strict(x) for x in v))
    if isinstance(v, tuple) or cls is list:
        return (cls.__name__, tuple(strict(x) for x in v))
    if dataclasses.is_dataclass(v):
        return (cls.__name__, tuple(strict(getattr(v, f.name)) for f in dataclasses.fields(v)))
    if cls is np.ndarray:
        return ("ndarray", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, np.generic):
        return (cls.__name__, v.dtype.str, v.tobytes())
    if cls in (dt.datetime, dt.time):
        return (cls.__name__, v.replace(tzinfo=None).isoformat(), v.fold, repr(v.tzinfo))
    if cls is bytearray:
        return ("bytearray", bytes(v))
    if cls is uuid.UUID:
        return ("UUID", v.int)
    return (cls.__name__, v)
