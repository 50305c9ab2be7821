"""Differential checks: random relational pipelines over records whose keys are of every type
the record type system carries, run in one process and over worker processes, against a
plain-Python reference of the documented semantics (docs/records.md).

Sources build their records from a seed inside whichever process runs them; sinks write what
they receive with the record codec, so the comparison sees exact types and values.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import math
import random
import uuid
from collections import Counter, namedtuple
from pathlib import Path
from typing import Any

import numpy as np

from streamflow import Operator
from streamflow.communication.codec import pack_value, unpack_value
from streamflow.dataflow.operators.aggregate import exact_sum
from streamflow.dataflow.source import IterableSource
from streamflow.records.keys import canonical

Point = namedtuple("Point", "x y")


@dataclasses.dataclass(frozen=True)
class Plate:
    region: str
    number: int


AGGS = ("count", "sum", "mean", "min", "max", "topk", "distinct")
HOWS = ("inner", "left", "right", "outer")
UTC2 = dt.timezone(dt.timedelta(hours=2))


def key_pool() -> list[Any]:
    """Keys of every hashable carried type; no two of different types compare equal (False would
    equal 0.0), except the ones the semantics canonicalise (every NaN is one key, -0.0 is 0.0)."""
    return [
        None, True, 7, 11, 2**70 + 3, -(2**65), 0.25, -3.75, float("nan"), float("nan"), -0.0, 0.0,
        float("inf"), "lane", "", "ünïcode", "\ud800x", b"\x00raw", (None, 2.5), ("a", (b"b", None)),
        frozenset({"x", "y"}), frozenset({(1.5, None)}), np.int64(1001), np.float32(2000.25), np.str_("np"),
        complex(1, 2), decimal.Decimal("7777.1"), uuid.UUID(int=12345), dt.date(2026, 12, 2),
        dt.datetime(2026, 12, 2, 8, 30, tzinfo=UTC2), dt.timedelta(seconds=90), Point(3, 4), Plate("CA", 42),
    ]


def value_pool() -> list[Any]:
    """Numbers with NaN; ints and floats never equal across types (min/max/top-k ties are then
    between equal values of one type)."""
    return [0, 1, 2, 5, -4, 40, 2**64 + 1, 0.5, 2.25, -7.125, 1e300, float("nan"), float("nan"), 3.75]


def make_items(seed: int, stream: int, epochs: int, per_epoch: int) -> list[tuple[int, list[dict]]]:
    """(epoch, records) of one stream, the same in every process."""
    rng = random.Random(seed * 1000 + stream)
    keys, values = key_pool(), value_pool()
    out, seq, epoch = [], 0, 0
    for _ in range(epochs):
        epoch += rng.choice((0, 1, 1, 2))
        batch = []
        for _ in range(rng.randint(0, per_epoch)):
            batch.append({"k": rng.choice(keys), "v": rng.choice(values), "id": (stream, seq)})
            seq += 1
        out.append((epoch, batch))
    return out


class SeededSource(IterableSource):
    """Replays `make_items(seed, stream, ...)`."""

    def __init__(self, seed: int, stream: int, epochs: int, per_epoch: int) -> None:
        super().__init__(make_items(seed, stream, epochs, per_epoch))


def tweak(record: dict) -> dict:
    """The pipelines' map: a new record with a derived field (keeps the key as is)."""
    return {**record, "odd": record["id"][1] % 2 == 1}


def keep(record: dict) -> bool:
    """The pipelines' filter."""
    return record["id"][1] % 3 != 0


def key_of(record: dict) -> Any:
    return record["k"]


def value_of(record: dict) -> Any:
    return record["v"]


class RecordingSink(Operator):
    """Appends (epoch, records) with the record codec once each epoch is complete; commits
    like the JSON Lines sink (its snapshot is the file length, a restore truncates to it)."""

    n_outputs = 0
    aligned = False

    def __init__(self, folder: str, name: str) -> None:
        self.folder, self.name = folder, name
        self.pending: dict[int, list[Any]] = {}
        self.file: Any = None
        self.resume_at: int | None = None

    def snapshot(self, epoch: int) -> Any:
        return self.file.tell()

    def restore(self, state: Any) -> None:
        self.resume_at = state

    def on_start(self) -> None:
        path = Path(self.folder, f"{self.name}.{self.ctx.worker_name}.{self.ctx.instance}.bin")
        if self.resume_at is None:
            self.file = path.open("wb")
        else:
            self.file = path.open("ab")
            self.file.truncate(self.resume_at)

    def on_batch(self, epoch: int, batch: Any, output: Any) -> None:
        if epoch not in self.pending:
            self.pending[epoch] = []
            self.ctx.notify_at(epoch)
        self.pending[epoch] += list(batch)

    def on_notify(self, epoch: int, output: Any) -> None:
        blob = pack_value([epoch, self.pending.pop(epoch, [])])
        self.file.write(len(blob).to_bytes(4, "little") + blob)
        self.file.flush()

    def on_close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def read_sink(folder: Path, name: str) -> list[tuple[int, Any]]:
    """Every (epoch, record) the instances of sink `name` wrote."""
    out = []
    for path in sorted(folder.glob(f"{name}.*.bin")):
        data = path.read_bytes()
        at = 0
        while at < len(data):
            n = int.from_bytes(data[at:at + 4], "little")
            epoch, records = unpack_value(data[at + 4:at + 4 + n])
            out += [(epoch, r) for r in records]
            at += 4 + n
    return out


# comparison: exact types and values; NaN equal to NaN ------------------------------------------
def normal(v: Any) -> Any:
    """A hashable form that keeps the type and the value (NaN compares equal to NaN)."""
    cls = type(v)
    if cls is float:
        return ("float", "nan" if v != v else repr(v))
    if cls is dict:
        return ("dict", frozenset((normal(k), normal(x)) for k, x in v.items()))
    if cls in (list, tuple) or isinstance(v, tuple):
        return (cls.__name__, tuple(normal(x) for x in v))
    if cls in (set, frozenset):
        return (cls.__name__, frozenset(normal(x) for x in v))
    if cls is np.ndarray:
        return ("ndarray", v.dtype.str, v.tobytes())
    if cls is complex:
        return ("complex", normal(v.real), normal(v.imag))
    if isinstance(v, np.generic):
        return (cls.__name__, v.tobytes())
    if cls is bytearray:
        return ("bytearray", bytes(v))
    return (cls.__name__, v)


def as_counter(rows: list[tuple[int, Any]]) -> Counter:
    return Counter((e, normal(r)) for e, r in rows)


# the reference ----------------------------------------------------------------------------------
def reference_aggregate(rows: list[tuple[int, dict]], agg: str, window: int, k: int = 3) -> list[tuple[int, dict]]:
    """What the aggregate must emit: per window and canonical key, at the window's last epoch."""
    groups: dict[tuple[int, Any], list[Any]] = {}
    first: dict[tuple[int, Any], Any] = {}
    for epoch, r in rows:
        w = epoch // window
        c = canonical(r["k"])
        groups.setdefault((w, c), []).append(r["v"])
        first.setdefault((w, c), c)
    out = []
    for (w, c), vals in groups.items():
        real = [v for v in vals if v == v]
        if agg == "count":
            res: Any = len(vals)
        elif agg == "sum":
            res = exact_sum(real) if real else math.nan
        elif agg == "mean":
            res = exact_sum(real) / len(real) if real else math.nan
        elif agg == "min":
            res = min(real) if real else math.nan
        elif agg == "max":
            res = max(real) if real else math.nan
        elif agg == "topk":
            res = sorted(real, reverse=True)[:k]
        else:
            res = len({canonical(v) for v in vals})
        out.append(((w + 1) * window - 1, {"key": first[(w, c)], agg: res}))
    return out


def merge(left: Any, right: Any) -> dict:
    """The plan join's output record (streamflow/dataflow/kinds.py)."""
    out = dict(left) if left else {}
    for key, v in (right or {}).items():
        if key not in out:
            out[key] = v
        elif out[key] != v:
            out[f"right_{key}"] = v
    return out


def key_equal(a: Any, b: Any) -> bool:
    """Python equality of canonical keys (numpy scalars as Python values: `np.int64(1) == (1,)`
    would broadcast)."""
    a, b = canonical(a), canonical(b)
    a = a.item() if isinstance(a, np.generic) else a
    b = b.item() if isinstance(b, np.generic) else b
    return a is b or bool(a == b)


def reference_join(left: list[tuple[int, dict]], right: list[tuple[int, dict]], how: str,
                   window: int) -> list[tuple[int, dict]]:
    """Equi-join on canonical keys per window; matches at max(epochs); outer rows at the window end."""
    out = []
    matched_l, matched_r = set(), set()
    for i, (el, l) in enumerate(left):
        for j, (er, r) in enumerate(right):
            if el // window == er // window and key_equal(l["k"], r["k"]):
                out.append((max(el, er), merge(l, r)))
                matched_l.add(i)
                matched_r.add(j)
    if how in ("left", "outer"):
        out += [((e // window + 1) * window - 1, merge(l, None)) for i, (e, l) in enumerate(left) if i not in matched_l]
    if how in ("right", "outer"):
        out += [((e // window + 1) * window - 1, merge(None, r)) for j, (e, r) in enumerate(right) if j not in matched_r]
    return out


@dataclasses.dataclass
class Pipeline:
    """One random pipeline: two streams, an optional map and filter, an aggregate over their
    union and a join of the two."""

    seed: int
    epochs: int
    per_epoch: int
    mapped: bool
    filtered: bool
    agg: str
    agg_window: int
    how: str
    join_window: int
    placements: dict[str, list[str]]

    def streams(self) -> tuple[list[tuple[int, dict]], list[tuple[int, dict]]]:
        s0 = [(e, r) for e, batch in make_items(self.seed, 0, self.epochs, self.per_epoch) for r in batch]
        s1 = [(e, r) for e, batch in make_items(self.seed, 1, self.epochs, self.per_epoch) for r in batch]
        if self.mapped:
            s0 = [(e, tweak(r)) for e, r in s0]
        if self.filtered:
            s1 = [(e, r) for e, r in s1 if keep(r)]
        return s0, s1

    def reference(self) -> dict[str, Counter]:
        s0, s1 = self.streams()
        return {"agg_out": as_counter(reference_aggregate(s0 + s1, self.agg, self.agg_window)),
                "join_out": as_counter(reference_join(s0, s1, self.how, self.join_window))}

    def plan(self, folder: str) -> dict:
        fn = "tests.runtime.diffcheck:"

        def place(name: str) -> list[dict]:
            return [{"worker": w, "share": 1} for w in self.placements[name]]
        src = {"epochs": self.epochs, "per_epoch": self.per_epoch, "seed": self.seed}
        ops = []
        left, right = "s0", "s1"
        if self.mapped:
            ops.append({"name": "tweak", "kind": "map", "params": {"fn": {"import": fn + "tweak"}},
                        "inputs": [{"from": "s0", "partition": "weighted"}], "placement": place("tweak")})
            left = "tweak"
        if self.filtered:
            ops.append({"name": "keep", "kind": "filter", "params": {"where": {"import": fn + "keep"}},
                        "inputs": [{"from": "s1", "partition": "weighted"}], "placement": place("keep")})
            right = "keep"
        ops += [
            {"name": "both", "kind": "union", "inputs": [{"from": left}, {"from": right}], "placement": place("both")},
            {"name": "agg", "kind": "aggregate", "inputs": [{"from": "both"}], "placement": place("agg"),
             "params": {"key": {"import": fn + "key_of"}, "agg": self.agg, "value": {"import": fn + "value_of"},
                        "window": self.agg_window}},
            {"name": "join", "kind": "join", "inputs": [{"from": left}, {"from": right}], "placement": place("join"),
             "params": {"left_key": {"import": fn + "key_of"}, "how": self.how, "window": self.join_window}},
        ]
        sinks = [{"name": f"{name}_out", "kind": "python", "from": name, "placement": place(f"{name}_out"),
                  "params": {"class": fn + "RecordingSink", "args": {"folder": folder, "name": f"{name}_out"}}}
                 for name in ("agg", "join")]
        workers = sorted({w for ws in self.placements.values() for w in ws})
        return {"version": 1, "name": "diff", "epoch": {"unit": "frame", "size": 1},
                "workers": [{"name": w, "tier": "edge"} for w in workers],
                "sources": [{"name": f"s{i}", "kind": "python", "placement": place(f"s{i}"),
                             "params": {"class": fn + "SeededSource", "args": {**src, "stream": i}}} for i in (0, 1)],
                "operators": ops, "sinks": sinks}


def random_pipeline(rng: random.Random, workers: list[str]) -> Pipeline:
    def some() -> list[str]:
        return rng.sample(workers, rng.choice((1, 2, 3)))
    names = ("tweak", "keep", "both", "agg", "join", "agg_out", "join_out")
    placements = {n: some() for n in names}
    placements["s0"], placements["s1"] = [rng.choice(workers)], [rng.choice(workers)]
    return Pipeline(seed=rng.randrange(1 << 30), epochs=rng.randint(1, 8), per_epoch=rng.randint(0, 30),
                    mapped=rng.random() < 0.5, filtered=rng.random() < 0.5, agg=rng.choice(AGGS),
                    agg_window=rng.randint(1, 3), how=rng.choice(HOWS), join_window=rng.randint(1, 3),
                    placements=placements)
