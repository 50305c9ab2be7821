"""plan.json, the runtime's input: write it from a PlanResult, read it back for --evaluate."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from streamflow_planner.costmodel import Assignment
from streamflow_planner.errors import ProblemError
from streamflow_planner.problem import BatchSetting, Problem

EPOCH = {"unit": "ms", "size": 1000}
WORKER_EXTRAS = ("threads",)  # worker fields the runtime uses that the planner only passes on


def device_of(problem: Problem, name: str) -> str:
    """'cuda:0' for a worker whose device field or name says GPU, else 'cpu' (or the stated device)."""
    w = problem.worker(name)
    if w.device:
        d = w.device.lower()
        return "cuda:0" if d in ("gpu", "cuda") else w.device
    return "cuda:0" if "gpu" in name.lower() else "cpu"


def to_plan(problem: Problem, result) -> dict:
    """The plan document for a result (see DESIGN.md, "plan.json")."""
    a: Assignment = result.assignment
    ev = result.evaluation
    rates = problem.required_rates()
    used: list[str] = []
    for op in problem.operators:
        for w in a.placement[op]:
            if w not in used:
                used.append(w)
    workers = [_worker_entry(problem, w) for w in sorted(used, key=lambda n: problem.worker(n).index)]
    sources = []
    problem_workers = {w.name for w in problem.workers}
    for s in problem.sources.values():
        host = s.worker or f"{s.name}-host"
        if host not in used:
            used.append(host)
            if host in problem_workers:
                workers.append(_worker_entry(problem, host))
            else:
                workers.append({"name": host, "tier": problem.tier_names[s.tier], "device": "cpu",
                                "cost_per_hour": 0.0, "role": "source"})
        runtime = s.runtime or {}
        entry = {"name": s.name, "kind": runtime.get("kind", "generator"), "worker": host,
                 "rate_per_s": s.rate}
        entry.update(runtime.get("params", {}))
        sources.append(entry)
    operators = []
    for op, spec in problem.operators.items():
        variant = a.variants[op]
        runtime = spec.runtime or {}
        params = dict(runtime.get("params", {}))
        params.update(runtime.get("variant_params", {}).get(variant, {}))
        extra = {"batch": runtime["batch"]} if "batch" in runtime else {}
        if op in a.batch:
            extra = {"batch": a.batch[op].as_plan()}
        inputs = []
        for e in problem.in_edges(op):
            entry: dict[str, Any] = {"from": e.src, "partition": "weighted"}
            route = a.routes.get((e.src, op))
            if route is not None and not problem.is_join(op):
                entry["routes"] = {snd: {rcv: r for rcv, r in row.items() if r > 0} for snd, row in route.items()}
            inputs.append(entry)
        operators.append({"name": op, "kind": runtime.get("kind", "model"), "variant": variant,
                          "params": params, "inputs": inputs,
                          "placement": [{"worker": w, "share": r} for w, r in a.placement[op].items()], **extra})
    sinks = [{"name": "out", "from": problem.sink, "path": f"out/{problem.name}.jsonl"}]
    if problem.plan_extras:
        operators += [_placed(problem, a, o) for o in problem.plan_extras.get("operators", [])]
        sinks = [_placed(problem, a, s) for s in problem.plan_extras.get("sinks", [])]
    return {
        "version": 1,
        "name": problem.name,
        "epoch": dict(problem.epoch or EPOCH),
        "workers": workers,
        "sources": sources,
        "operators": operators,
        "sinks": sinks,
        "expected": {
            "cost_per_hour": ev.total_cost,
            "compute_cost_per_hour": ev.compute_cost,
            "communication_cost_per_hour": ev.communication_cost,
            "accuracy": ev.accuracy,
            "throughput_per_s": rates[problem.sink],
            "algorithm": result.algorithm,
            "optimal": bool(result.optimal),
            "gap": result.gap,
            **({"utilization": problem.utilization} if problem.utilization != 1.0 else {}),
            **_latency_entry(problem, ev),
        },
    }


def _model_name(problem: Problem) -> str:
    queue = ("M/D/1 (Poisson sources)" if any(problem.arrivals(op).process == "poisson" for op in problem.operators)
             else "periodic bursts, FIFO batch server")
    return f"{queue} per worker at its planned utilisation, batch service, link transfer (docs/planner.md)"


def _latency_entry(problem: Problem, ev) -> dict:
    """`expected.latency`: the planner's prediction of the percentile from the sources to the
    sink operator (and, under an SLO, the SLO and the bound the plan was held to)."""
    if ev.latency is None or not math.isfinite(ev.latency.ms):
        return {}
    out = {"sink_operator": problem.sink, "percentile": problem.slo.label if problem.slo else "p99",
           "predicted_ms": round(ev.latency.ms, 3), "critical_path": ev.latency.path,
           "model": _model_name(problem)}
    if problem.slo is not None:
        out["slo_ms"] = problem.slo.ms
        if ev.latency_bound is not None:
            out["bound_ms"] = round(ev.latency_bound.ms, 3)
    return {"latency": out}


def _placed(problem: Problem, a: Assignment, entry: dict) -> dict:
    """A non-ML operator or sink copied from `plan_extras`, its `"with:OP"` placement resolved to
    the worker serving the largest share of ML operator OP (these run beside what feeds them)."""
    out = dict(entry)
    for key in ("placement", "worker"):
        where = out.get(key)
        if isinstance(where, str) and where.startswith("with:"):
            op = where[5:]
            if op not in a.placement:
                raise ProblemError(f"plan_extras: {entry.get('name')}.{key}: no ML operator {op!r}")
            host = max(a.placement[op].items(), key=lambda kv: kv[1])[0]
            if key == "placement":
                out[key] = [{"worker": host, "share": 1.0}]
            else:
                out[key] = host
    return out


def _worker_entry(problem: Problem, name: str) -> dict:
    w = problem.worker(name)
    raw = problem.raw.get("workers", [])
    extras = {k: v for k, v in raw[w.index].items() if k in WORKER_EXTRAS} if w.index < len(raw) else {}
    return {"name": name, "tier": problem.tier_names[w.tier], "device": device_of(problem, name),
            "cost_per_hour": w.cost_per_hour, **extras}


def write_plan(plan: dict, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(plan, indent=2) + "\n")


def read_plan(path: str | Path, problem: Problem) -> Assignment:
    """Parse a plan file into an Assignment; errors name the plan's JSON path."""
    origin = Path(path).name
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ProblemError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ProblemError(f"{origin}: not JSON: {exc.msg} at line {exc.lineno}") from None
    return plan_to_assignment(doc, problem, origin)


def plan_to_assignment(doc: Any, problem: Problem, origin: str = "plan.json") -> Assignment:
    def fail(path: str, msg: str) -> ProblemError:
        return ProblemError(f"{origin}: {path}: {msg}")

    if not isinstance(doc, dict):
        raise ProblemError(f"{origin}: top level must be an object")
    ops = doc.get("operators")
    if not isinstance(ops, list):
        raise fail("operators", "missing list")
    names = {w.name for w in problem.workers}
    variants: dict[str, str] = {}
    placement: dict[str, dict[str, float]] = {}
    routes: dict = {}
    batch: dict[str, BatchSetting] = {}
    for i, op in enumerate(ops):
        p = f"operators[{i}]"
        if not isinstance(op, dict) or not isinstance(op.get("name"), str):
            raise fail(f"{p}.name", "missing operator name")
        name = op["name"]
        if name in problem.extra_names:
            continue  # a non-ML operator the problem's plan_extras added: not planned
        if name not in problem.operators:
            raise fail(f"{p}.name", f"no operator '{name}' in the problem")
        if not isinstance(op.get("variant"), str):
            raise fail(f"{p}.variant", "missing variant")
        variants[name] = op["variant"]
        pl = op.get("placement")
        if not isinstance(pl, list) or not pl:
            raise fail(f"{p}.placement", "missing placement list")
        b = op.get("batch")
        if isinstance(b, dict) and "max_size" in b:
            size, wait = b.get("max_size"), b.get("max_wait_ms", 20.0)   # the runtime's defaults
            if not isinstance(size, int) or size < 1:
                raise fail(f"{p}.batch.max_size", f"expected an integer >= 1, got {size!r}")
            if not isinstance(wait, (int, float)) or isinstance(wait, bool) or wait < 0:
                raise fail(f"{p}.batch.max_wait_ms", f"expected a number >= 0, got {wait!r}")
            batch[name] = BatchSetting(size, float(wait))
        placement[name] = {}
        for j, entry in enumerate(pl):
            if not isinstance(entry, dict) or entry.get("worker") not in names:
                raise fail(f"{p}.placement[{j}].worker", f"no such worker {entry.get('worker') if isinstance(entry, dict) else entry!r}")
            share = entry.get("share")
            if not isinstance(share, (int, float)) or isinstance(share, bool):
                raise fail(f"{p}.placement[{j}].share", "expected a number")
            placement[name][entry["worker"]] = float(share)
        for j, inp in enumerate(op.get("inputs", [])):
            if isinstance(inp, dict) and isinstance(inp.get("routes"), dict):
                src = inp.get("from")
                table = {}
                for snd, row in inp["routes"].items():
                    if not isinstance(row, dict):
                        raise fail(f"{p}.inputs[{j}].routes.{snd}", "expected an object")
                    for rcv, r in row.items():
                        if not isinstance(r, (int, float)) or isinstance(r, bool):
                            raise fail(f"{p}.inputs[{j}].routes.{snd}.{rcv}", "expected a number")
                    table[snd] = {rcv: float(r) for rcv, r in row.items()}
                routes[(src, name)] = table
    for op in problem.operators:
        if op not in variants:
            raise fail("operators", f"missing operator '{op}'")
    return Assignment(variants, placement, routes, batch)
