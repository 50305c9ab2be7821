"""Operator state as snapshots see it: plain values, or values per partition key.

An operator whose input is hash-partitioned keeps state per key; it returns `Keyed({key:
state})` from `snapshot`, so that when the operator moves to more, fewer or other instances
(recovery onto survivors, live re-sharding) each key's state goes to the instance its key now
hashes to. Everything in a snapshot must be carried by the record type system
(docs/records.md): snapshots cross processes and land in SQLite through the record codec.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Keyed:
    """State per partition key (the same value the hash edge computes) plus shared state."""

    per_key: dict[Any, Any] = field(default_factory=dict)
    shared: Any = None

    def merged(self, other: "Keyed") -> "Keyed":
        """Two instances' keyed state as one (their keys are disjoint)."""
        return Keyed({**self.per_key, **other.per_key}, self.shared if self.shared is not None else other.shared)
