"""Did each worker do the part of an operator the plan gave it? Per operator placed on several
workers whose inputs are split by share (weighted partitions; a hash partition splits by key,
not share): the planned fraction (share / sum of shares) next to the measured fraction of the
records its instances took in, and the worst relative deviation."""
from __future__ import annotations

from typing import Any

from streamflow.dataflow.catalog import lookup
from streamflow.plan import NodePlan, Plan, _default_partition

TOLERANCE = 0.10


def share_match(plan: Plan, operators: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{operator: {"workers": {worker: planned/measured}, "max_deviation": x, "within": bool}}."""
    out: dict[str, dict[str, Any]] = {}
    for node in plan.nodes:
        op = operators.get(node.name)
        if node.role != "operator" or len(node.placement) < 2 or op is None or not _split_by_share(node):
            continue
        instances = op.get("instances", {})
        shares = sum(s for _, s in node.placement)
        records = sum(instances.get(w, {}).get("records", 0) for w, _ in node.placement)
        rows, worst = {}, 0.0
        for worker, share in node.placement:
            planned = share / shares
            got = instances.get(worker, {}).get("records", 0)
            measured = got / records if records else 0.0
            deviation = abs(measured - planned) / planned
            worst = max(worst, deviation)
            rows[worker] = {"share": share, "planned": round(planned, 4), "records": got,
                            "measured": round(measured, 4), "deviation": round(deviation, 4)}
        out[node.name] = {"workers": rows, "max_deviation": round(worst, 4), "within": worst <= TOLERANCE}
    return out


def _split_by_share(node: NodePlan) -> bool:
    kind = lookup(node.kind, node.role, f"{node.path}.kind")
    return all((inp.partition or _default_partition(node, kind, port)[0]) == "weighted"
               for port, inp in enumerate(node.inputs))


def describe(block: dict[str, dict[str, Any]]) -> list[str]:
    """One line per operator for the run summary."""
    lines = []
    for op, entry in block.items():
        parts = ", ".join(f"{w} {r['planned']:.1%} -> {r['measured']:.1%} ({r['records']:,})"
                          for w, r in entry["workers"].items())
        verdict = "within" if entry["within"] else "NOT within"
        lines.append(f"shares of {op} (planned -> measured records): {parts}; max deviation "
                     f"{entry['max_deviation']:.1%}, {verdict} {TOLERANCE:.0%}")
    return lines
