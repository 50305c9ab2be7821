"""Operator kinds by name, so plan.json can say `"kind": "aggregate"` or `"kind": "detect"`.

Relational kinds live here; packages add theirs (workers/ adds ML kinds and trace sources)
through the `streamflow.operators` entry-point group (or the STREAMFLOW_PLUGINS environment
variable, a comma-separated list of modules), so the runtime never imports them by name.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from streamflow.errors import PlanError


@dataclass(frozen=True)
class Kind:
    """How to build operators of one kind from plan params.

    `build(params, path, plan) -> factory` validates params (PlanError naming `path`) and
    returns a zero-argument factory; `inputs`/`outputs` are port counts (-1: as many inputs as
    the plan lists).
    """

    name: str
    build: Callable[[dict[str, Any], str, Any], Callable[[], Any]]
    inputs: int = 1
    outputs: int = 1
    role: str = "operator"  # "operator", "source" or "sink"
    doc: str = ""
    partition_key: Callable[[dict[str, Any], int], Any] | None = None
    """Keyed kinds: the hash key (a plan key spec) input `port` is partitioned by, by default."""
    groundtruth: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None
    """Sources with ground truth: (params, plan) -> {camera: GroundTruth}, for run reports."""


_KINDS: dict[tuple[str, str], Kind] = {}
_loaded = False


def register(kind: Kind) -> Kind:
    """Make `kind` available to plans (a later registration of the same name wins)."""
    _KINDS[(kind.role, kind.name)] = kind
    return kind


def _load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from streamflow.dataflow import kinds  # noqa: F401  (registers the relational kinds)
    import importlib
    import logging
    import os
    modules = [(ep.name, ep.load) for ep in entry_points(group="streamflow.operators")]
    extra = [m for m in os.environ.get("STREAMFLOW_PLUGINS", "").split(",") if m.strip()]
    modules += [(m, lambda m=m: importlib.import_module(m.strip())) for m in extra]
    for name, load in modules:
        try:
            load()
        except ImportError as exc:  # a broken plugin must not hide the built-in kinds
            logging.getLogger(__name__).warning("operator plugin %s failed to load: %s", name, exc)


def lookup(name: str, role: str, path: str) -> Kind:
    """The kind called `name` with `role`, or a PlanError listing the known ones."""
    _load_plugins()
    kind = _KINDS.get((role, name))
    if kind is None:
        known = sorted(k.name for k in _KINDS.values() if k.role == role)
        raise PlanError(f"{path}: unknown {role} kind {name!r} (known: {', '.join(known)})")
    return kind


def kinds(role: str | None = None) -> list[Kind]:
    """Every registered kind (of `role`)."""
    _load_plugins()
    return [k for k in _KINDS.values() if role is None or k.role == role]
