"""The relational operator kinds a plan can name, built from declarative params.

Functions in params are field names, `{"expr": "..."}` over the record `r`, or
`{"import": "module:function"}` (restricted: operators/expr.py, streamflow/imports.py).
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from streamflow.dataflow.generator import GeneratorSpec, generate
from streamflow.dataflow.operators.aggregate import AGGREGATES, Aggregate
from streamflow.dataflow.operators.fields import as_function, import_callable
from streamflow.dataflow.operators.join import HOWS, EpochJoin
from streamflow.dataflow.operators.sink import JsonLinesSink
from streamflow.dataflow.operators.transform import (Exchange, Filter, FlatMap, Inspect, Map,
                                                     Project, Union)
from streamflow.dataflow.registry import Kind, register
from streamflow.dataflow.source import AsyncIterableSource
from streamflow.errors import PlanError

Factory = Callable[[], Any]


def _fn(params: dict[str, Any], key: str, path: str, required: bool = True) -> Callable[[Any], Any] | None:
    if key not in params:
        if required:
            raise PlanError(f"{path}.{key}: missing")
        return None
    return as_function(params[key], f"{path}.{key}")


def _int(params: dict[str, Any], key: str, default: int, path: str, minimum: int = 1) -> int:
    v = params.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        raise PlanError(f"{path}.{key}: expected an integer >= {minimum}, got {v!r}")
    return v


def _names(spec: Any) -> list[str] | None:
    """Field names a key spec stands for, to name result fields."""
    if isinstance(spec, str):
        return [spec]
    if isinstance(spec, list) and all(isinstance(s, str) for s in spec):
        return list(spec)
    return None


def _build_map(params: dict[str, Any], path: str, plan: Any) -> Factory:
    fn = _fn(params, "fn", path)
    return lambda: Map(fn)


def _build_flat_map(params: dict[str, Any], path: str, plan: Any) -> Factory:
    fn = _fn(params, "fn", path)
    return lambda: FlatMap(fn)


def _build_filter(params: dict[str, Any], path: str, plan: Any) -> Factory:
    pred = _fn(params, "where", path)
    return lambda: Filter(pred)


def _build_project(params: dict[str, Any], path: str, plan: Any) -> Factory:
    fields = params.get("fields")
    if not isinstance(fields, list) or not fields:
        raise PlanError(f"{path}.fields: expected a non-empty list of field names")
    return lambda: Project(fields)


def _build_inspect(params: dict[str, Any], path: str, plan: Any) -> Factory:
    fn = _fn(params, "fn", path)
    return lambda: Inspect(lambda epoch, record: fn(record))


def _build_union(params: dict[str, Any], path: str, plan: Any) -> Factory:
    n = int(params.get("n_inputs", 2))
    return lambda: Union(n)


def _build_exchange(params: dict[str, Any], path: str, plan: Any) -> Factory:
    return Exchange


def _build_join(params: dict[str, Any], path: str, plan: Any) -> Factory:
    lk = _fn(params, "left_key", path)
    rk = _fn(params, "right_key", path, required=False) or lk
    window = _int(params, "window", 1, path)
    how = params.get("how", "inner")
    if how not in HOWS:
        raise PlanError(f"{path}.how: expected one of {', '.join(HOWS)}, got {how!r}")

    def merge(left: Any, right: Any) -> dict[str, Any]:
        out = dict(left) if left else {}
        for k, v in (right or {}).items():
            if k not in out:
                out[k] = v
            elif out[k] != v:
                out[f"right_{k}"] = v
        return out
    merge.carried = True  # type: ignore[attr-defined]
    return lambda: EpochJoin(lk, rk, window, how, merge)


def _build_aggregate(params: dict[str, Any], path: str, plan: Any) -> Factory:
    key = _fn(params, "key", path)
    agg = params.get("agg", "count")
    if agg not in AGGREGATES:
        raise PlanError(f"{path}.agg: expected one of {', '.join(AGGREGATES)}, got {agg!r}")
    value = _fn(params, "value", path, required=agg != "count")
    window = _int(params, "window", 1, path)
    k = _int(params, "k", 3, path)
    key_names = _names(params["key"]) or ["key"]
    result = params.get("as", agg)

    def emit(key_value: Any, value_: Any, _names: list[str] = key_names) -> dict[str, Any]:
        keys = key_value if len(_names) > 1 else (key_value,)
        out = dict(zip(_names, keys))
        out[result] = value_
        return out
    emit.carried = True  # type: ignore[attr-defined]
    return lambda: Aggregate(key, agg, value, window, k, emit)


def _build_jsonl(params: dict[str, Any], path: str, plan: Any) -> Factory:
    target = params.get("path")
    if not isinstance(target, str) or not target:
        raise PlanError(f"{path}.path: expected a file path")
    resolved = plan.resolve(target) if plan is not None else target
    return lambda: JsonLinesSink(resolved)


def epoch_mapper(plan: Any) -> Callable[[int, float], int]:
    """(sequence number, seconds since start) -> epoch, as the plan's `epoch` block says."""
    unit, size = (plan.epoch_unit, plan.epoch_size) if plan is not None else ("frame", 1)
    if unit == "frame":
        return lambda seq, ts: seq // size
    return lambda seq, ts: int(ts * 1000) // size


def _build_generator(params: dict[str, Any], path: str, plan: Any) -> Factory:
    spec = GeneratorSpec(params, path)
    epoch_of = epoch_mapper(plan)
    if plan is not None and plan.speed is not None:
        spec.speed = plan.speed

    def factory() -> AsyncIterableSource:
        source = AsyncIterableSource(lambda ctx: generate(spec, epoch_of, ctx.instance, ctx.instances,
                                                          ctx.clock_origin, source.resume_epoch))
        source.emits_carried = True  # numbers and strings the spec draws
        return source
    return factory


def _key(params: dict[str, Any], port: int) -> Any:
    return params.get("key")


def _join_key(params: dict[str, Any], port: int) -> Any:
    return params.get("left_key") if port == 0 else params.get("right_key", params.get("left_key"))


for _name, _build, _inputs, _doc, _pkey in [
    ("map", _build_map, 1, "fn(record) -> record", None),
    ("flat_map", _build_flat_map, 1, "fn(record) -> iterable of records", None),
    ("filter", _build_filter, 1, "keeps records where `where` is true", None),
    ("project", _build_project, 1, "keeps `fields`", None),
    ("inspect", _build_inspect, 1, "calls fn(record), passes records on", None),
    ("union", _build_union, -1, "merges its inputs", None),
    ("exchange", _build_exchange, 1, "repartitions by `key`", _key),
    ("join", _build_join, 2, "equi-join of two inputs per epoch window", _join_key),
    ("aggregate", _build_aggregate, 1, "count/sum/mean/min/max/topk/distinct per key per epoch window", _key),
]:
    register(Kind(_name, _build, _inputs, 1, "operator", _doc, _pkey))
def _build_python(params: dict[str, Any], path: str, plan: Any) -> Factory:
    """`{"class": "module:Class", "args": {...}}`: an Operator (or Source) class of your own."""
    if "class" not in params:
        raise PlanError(f"{path}.class: missing ('module:Class' of an Operator subclass)")
    cls = import_callable(params["class"], f"{path}.class")
    args = params.get("args", {})
    if not isinstance(args, dict):
        raise PlanError(f"{path}.args: expected an object of keyword arguments")
    factory = partial(cls, **args)
    factory.n_outputs = getattr(cls, "n_outputs", 1)  # type: ignore[attr-defined]
    return factory


for _role, _inputs, _outputs in (("operator", -1, -1), ("source", 0, 1), ("sink", 1, 0)):
    register(Kind("python", _build_python, _inputs, _outputs, _role, "an Operator class named by import path"))
register(Kind("jsonl", _build_jsonl, 1, 0, "sink", "JSON Lines file, flushed per epoch"))
register(Kind("generator", _build_generator, 0, 1, "source", "seeded synthetic records at a rate"))
