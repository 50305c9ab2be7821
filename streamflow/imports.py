"""Which modules a plan (or a record arriving from a peer) may make this process import.

A plan names code as `{"import": "module:function"}` or `{"class": "module:Class"}`, and records
name their namedtuple and dataclass types by import path. Importing runs a module's top level and
hands out whatever it holds, so a worker serving plans that arrive over the network imports only
modules under the prefixes it allows (`streamflow-worker --allow-import PREFIX`): by default the
project's own operators. Library use in one process (the Python API, tests) is unrestricted until
an entry point calls `restrict`.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from typing import Any

from streamflow.errors import PlanError

DEFAULT_ALLOWED = ("streamflow.dataflow.operators", "streamflow_workers.operators")
_allowed: tuple[str, ...] | None = None  # None: unrestricted


def restrict(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """From now on import only under DEFAULT_ALLOWED and `extra` prefixes; returns them all."""
    global _allowed
    _allowed = tuple(dict.fromkeys([*DEFAULT_ALLOWED, *(p.strip().rstrip(".") for p in extra if p.strip())]))
    return _allowed


def unrestrict() -> None:
    """Back to library use (tests that restricted this process undo it)."""
    global _allowed
    _allowed = None


def allowed_prefixes() -> tuple[str, ...] | None:
    return _allowed


def is_allowed(module: str) -> bool:
    """Whether `module` is one of the allowed prefixes or inside one (on a dot boundary)."""
    if _allowed is None:
        return True
    return any(module == p or module.startswith(p + ".") for p in _allowed)


def refusal(module: str) -> str:
    """Why `module` may not be imported, as the end of a one-line error."""
    return (f"module {module!r} is not on the import allow list ({', '.join(_allowed or ())}); "
            f"a worker allows more with --allow-import {module.split('.')[0]}")


def resolve(path: str, what: str) -> Any:
    """The object `"module:attr.attr"` names, refusing modules off the allow list, private
    attributes, and objects defined outside the allowed modules (`allowed_mod:os.system`)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise PlanError(f"{what}: {path!r} is not of the form 'module:function'")
    if not is_allowed(module_name):
        raise PlanError(f"{what}: refused: {refusal(module_name)}")
    parts = attr.split(".")
    if _allowed is not None and any(p.startswith("_") for p in parts):
        raise PlanError(f"{what}: refused: {path!r} names a private attribute")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in parts:
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise PlanError(f"{what}: cannot import {path!r}: {exc}") from None
    home = getattr(obj, "__module__", None)
    if _allowed is not None and not (isinstance(home, str) and is_allowed(home)):
        raise PlanError(f"{what}: refused: {path!r} is defined in {home!r}, not in an allowed module")
    return obj


def importable_record_module(module: str) -> bool:
    """A record type's module may load when it is allowed or this process has loaded it already
    (the plan's own operators brought it), never just because a peer named it."""
    return module in sys.modules or is_allowed(module)
