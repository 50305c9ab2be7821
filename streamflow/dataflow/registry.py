"""Operator kinds by name, so plan.json can say `"kind": "aggregate"` or `"kind": "detect"`.

Kinds register here (the relational ones in kinds.py; packages add theirs, streamflow_workers/ its ML
kinds and trace sources); catalog.py loads them all before a lookup.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


def register(kind: Kind) -> Kind:
    """Make `kind` available to plans (a later registration of the same name wins)."""
    _KINDS[(kind.role, kind.name)] = kind
    return kind


def registered_kinds(role: str | None = None) -> list[Kind]:
    """Every kind registered so far (of `role`)."""
    return [k for k in _KINDS.values() if role is None or k.role == role]


def registered(name: str, role: str, path: str) -> Kind:
    """The kind called `name` with `role` among those registered so far, or a PlanError listing
    them (catalog.lookup loads the built-in and plugin kinds first)."""
    kind = _KINDS.get((role, name))
    if kind is None:
        known = sorted(k.name for k in _KINDS.values() if k.role == role)
        raise PlanError(f"{path}: unknown {role} kind {name!r} (known: {', '.join(known)})")
    return kind
