"""Every operator kind a plan may name: the relational ones (kinds.py) and those of plugins.

Plugins come through the `streamflow.operators` entry-point group (or the STREAMFLOW_PLUGINS
environment variable, a comma-separated list of modules), so the runtime never imports them by
name; streamflow_workers/ registers its ML kinds and trace sources this way.
"""
from __future__ import annotations

import importlib
import logging
import os
from importlib.metadata import entry_points

from streamflow.dataflow import kinds
from streamflow.dataflow.registry import Kind, registered, registered_kinds

BUILT_IN = kinds.__name__  # importing it registered the relational kinds
_loaded = False


def _load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
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
    return registered(name, role, path)


def known_kinds(role: str | None = None) -> list[Kind]:
    """Every kind plans may name (of `role`)."""
    _load_plugins()
    return registered_kinds(role)
