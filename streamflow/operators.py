"""One function per operator, each adding it to a dataflow and returning its output stream.

    import streamflow.operators as op
    flow = Dataflow("counts")
    nums = op.source("nums", flow, range(10), batch_size=4)
    op.sink("out", op.map("double", nums, lambda x: x * 2), print_batch)

The same functions are methods of Stream with generated names: `nums.map(fn).filter(pred)`.
"""
from __future__ import annotations

import builtins

from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from streamflow.dataflow.flow import Dataflow, Input, Stream, stream_method
from streamflow.dataflow.operators.aggregate import Aggregate, key_value
from streamflow.dataflow.operators.fields import as_function
from streamflow.dataflow.operators.join import EpochJoin, pair
from streamflow.dataflow.operators.sink import CallbackSink, JsonLinesSink, Probe, ProbeOperator
from streamflow.dataflow.operators.transform import (Exchange, Filter, FlatMap, Inspect, Map,
                                                     MapBatch, Project, Union)
from streamflow.dataflow.source import AsyncIterableSource, IterableSource

def batched(records: Iterable[Any], batch_size: int,
            epoch_of: Callable[[Any], int] | None = None) -> Iterable[tuple[int, list[Any]]]:
    """(epoch, batch) pairs from records: one epoch per batch, or split where epoch_of changes."""
    if epoch_of is None and batch_size > 1 and type(records) in (list, range, tuple):
        # a sequence at rest: slices are cut in C, without a Python-level iterator per record
        for epoch, start in enumerate(range(0, len(records), batch_size)):
            chunk = records[start:start + batch_size]
            yield epoch, chunk if type(chunk) is list else list(chunk)
        return
    it = iter(records)
    if batch_size == 1:  # one record per batch: no chunking to pay for
        yield from _singles(it, epoch_of)
        return
    if epoch_of is None:
        epoch = 0
        while chunk := list(islice(it, batch_size)):
            yield epoch, chunk
            epoch += 1
        return
    while chunk := list(islice(it, batch_size)):
        epochs = list(builtins.map(epoch_of, chunk))
        first = epochs[0]
        if epochs.count(first) == len(epochs):
            yield first, chunk
            continue
        start, previous = 0, first
        for i, e in enumerate(epochs):
            if e != previous:
                if e < previous:
                    raise _went_back(previous, e)
                yield previous, chunk[start:i]
                start, previous = i, e
        yield previous, chunk[start:]


def _went_back(previous: int, epoch: int) -> ValueError:
    return ValueError(f"epoch_of went back from {previous} to {epoch}: a source's records must "
                      "come in non-decreasing epoch order")


def _singles(it: Iterable[Any], epoch_of: Callable[[Any], int] | None) -> Iterable[tuple[int, list[Any]]]:
    if epoch_of is None:
        for epoch, record in enumerate(it):
            yield epoch, [record]
        return
    previous = None
    for record in it:
        epoch = epoch_of(record)
        if previous is not None and epoch < previous:
            raise _went_back(previous, epoch)
        previous = epoch
        yield epoch, [record]


def source(name: str, flow: Dataflow, records: Iterable[Any] | Callable[[Any], Iterable[Any]],
           batch_size: int = 1000, epoch_of: Callable[[Any], int] | None = None) -> Stream:
    """Records from an iterable, in batches of `batch_size`.

    Epochs: one per batch (0, 1, ...) or `epoch_of(record)`, which must not decrease. A callable
    `records(ctx)` gives each instance its own partition when the source runs on several workers.
    """
    def items(ctx: Any) -> Iterable[tuple[int, list[Any]]]:
        return batched(records(ctx) if callable(records) else records, batch_size, epoch_of)
    return flow.add(name, "source", lambda: IterableSource(items), (), 1, {"batch_size": batch_size})


def source_batches(name: str, flow: Dataflow,
                   items: Iterable[tuple[int, Any]] | Callable[[Any], Iterable[tuple[int, Any]]]) -> Stream:
    """(epoch, batch) pairs as given: lists, numpy arrays or columnar blocks."""
    return flow.add(name, "source", lambda: IterableSource(items))


def source_async(name: str, flow: Dataflow,
                 items: AsyncIterable[tuple[int, Any]] | Callable[[Any], AsyncIterable[tuple[int, Any]]],
                 prefetch: int = 4) -> Stream:
    """(epoch, batch) pairs from an async iterable: paced replays, sockets, cameras."""
    return flow.add(name, "source", lambda: AsyncIterableSource(items, prefetch))


@stream_method
def map(name: str, up: Stream, fn: Callable[[Any], Any]) -> Stream:  # noqa: A001
    """Each record x becomes fn(x)."""
    return up.flow.add(name, "map", lambda: Map(fn), [up])


@stream_method
def flat_map(name: str, up: Stream, fn: Callable[[Any], Iterable[Any]]) -> Stream:
    """Each record x becomes the records of fn(x)."""
    return up.flow.add(name, "flat_map", lambda: FlatMap(fn), [up])


@stream_method
def filter(name: str, up: Stream, predicate: Callable[[Any], bool]) -> Stream:  # noqa: A001
    """Keeps records where predicate(x) is true."""
    return up.flow.add(name, "filter", lambda: Filter(predicate), [up])


@stream_method
def map_batch(name: str, up: Stream, fn: Callable[[Any], Any]) -> Stream:
    """Each batch b becomes fn(b): vectorised numpy or columnar code."""
    return up.flow.add(name, "map_batch", lambda: MapBatch(fn), [up])


@stream_method
def project(name: str, up: Stream, fields: Sequence[str | int]) -> Stream:
    """Keeps the named fields of dict records (indices of tuple records)."""
    return up.flow.add(name, "project", lambda: Project(fields), [up], params={"fields": list(fields)})


@stream_method
def inspect(name: str, up: Stream, fn: Callable[[int, Any], None]) -> Stream:
    """Calls fn(epoch, record) per record; the stream passes through unchanged."""
    return up.flow.add(name, "inspect", lambda: Inspect(fn), [up])


@stream_method
def union(name: str, up: Stream, *others: Stream) -> Stream:
    """Merges streams into one."""
    n = 1 + len(others)
    return up.flow.add(name, "union", lambda: Union(n), [up, *others])


@stream_method
def exchange(name: str, up: Stream, key: Callable[[Any], Any] | str | int) -> Stream:
    """Repartitions by key: records with equal keys meet on the same instance downstream."""
    key_fn = as_function(key, f"{name}.key")
    return up.flow.add(name, "exchange", Exchange, [Input(up, "hash", key_fn)])


key_by = stream_method(exchange, alias="key_by")


@stream_method
def join(name: str, left: Stream, right: Stream, left_key: Callable[[Any], Any] | str | int,
         right_key: Callable[[Any], Any] | str | int | None = None, window: int = 1,
         how: str = "inner", emit: Callable[[Any, Any], Any] = pair) -> Stream:
    """Equi-join within an epoch (or tumbling window of epochs); emits emit(l, r) at max epoch."""
    lk = as_function(left_key, f"{name}.left_key")
    rk = as_function(right_key if right_key is not None else left_key, f"{name}.right_key")
    return left.flow.add(name, "join", lambda: EpochJoin(lk, rk, window, how, emit),
                         [Input(left, "hash", lk), Input(right, "hash", rk)],
                         params={"window": window, "how": how})


@stream_method
def aggregate(name: str, up: Stream, key: Callable[[Any], Any] | str | int, agg: str = "count",
              value: Callable[[Any], Any] | str | int | None = None, window: int = 1, k: int = 3,
              emit: Callable[[Any, Any], Any] = key_value) -> Stream:
    """Group by key per epoch (or tumbling window of epochs): count, sum, mean, min, max, topk."""
    key_fn = as_function(key, f"{name}.key")
    value_fn = as_function(value, f"{name}.value") if value is not None else None
    return up.flow.add(name, "aggregate", lambda: Aggregate(key_fn, agg, value_fn, window, k, emit),
                       [Input(up, "hash", key_fn)], params={"agg": agg, "window": window})


@stream_method
def count(name: str, up: Stream, key: Callable[[Any], Any] | str | int, window: int = 1) -> Stream:
    """(key, number of records) per key per window."""
    return aggregate(name, up, key, "count", window=window)


@stream_method
def sink_jsonl(name: str, up: Stream, path: str | Path) -> None:
    """Writes records to a JSON Lines file, flushed as each epoch completes."""
    up.flow.add(name, "sink", lambda: JsonLinesSink(path), [up], 0, {"path": str(path)})


@stream_method
def sink(name: str, up: Stream, fn: Callable[[int, Any], None],
         on_epoch: Callable[[int], None] | None = None) -> None:
    """Calls fn(epoch, batch) per batch, and on_epoch(epoch) once each epoch is complete."""
    up.flow.add(name, "callback", lambda: CallbackSink(fn, on_epoch), [up], 0)


@stream_method
def collect(name: str, up: Stream) -> list[tuple[int, Any]]:
    """(epoch, record) pairs gathered into the returned list (tests, notebooks)."""
    out: list[tuple[int, Any]] = []
    sink(name, up, lambda e, batch: out.extend((e, r) for r in batch))
    return out


@stream_method
def probe(name: str, up: Stream) -> Probe:
    """A Probe on the stream: probe.passed(e) once no record at or before e can appear."""
    handle = Probe()

    def make() -> ProbeOperator:
        op = ProbeOperator()
        op.handle = handle
        return op
    up.flow.add(name, "probe", make, [up], 0)
    return handle


# `map` and `filter` shadow the builtins in this module on purpose, as in bytewax.operators.
