"""What needs no root: the infrastructure file's checks, names and addresses, cgroup v1/v2 files
(on a fake hierarchy), the tbf parameters and the share comparison of a run report."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamflow.cluster.shares import share_match
from streamflow.plan import parse_plan
from streamflow.testbed import cgroups
from streamflow.testbed.infra import InfraError, parse_infra
from streamflow.testbed.shaping import tbf_args
from streamflow.testbed.topology import plan_topology

REPO = Path(__file__).resolve().parents[2]


def doc(**over):
    base = {"tiers": ["edge", "hub", "cloud"],
            "workers": [{"name": "cams", "tier": "edge", "role": "source", "cpus": 0.5},
                        {"name": "edge-1", "tier": "edge", "cpus": 0.25, "memory_mb": 512, "cost_per_hour": 0.02},
                        {"name": "hub-1", "tier": "hub", "cpus": 0.5, "cost_per_hour": 0.1},
                        {"name": "cloud-1", "tier": "cloud", "device": "cuda:0", "cost_per_hour": 0.9}],
            "links": {"edge->hub": {"bandwidth_mbps": 100, "rtt_ms": 4, "cost_per_gb": 0.02},
                      "edge->cloud": {"bandwidth_mbps": 40, "rtt_ms": 34, "cost_per_gb": 0.09}},
            "link_cost_per_gb": {"hub->cloud": 0.07}}
    base.update(over)
    return base


def test_infra_fields_and_matrices() -> None:
    infra = parse_infra(doc())
    assert infra.host("cams").role == "source" and infra.host("cams").cost_per_hour == 0.0
    assert infra.host("edge-1").cpus == 0.25 and infra.host("edge-1").memory_mb == 512
    assert infra.link("cloud", "edge").bandwidth_mbps == 40 and infra.link("edge", "cloud").rtt_ms == 34
    assert infra.link("hub", "cloud").bandwidth_mbps is None      # legacy price only: unshaped
    assert infra.price_matrix()[0] == [0.0, 0.02, 0.09] and infra.price_matrix()[1] == [1e6, 0.0, 0.07]
    assert infra.bandwidth_matrix()[0] == [None, 100, 40]
    assert infra.rtt_matrix()[2][0] == 34


@pytest.mark.parametrize("change, message", [
    ({"workers": [{"name": "e", "tier": "edge", "cpus": 0, "cost_per_hour": 1}]},
     "workers[0].cpus: expected a number > 0, got 0"),
    ({"workers": [{"name": "e", "tier": "moon", "cost_per_hour": 1}]}, "workers[0].tier: expected one of"),
    ({"workers": [{"name": "e f", "tier": "edge", "cost_per_hour": 1}]}, "workers[0].name: expected a name"),
    ({"workers": [{"name": "e", "tier": "edge", "memory_mb": 1.5, "cost_per_hour": 1}]},
     "workers[0].memory_mb: expected an integer >= 64"),
    ({"links": {"edge->hub": {"bandwidth_mbps": -3}}}, "links.edge->hub.bandwidth_mbps: expected a number > 0"),
    ({"links": {"edge->mars": {"rtt_ms": 3}}}, "links.edge->mars: expected 'TIER->TIER'"),
    ({"links": {"edge->edge": {"rtt_ms": 3}}}, "links.edge->edge.rtt_ms: hosts of one tier share a LAN"),
    ({"links": {"edge->hub": {"rtt_ms": 3}, "hub->edge": {"rtt_ms": 3}}}, "links.hub->edge: the link between"),
    ({"links": {"edge->hub": {"latency": 3}}}, "links.edge->hub.latency: unknown field"),
    ({"links": {"hub->cloud": {"cost_per_gb": 0.5}}}, "links.hub->cloud.cost_per_gb: 0.5 contradicts"),
])
def test_infra_errors_name_the_field(change, message) -> None:
    with pytest.raises(InfraError) as err:
        parse_infra(doc(**change), "infra.json")
    assert str(err.value).startswith(f"infra.json: {message}"), str(err.value)


def test_names_fit_linux_and_addresses_are_private() -> None:
    many = doc(workers=[{"name": f"edge-box-number-{i}", "tier": ["edge", "hub", "cloud"][i % 3],
                         "cost_per_hour": 0.1} for i in range(200)])
    topo = plan_topology(parse_infra(many))
    devices = [h.router_end for h in topo.hosts.values()] + [h.mgmt_end for h in topo.hosts.values()]
    devices += [d for link in topo.links for d in (link.dev_lower, link.dev_upper)]
    assert max(len(d) for d in devices) <= 15 and len(set(devices)) == len(devices)
    addresses = [h.address for h in topo.hosts.values()] + [h.mgmt for h in topo.hosts.values()]
    assert len(set(addresses)) == len(addresses) and all(a.startswith("10.77.") for a in addresses)
    assert len(topo.links) == 3 and len(set(topo.namespaces())) == 203


def test_cgroup_v1_and_v2_files(tmp_path) -> None:
    v1 = tmp_path / "v1"
    for ctrl, files in (("cpu", ("cpu.cfs_quota_us",)), ("memory", ("memory.limit_in_bytes",))):
        (v1 / ctrl).mkdir(parents=True)
        for f in files:
            (v1 / ctrl / f).write_text("-1")
    backend = cgroups.detect(v1)
    assert backend.version == 1
    cgroups.create(backend, "sf-x", weight=1000)
    assert (v1 / "cpu/sf-x/cpu.shares").read_text() == "10240"
    cgroups.create(backend, "sf-x/h", cpus=0.25, memory_mb=256)
    assert (v1 / "cpu/sf-x/h/cpu.cfs_quota_us").read_text() == "25000"
    assert (v1 / "cpu/sf-x/h/cpu.cfs_period_us").read_text() == "100000"
    assert (v1 / "memory/sf-x/h/memory.limit_in_bytes").read_text() == str(256 << 20)
    v2 = tmp_path / "v2"
    (v2 / "unified").mkdir(parents=True)
    (v2 / "unified/cgroup.controllers").write_text("cpu memory pids")
    (v2 / "unified/cgroup.subtree_control").write_text("")
    backend = cgroups.detect(v2)
    assert backend.version == 2 and backend.cpu == v2 / "unified"
    cgroups.create(backend, "sf-x", weight=1000)
    assert (v2 / "unified/sf-x/cpu.weight").read_text() == "1000"
    cgroups.create(backend, "sf-x/h", cpus=1.5, memory_mb=100)
    assert (v2 / "unified/sf-x/h/cpu.max").read_text() == "150000 100000"
    assert (v2 / "unified/sf-x/h/memory.max").read_text() == str(100 << 20)
    assert (v2 / "unified/sf-x/cgroup.subtree_control").read_text() == "+cpu +memory"
    with pytest.raises(cgroups.TestbedError, match="exists"):
        cgroups.create(backend, "sf-x/h")


def test_tbf_parameters() -> None:
    args = tbf_args(20, 30)
    assert args[:3] == ["tbf", "rate", "20000kbit"]
    assert int(args[args.index("burst") + 1]) >= 3000 and args[-1] == "50ms"


def test_share_match_counts_weighted_operators_only() -> None:
    plan = parse_plan(json.loads((REPO / "examples" / "relational" / "plan.json").read_text()))
    ops = {"per-lane": {"instances": {"edge-0": {"records": 10}, "cloud-0": {"records": 90}}}}
    assert share_match(plan, ops) == {}          # per-lane is hash-partitioned: shares do not apply
    raw = json.loads((REPO / "examples" / "relational" / "plan.json").read_text())
    raw["operators"][4]["inputs"][0]["partition"] = "weighted"
    raw["operators"][4]["placement"][1]["share"] = 3
    got = share_match(parse_plan(raw), ops)["per-lane"]
    assert got["workers"]["cloud-0"]["planned"] == 0.75 and got["workers"]["cloud-0"]["measured"] == 0.9
    assert got["max_deviation"] == 0.6 and not got["within"]
