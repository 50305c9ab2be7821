"""Measuring one operator variant: latency per request at batch sizes on a machine (device,
threads), the size of what it sends downstream, and what it outputs (for accuracy).

The operator is built by its plan kind and runs its own `process` on frame records as the
trace source emits them, so the profile measures the code path a run executes.
"""
from __future__ import annotations

import time
from typing import Any

from streamflow.communication.codec import encode, nbytes
from streamflow.dataflow.catalog import lookup


def build_operator(op: dict[str, Any], variant: str) -> Any:
    """An instance of the workflow operator with `variant`, built as a plan would build it."""
    kind = lookup(op["kind"], "operator", f"operators.{op['name']}.kind")
    params = {**op.get("params", {}), "variant": variant, "batch": op.get("batch", {})}
    return kind.build(params, f"operators.{op['name']}.params", None)()


def record_kb(records: list[Any]) -> float:
    """Mean size of one record on the wire (the transport's codec), in KB."""
    if not records:
        return 0.0
    return sum(nbytes(encode([r])[2]) for r in records) / len(records) / 1024


def set_threads(threads: int, runtime: str) -> None:
    """Bound the runtimes to `threads` cores, as a worker with that many threads is."""
    from streamflow_workers.runtimes import set_threads as runtime_threads
    runtime_threads(threads)
    if runtime == "torch":
        import torch
        torch.set_num_threads(threads)


def run_variant(op: dict[str, Any], variant: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What `variant` outputs for `records` (in order, on the CPU: outputs do not depend on the machine)."""
    instance = build_operator(op, variant)
    instance.load("cpu")
    return instance.process(records)


def time_variant(op: dict[str, Any], variant: str, device: str, threads: int, records: list[dict[str, Any]],
                 batch_sizes: list[int]) -> dict[int, float]:
    """Milliseconds per record at each batch size on (device, threads), after one warm-up batch."""
    from streamflow_workers.variants import parse_variant
    set_threads(threads, parse_variant(variant).runtime or op.get("params", {}).get("runtime", "opencv"))
    instance = build_operator(op, variant)
    instance.load(device)
    instance.process(records[:1])
    out = {}
    for b in batch_sizes:
        t = time.perf_counter()
        for i in range(0, len(records), b):
            instance.process(records[i:i + b])
        out[b] = (time.perf_counter() - t) * 1000 / max(1, len(records))
    return out


def release_models() -> None:
    """Drop the models loaded in this process (a worker keeps them for its next generation; the
    profiler, which loads every variant on every runtime, would otherwise hold them all)."""
    import gc
    from streamflow_workers.operators.detect import LOADED
    LOADED.clear()
    gc.collect()
