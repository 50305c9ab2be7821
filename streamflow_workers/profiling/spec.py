"""The profiler's inputs: a workflow (a plan without placement, ML operators listing variants)
and an infrastructure (streamflow/testbed/infra.py: tiered hosts with prices, threads, devices and
CPU quotas; links between tiers with bandwidth, round trip and price per GB).

Errors name the file and the JSON path, as plan errors do.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamflow.errors import PlanError
from streamflow.jsonfile import read_json
from streamflow.testbed.infra import Infra, InfraError, load_infra

ML_KINDS = ("detect", "embed")


@dataclass
class WorkerSpec:
    name: str
    tier: int
    device: str
    threads: int
    cost_per_hour: float
    cpus: float | None = None      # a CPU quota the profile measured under (None: the whole machine)

    @property
    def machine(self) -> tuple:
        """What latency depends on here: the device, the threads the runtime may use, the quota."""
        return (self.device, self.threads) if self.cpus is None else (self.device, self.threads, self.cpus)


@dataclass
class Infrastructure:
    """The planner's view of infra.json: worker hosts only (source hosts are not offered)."""

    tiers: list[str]
    workers: list[WorkerSpec]
    model: Infra

    @property
    def comm_cost_scaling_factor(self) -> float:
        return self.model.comm_cost_scaling_factor


@dataclass
class Workflow:
    name: str
    doc: dict[str, Any]
    base_dir: Path
    ml_operators: list[dict[str, Any]] = field(default_factory=list)
    other_operators: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sources(self) -> list[dict[str, Any]]:
        return self.doc["sources"]


def load_infrastructure(path: str | Path, quotas: bool = False) -> Infrastructure:
    """infra.json as the profiler needs it; with `quotas`, each host's `cpus` is part of its machine."""
    try:
        infra = load_infra(path)
    except InfraError as exc:
        raise PlanError(str(exc)) from None
    workers = [WorkerSpec(h.name, infra.tier_index(h.tier), h.device, h.threads, h.cost_per_hour,
                          h.cpus if quotas else None) for h in infra.hosts if h.role == "worker"]
    return Infrastructure(infra.tiers, workers, infra)


def load_workflow(path: str | Path) -> Workflow:
    path = Path(path)
    doc = read_json(path, PlanError)

    def fail(where: str, msg: str) -> PlanError:
        return PlanError(f"{path}: {where}: {msg}")
    if not isinstance(doc, dict):
        raise fail("workflow", "expected an object")
    for key in ("name", "sources", "operators"):
        if key not in doc:
            raise fail(key, "missing")
    wf = Workflow(doc["name"], doc, path.resolve().parent)
    names = {s["name"] for s in doc["sources"]}
    for i, o in enumerate(doc["operators"]):
        if "variants" in o:
            if o.get("kind") not in ML_KINDS:
                raise fail(f"operators[{i}].kind", f"variants are for ML kinds ({', '.join(ML_KINDS)})")
            if not isinstance(o["variants"], list) or not o["variants"]:
                raise fail(f"operators[{i}].variants", "expected a non-empty list of variant names")
            for j, inp in enumerate(o.get("inputs", [])):
                src = inp if isinstance(inp, str) else inp.get("from")
                if src not in names:
                    raise fail(f"operators[{i}].inputs[{j}]", f"an ML operator's inputs must be sources or ML "
                                                               f"operators listed before it; {src!r} is not")
            wf.ml_operators.append(o)
            names.add(o["name"])
        else:
            wf.other_operators.append(o)
    if not wf.ml_operators:
        raise fail("operators", "no ML operator lists 'variants': nothing to profile")
    acc = doc.get("accuracy", {})
    if not isinstance(acc.get("threshold"), (int, float)):
        raise fail("accuracy.threshold", "missing (the end-to-end accuracy floor, in percent)")
    return wf
