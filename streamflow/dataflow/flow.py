"""Building a dataflow in Python: a Dataflow holds the graph, a Stream is one operator output."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from streamflow.dataflow.graph import EdgeSpec, Graph, OperatorSpec


STREAM_METHODS: dict[str, Callable[..., Any]] = {}


def stream_method(fn: Callable[..., Any], alias: str | None = None) -> Callable[..., Any]:
    """Make the operator function `fn(name, stream, ...)` a method of Stream as well (also as `alias`).

    streamflow.operators registers its functions here, so this module never imports it (no cycle);
    the package's __init__ imports streamflow.operators, so the methods exist once streamflow does.
    """
    STREAM_METHODS[alias or fn.__name__] = fn
    return fn


@dataclass(frozen=True)
class Stream:
    """Output `port` of operator `op` in `flow`; operator methods return new streams."""

    flow: "Dataflow"
    op: str
    port: int = 0

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # stream.map(fn) == operators.map(flow.unique("map"), stream, fn), for every operator
        fn = STREAM_METHODS.get(name)
        if fn is None:
            raise AttributeError(name)

        def method(*args: Any, name: str | None = None, **kwargs: Any) -> Any:
            return fn(name or self.flow.unique(fn.__name__), self, *args, **kwargs)
        method.__doc__ = fn.__doc__
        return method


@dataclass(frozen=True)
class Input:
    """An operator input: the stream feeding it and how the edge partitions records."""

    stream: Stream
    partition: str = "forward"
    key: Callable[[Any], Any] | None = None
    routes: dict[str, dict[str, float]] | None = None


class Dataflow:
    """A named graph under construction; `run()` executes it in this process."""

    def __init__(self, name: str = "dataflow") -> None:
        self.name = name
        self.graph = Graph()
        self._counts: dict[str, int] = {}

    def unique(self, prefix: str) -> str:
        """A fresh operator name `prefix_N`."""
        n = self._counts.get(prefix, 0)
        while f"{prefix}_{n}" in self.graph:
            n += 1
        self._counts[prefix] = n + 1
        return f"{prefix}_{n}"

    def add(self, name: str, kind: str, factory: Callable[[], Any], inputs: Sequence[Input | Stream] = (),
            n_outputs: int = 1, params: dict[str, Any] | None = None) -> Stream | None:
        """Add an operator fed by `inputs` (in port order); returns its first output stream."""
        self.graph.add_operator(OperatorSpec(name, kind, len(inputs), n_outputs, factory, params or {}))
        for port, inp in enumerate(inputs):
            if isinstance(inp, Stream):
                inp = Input(inp)
            self.graph.add_edge(EdgeSpec(inp.stream.op, name, inp.stream.port, port,
                                         inp.partition, inp.key, inp.routes))
        return Stream(self, name, 0) if n_outputs else None

    def worker(self, **kwargs: Any) -> Any:
        """A single-process Worker for this graph (step it yourself, or call run())."""
        from streamflow.dataflow.worker import Worker
        return Worker(self.graph, **kwargs)

    def run(self, **kwargs: Any) -> Any:
        """Run to completion in this process on a fresh event loop; returns the worker."""
        worker = self.worker(**kwargs)
        worker.run()
        return worker

    async def run_async(self, **kwargs: Any) -> Any:
        """Run to completion on the running event loop; returns the worker."""
        worker = self.worker(**kwargs)
        try:
            await worker.run_async()
        finally:
            worker.close()
        return worker
