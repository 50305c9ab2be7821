"""Who takes over a lost worker's operators: a registered spare, else a survivor with room.

Roles are the plan's worker names; a worker process plays one role, or more after taking over
(each role keeps its own data socket, progress identity and operator instances, so the plan,
the placement and every checkpoint stay valid unchanged).

Rule: a spare of the lost role's tier, else any spare; else a survivor of the same tier that
plays one role only, when the plan leaves room for a second one (its recorded planned
utilization, `expected.utilization`, at most 0.5; plans that record none are taken to have
room); else nobody, and the run ends.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Candidate:
    name: str
    tier: str
    roles: list[str]
    spare: bool


def choose(role: str, tier: str, candidates: list[Candidate], expected: dict[str, Any]) -> Candidate | None:
    """The process that takes over `role` (of `tier`), or None when nobody has room."""
    spares = [c for c in candidates if c.spare and not c.roles]
    for c in spares:
        if c.tier == tier:
            return c
    for c in spares:
        if c.tier in (tier, "any"):
            return c
    if spares:
        return spares[0]
    utilization = expected.get("utilization")
    if isinstance(utilization, (int, float)) and utilization > 0.5:
        return None
    survivors = [c for c in candidates if not c.spare and len(c.roles) == 1 and c.tier == tier]
    return survivors[0] if survivors else None
