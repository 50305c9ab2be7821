"""Random pipelines with keys of every carried type: one process, and three fresh worker
processes with different PYTHONHASHSEEDs, each give exactly the plain-Python reference."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamflow.cluster.localcluster import LocalCluster
from streamflow.dataflow.worker import Worker
from streamflow.plan import build_graph, load_plan

from tests.runtime.diffcheck import as_counter, random_pipeline, read_sink

WORKERS = ["w0", "w1", "w2"]


def run_in_process(plan: dict, folder: Path) -> None:
    path = folder / "plan.json"
    path.write_text(json.dumps(plan))
    graph, _ = build_graph(load_plan(path))
    Worker(graph, check_records=True).run()


def outputs(folder: Path) -> dict:
    return {name: as_counter(read_sink(folder, name)) for name in ("agg_out", "join_out")}


def describe(pipeline, got: dict, want: dict) -> str:
    lines = [f"{pipeline}"]
    for name in want:
        extra, missing = got[name] - want[name], want[name] - got[name]
        if extra or missing:
            lines.append(f"{name}: extra {list(extra)[:3]}, missing {list(missing)[:3]}")
    return "\n".join(lines)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_random_pipelines_in_one_process_equal_the_reference(tmp_path_factory, seed) -> None:
    pipeline = random_pipeline(random.Random(seed), WORKERS)
    folder = tmp_path_factory.mktemp("one")
    run_in_process(pipeline.plan(str(folder)), folder)
    got, want = outputs(folder), pipeline.reference()
    assert got == want, describe(pipeline, got, want)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), hash_seeds=st.lists(st.integers(0, 4294967295), min_size=3, max_size=3))
def test_random_pipelines_over_three_fresh_processes_equal_the_reference(tmp_path_factory, seed, hash_seeds) -> None:
    pipeline = random_pipeline(random.Random(seed), WORKERS)
    folder = tmp_path_factory.mktemp("dist")
    env = {w: {"PYTHONHASHSEED": str(h)} for w, h in zip(WORKERS, hash_seeds)}
    with LocalCluster([(w, "edge") for w in WORKERS], env=env) as cluster:
        report = cluster.run(pipeline.plan(str(folder)), folder=folder)
    assert report["status"] == "completed", report["error"]
    got, want = outputs(folder), pipeline.reference()
    assert got == want, describe(pipeline, got, want)


@pytest.mark.parametrize("agg", ["count", "sum", "min", "distinct"])
def test_key_none_from_two_processes_is_one_group(tmp_path, agg) -> None:
    """The reported bug: None hashed by identity split one key into one group per process."""
    from tests.runtime.diffcheck import Pipeline
    pipeline = Pipeline(seed=5, epochs=3, per_epoch=60, mapped=False, filtered=False, agg=agg, agg_window=3,
                        how="inner", join_window=3,
                        placements={"s0": ["w0"], "s1": ["w1"], "both": ["w0", "w1"], "agg": ["w0", "w1", "w2"],
                                     "join": ["w1", "w2"], "agg_out": ["w2"], "join_out": ["w0"]})
    env = {"w0": {"PYTHONHASHSEED": "1"}, "w1": {"PYTHONHASHSEED": "2"}, "w2": {"PYTHONHASHSEED": "3"}}
    with LocalCluster([(w, "edge") for w in WORKERS], env=env) as cluster:
        report = cluster.run(pipeline.plan(str(tmp_path)), folder=tmp_path)
    assert report["status"] == "completed", report["error"]
    got = outputs(tmp_path)
    want = pipeline.reference()
    assert got == want, describe(pipeline, got, want)
    none_groups = [e for e, r in read_sink(tmp_path, "agg_out") if r["key"] is None]
    assert none_groups and len(none_groups) == len(set(none_groups)), none_groups  # one group per window
