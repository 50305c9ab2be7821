"""The profiler's inputs: a workflow (a plan without placement, ML operators listing variants)
and an infrastructure (tiered workers with prices, threads and devices; link prices per GB).

Errors name the file and the JSON path, as plan errors do.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamflow.errors import PlanError

ML_KINDS = ("detect", "embed")


@dataclass
class WorkerSpec:
    name: str
    tier: int
    device: str
    threads: int
    cost_per_hour: float

    @property
    def machine(self) -> tuple[str, int]:
        """What latency depends on here: the device and the threads the runtime may use."""
        return (self.device, self.threads)


@dataclass
class Infrastructure:
    tiers: list[str]
    workers: list[WorkerSpec]
    link_cost_per_gb: dict[tuple[int, int], float]
    comm_cost_scaling_factor: float = 1.0

    def tier_matrix(self) -> list[list[float]]:
        """Price per GB from tier p to tier q; free inside a tier, prohibitive downwards."""
        n = len(self.tiers)
        return [[0.0 if p == q else self.link_cost_per_gb.get((p, q), 1e6 if q < p else 0.0)
                 for q in range(n)] for p in range(n)]


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


def _read(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise PlanError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None


def load_infrastructure(path: str | Path) -> Infrastructure:
    doc = _read(path)

    def fail(where: str, msg: str) -> PlanError:
        return PlanError(f"{path}: {where}: {msg}")
    tiers = doc.get("tiers")
    if not isinstance(tiers, list) or not tiers or not all(isinstance(t, str) for t in tiers):
        raise fail("tiers", "expected a list of tier names, lowest (edge) first")
    workers = []
    for i, w in enumerate(doc.get("workers") or []):
        where = f"workers[{i}]"
        if not isinstance(w, dict) or not isinstance(w.get("name"), str):
            raise fail(f"{where}.name", "missing")
        if w.get("tier") not in tiers:
            raise fail(f"{where}.tier", f"expected one of {', '.join(tiers)}, got {w.get('tier')!r}")
        threads = w.get("threads", 1)
        if not isinstance(threads, int) or threads < 1:
            raise fail(f"{where}.threads", f"expected an integer >= 1, got {threads!r}")
        cost = w.get("cost_per_hour")
        if not isinstance(cost, (int, float)) or cost < 0:
            raise fail(f"{where}.cost_per_hour", f"expected a number >= 0, got {cost!r}")
        workers.append(WorkerSpec(w["name"], tiers.index(w["tier"]), w.get("device", "cpu"), threads, float(cost)))
    if not workers:
        raise fail("workers", "no workers")
    links = {}
    for key, price in (doc.get("link_cost_per_gb") or {}).items():
        a, _, b = key.partition("->")
        if a not in tiers or b not in tiers:
            raise fail(f"link_cost_per_gb.{key}", "expected 'TIER->TIER' with tiers named in 'tiers'")
        if not isinstance(price, (int, float)) or price < 0:
            raise fail(f"link_cost_per_gb.{key}", f"expected a price >= 0, got {price!r}")
        links[(tiers.index(a), tiers.index(b))] = float(price)
    scale = doc.get("comm_cost_scaling_factor", 1.0)
    return Infrastructure(tiers, workers, links, float(scale))


def load_workflow(path: str | Path) -> Workflow:
    path = Path(path)
    doc = _read(path)

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
