"""Stateless per-record transforms: map, flat_map, filter, map_batch, project, inspect.

Each handles a whole batch with one C-level loop (`map`, `filter`, comprehensions) so a user's
per-record function is the only Python call per record.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from typing import Any

from streamflow.dataflow.operator import Batch, Operator, Output


class Map(Operator):
    """Each record x becomes fn(x)."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def on_batch(self, epoch: int, batch: Batch, output: Output) -> None:
        output.give(list(map(self.fn, batch)))

    keeps_count = True  # one record out per record in

    def transform(self, records: Iterable[Any]) -> Iterator[Any]:
        """The lazy form a chain composes (streamflow.dataflow.chain)."""
        return map(self.fn, records)


class FlatMap(Operator):
    """Each record x becomes the records of the iterable fn(x)."""

    def __init__(self, fn: Callable[[Any], Iterable[Any]]) -> None:
        self.fn = fn

    def on_batch(self, epoch: int, batch: Batch, output: Output) -> None:
        fn = self.fn
        output.give([y for x in batch for y in fn(x)])

    keeps_count = False

    def transform(self, records: Iterable[Any]) -> Iterator[Any]:
        return chain.from_iterable(map(self.fn, records))


class Filter(Operator):
    """Keeps the records for which predicate(x) is true."""

    emits_carried = True

    def __init__(self, predicate: Callable[[Any], bool]) -> None:
        self.predicate = predicate

    def on_batch(self, epoch: int, batch: Batch, output: Output) -> None:
        output.give(list(filter(self.predicate, batch)))

    keeps_count = False

    def transform(self, records: Iterable[Any]) -> Iterator[Any]:
        return filter(self.predicate, records)


class MapBatch(Operator):
    """The whole batch becomes fn(batch): vectorised code over numpy or columnar blocks."""

    def __init__(self, fn: Callable[[Batch], Batch]) -> None:
        self.fn = fn

    def on_batch(self, epoch: int, batch: Batch, output: Output) -> None:
        output.give(self.fn(batch))


class Project(Operator):
    """Keeps the named fields of dict records (or the given indices of tuple records)."""

    emits_carried = True

    def __init__(self, fields: Sequence[str | int]) -> None:
        self.fields = tuple(fields)

    def on_batch(self, epoch: int, batch: Batch, output: Output) -> None:
        fields = self.fields
        if batch and isinstance(batch[0], dict):
            output.give([{f: r[f] for f in fields} for r in batch])
        else:
            output.give([tuple(r[f] for f in fields) for r in batch])


class Inspect(Operator):
    """Calls fn(epoch, record) for every record and passes the batch on unchanged."""

    emits_carried = True

    def __init__(self, fn: Callable[[int, Any], None]) -> None:
        self.fn = fn

    def on_batch(self, epoch: int, batch: Batch, output: Output) -> None:
        fn = self.fn
        for record in batch:
            fn(epoch, record)
        output.give(batch)


class Union(Operator):
    """Merges several inputs of the same epoch domain into one stream."""

    emits_carried = True

    def __init__(self, n_inputs: int = 2) -> None:
        self.n_inputs = n_inputs

    def on_input(self, port: int, epoch: int, batch: Batch, output: Output) -> None:
        output.give(batch)



class Exchange(Operator):
    """Passes records on; placed after a hash-partitioned edge it groups equal keys per instance."""

    emits_carried = True

    def on_batch(self, epoch: int, batch: Batch, output: Output) -> None:
        output.give(batch)
