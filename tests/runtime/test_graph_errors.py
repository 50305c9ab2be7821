"""Bad graphs raise errors that name the problem; the CLI prints one line and exits 2."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import streamflow.operators as op
from streamflow import Dataflow, Operator
from streamflow.dataflow.graph import EdgeSpec, Graph, OperatorSpec
from streamflow.errors import GraphError


def _graph(*ops: tuple[str, int, int], edges: list[EdgeSpec]) -> Graph:
    g = Graph()
    for name, n_in, n_out in ops:
        g.add_operator(OperatorSpec(name, "x", n_in, n_out, Operator))
    for e in edges:
        g.add_edge(e)
    return g


def test_cycle_is_named() -> None:
    g = _graph(("src", 0, 1), ("a", 2, 1), ("b", 1, 1),
               edges=[EdgeSpec("src", "a"), EdgeSpec("a", "b"), EdgeSpec("b", "a", dst_port=1)])
    with pytest.raises(GraphError, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        g.validate()


def test_unknown_operator_is_named() -> None:
    g = _graph(("src", 0, 1), edges=[EdgeSpec("src", "nowhere")])
    with pytest.raises(GraphError, match="edge src -> nowhere: unknown operator 'nowhere'"):
        g.validate()


def test_ports_out_of_range_are_named() -> None:
    g = _graph(("src", 0, 1), ("a", 1, 1), edges=[EdgeSpec("src", "a", src_port=2)])
    with pytest.raises(GraphError, match="output port 2 out of range \\(src has 1 output\\)"):
        g.validate()
    g = _graph(("src", 0, 1), ("a", 1, 1), edges=[EdgeSpec("src", "a", dst_port=1)])
    with pytest.raises(GraphError, match="input port 1 out of range \\(a has 1 input\\)"):
        g.validate()


def test_unfed_input_and_duplicate_names() -> None:
    g = _graph(("src", 0, 1), ("j", 2, 1), edges=[EdgeSpec("src", "j")])
    with pytest.raises(GraphError, match="'j': input port 1 has no incoming edge"):
        g.validate()
    flow = Dataflow()
    op.source("s", flow, [])
    with pytest.raises(GraphError, match="'s' is defined twice"):
        op.source("s", flow, [])


PLAN = {
    "version": 1, "name": "t", "epoch": {"unit": "frame", "size": 10},
    "workers": [{"name": "edge-0", "tier": "edge", "cost_per_hour": 0.1}],
    "sources": [{"name": "gen", "kind": "generator", "worker": "edge-0", "count": 50, "speed": 0,
                 "fields": {"lane": {"int": [0, 3]}}}],
    "operators": [
        {"name": "fast", "kind": "filter", "params": {"where": {"expr": "r['lane'] > 0"}},
         "inputs": [{"from": "gen"}], "placement": [{"worker": "edge-0", "share": 1}]},
        {"name": "count", "kind": "aggregate", "params": {"key": "lane", "agg": "count"},
         "inputs": [{"from": "fast"}], "placement": [{"worker": "edge-0", "share": 1}]}],
    "sinks": [{"name": "out", "from": "count", "path": "out.jsonl"}],
}


def _validate(tmp_path, plan) -> subprocess.CompletedProcess:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan) if not isinstance(plan, str) else plan)
    return subprocess.run([sys.executable, "-m", "streamflow.cli", "validate", str(path)],
                          capture_output=True, text=True, timeout=60)


def _broken(mutate) -> dict:
    plan = json.loads(json.dumps(PLAN))
    mutate(plan)
    return plan


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p["operators"][1]["inputs"][0].update({"from": "count"}),
     "operators: cycle: count -> count"),
    (lambda p: p["operators"][0]["placement"][0].update({"worker": "hub-9"}),
     "operators[0].placement[0].worker: no such worker 'hub-9'"),
    (lambda p: p["operators"][1]["inputs"][0].update({"from": "nope"}),
     "operators[1].inputs[0].from: no such operator or source 'nope'"),
    (lambda p: p["operators"][1]["inputs"][0].update({"port": 3}),
     "operators[1].inputs[0].port: 'fast' has 1 output, no port 3"),
    (lambda p: p["operators"][0].update({"kind": "telepathy"}),
     "operators[0].kind: unknown operator kind 'telepathy'"),
    (lambda p: p["operators"][0].pop("inputs"), "operators[0].inputs: missing"),
    (lambda p: p["operators"][1]["params"].update({"agg": "median"}),
     "operators[1].params.agg: expected one of count"),
    (lambda p: p["workers"][0].update({"device": "tpu"}), "workers[0].device: expected 'cpu'"),
    # found by tools/fuzz_channels.py: an empty field list raised TypeError from operator.itemgetter
    (lambda p: p["operators"][1]["params"].update({"key": []}), "a non-empty list of fields"),
    (lambda p: p["operators"][1]["params"].update({"key": True}), "a non-empty list of fields"),
])
def test_cli_reports_one_line_and_exit_2(tmp_path, mutate, message) -> None:
    result = _validate(tmp_path, _broken(mutate))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]


def test_cli_accepts_a_good_plan_and_rejects_non_json(tmp_path) -> None:
    result = _validate(tmp_path, PLAN)
    assert result.returncode == 0 and "ok: 4 operators, 3 edges" in result.stdout, result.stderr
    result = _validate(tmp_path, "{not json")
    assert result.returncode == 2 and "not JSON (line 1" in result.stderr


def test_plan_graph_runs_in_process(tmp_path, monkeypatch) -> None:
    import asyncio
    from collections import Counter

    from streamflow.dataflow.generator import GeneratorSpec, generate
    from streamflow.dataflow.worker import Worker
    from streamflow.plan import build_graph, parse_plan
    monkeypatch.chdir(tmp_path)
    graph, _placement = build_graph(parse_plan(PLAN))
    Worker(graph).run()
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    got = Counter({(r["epoch"], r["lane"]): r["count"] for r in rows})

    async def reference() -> Counter:
        spec = GeneratorSpec(PLAN["sources"][0], "sources[0]")
        want: Counter = Counter()
        async for _epoch, batch in generate(spec, lambda seq, ts: seq // 10):
            want.update((r["seq"] // 10, r["lane"]) for r in batch if r["lane"] > 0)
        return want
    assert got == asyncio.run(reference()) and sum(got.values()) > 0
