"""Helpers shared by the ML operator kinds: plan params, the device of the hosting worker."""
from __future__ import annotations

from typing import Any

from streamflow.errors import PlanError


def batch_params(params: dict[str, Any]) -> tuple[int, float]:
    """(max_size, max_wait_ms) from the plan operator's `batch` block."""
    batch = params.get("batch", {}) or {}
    return int(batch.get("max_size", 8)), float(batch.get("max_wait_ms", 20.0))


def worker_device(plan: Any, worker: str) -> str:
    """The device the plan gives the worker hosting an instance (cpu when unknown)."""
    if plan is None or worker not in plan.workers:
        return "cpu"
    return plan.workers[worker].device


def class_list(value: Any, where: str) -> list[int] | None:
    """COCO class ids from names or ids; None keeps every class."""
    if value is None:
        return None
    from streamflow_traces.classes import class_index
    if not isinstance(value, list):
        raise PlanError(f"{where}: expected a list of class names or COCO ids")
    out = []
    for item in value:
        if isinstance(item, int) and 0 <= item < 80:
            out.append(item)
        elif isinstance(item, str):
            try:
                out.append(class_index(item))
            except ValueError as exc:
                raise PlanError(f"{where}: {exc}") from None
        else:
            raise PlanError(f"{where}: {item!r} is not a class name or COCO id")
    return out


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
