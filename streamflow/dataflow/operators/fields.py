"""Turning plan parameters (field names, expressions, import paths) into record functions."""
from __future__ import annotations

import importlib
import operator
from collections.abc import Callable
from typing import Any

from streamflow.errors import PlanError

RecordFn = Callable[[Any], Any]


def as_function(spec: Any, what: str = "function") -> RecordFn:
    """A callable as is; `"pkg.mod:attr"` imported; `{"expr": "..."}` compiled over record `r`;
    a field name or index becomes an item getter. Plans are trusted like code."""
    if callable(spec):
        return spec
    if isinstance(spec, dict) and "expr" in spec:
        return compile_expr(spec["expr"], what)
    if isinstance(spec, dict) and "import" in spec:
        return import_callable(spec["import"], what)
    if isinstance(spec, (str, int)):
        return operator.itemgetter(spec)
    if isinstance(spec, list) and all(isinstance(s, (str, int)) for s in spec):
        return operator.itemgetter(*spec)
    raise PlanError(f"{what}: expected a field name, a list of fields, {{'expr': ...}} or "
                    f"{{'import': 'module:function'}}, got {spec!r}")


def compile_expr(expr: str, what: str = "expression") -> RecordFn:
    """`"r['speed'] > 20"` -> lambda r: r['speed'] > 20 (compiled once)."""
    try:
        code = compile(f"lambda r: ({expr})", f"<{what}>", "eval")
    except SyntaxError as exc:
        raise PlanError(f"{what}: invalid expression {expr!r}: {exc.msg}") from None
    return eval(code, {"__builtins__": __builtins__, "abs": abs, "min": min, "max": max, "len": len})


def import_callable(path: str, what: str = "function") -> RecordFn:
    """Import `"package.module:attr"`."""
    module_name, _, attr = path.partition(":")
    if not attr:
        raise PlanError(f"{what}: {path!r} is not of the form 'module:function'")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise PlanError(f"{what}: cannot import {path!r}: {exc}") from None
    if not callable(obj):
        raise PlanError(f"{what}: {path!r} is not callable")
    return obj
