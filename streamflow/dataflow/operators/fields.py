"""Turning plan parameters (field names, expressions, import paths) into record functions."""
from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from streamflow.dataflow.operators.expr import compile_expr
from streamflow.errors import PlanError
from streamflow.imports import resolve

RecordFn = Callable[[Any], Any]


def as_function(spec: Any, what: str = "function") -> RecordFn:
    """A callable as is; `"pkg.mod:attr"` imported; `{"expr": "..."}` checked and compiled over
    record `r` (expr.py); a field name or index becomes an item getter."""
    if callable(spec):
        return spec
    if isinstance(spec, dict) and "expr" in spec:
        return compile_expr(spec["expr"], f"{what}.expr")
    if isinstance(spec, dict) and "import" in spec:
        return import_callable(spec["import"], f"{what}.import")
    if _is_field(spec):
        return operator.itemgetter(spec)
    if isinstance(spec, list) and spec and all(_is_field(s) for s in spec):
        return operator.itemgetter(*spec)
    raise PlanError(f"{what}: expected a field name, a non-empty list of fields, {{'expr': ...}} or "
                    f"{{'import': 'module:function'}}, got {spec!r}")


def _is_field(spec: Any) -> bool:
    """A field name or an index (a bool is neither, though Python counts it as an int)."""
    return isinstance(spec, str) or (isinstance(spec, int) and not isinstance(spec, bool))


def import_callable(path: Any, what: str = "function") -> RecordFn:
    """Import `"package.module:attr"` (only from allowed modules once the process is restricted;
    streamflow/imports.py)."""
    if not isinstance(path, str):
        raise PlanError(f"{what}: expected 'module:function', got {type(path).__name__}")
    obj = resolve(path, what)
    if not callable(obj):
        raise PlanError(f"{what}: {path!r} is not callable")
    return obj
