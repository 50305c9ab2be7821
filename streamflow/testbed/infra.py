"""The infrastructure file (infra.json): tiers, hosts and the links between tiers.

One model serves the profiler, the planner's problem and the testbed, so a host's `cpus` quota
and a link's bandwidth mean the same thing everywhere:

- hosts (`workers`): name, tier, price per hour, device, `threads` (the runtime's thread pool),
  `cpus` (a CPU quota in cores: 0.25 is a quarter of one core; absent: no quota), `memory_mb`
  (absent: no limit), and `role` ("worker" or "source": a source host replays the cameras and is
  never offered to the planner);
- links per tier pair, `links: {"edge->hub": {"bandwidth_mbps": 100, "rtt_ms": 4, "cost_per_gb":
  0.02}}`: bandwidth in Mbit/s per direction (absent: unlimited), round-trip time in ms, and the
  price per GB of traffic sent from the first tier to the second. The older
  `link_cost_per_gb: {"edge->hub": 0.02}` is still read. Hosts of one tier share a LAN: a link
  inside a tier may carry a price, never a bandwidth or delay.

Errors name the file and the JSON path of the field.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamflow.errors import StreamflowError
from streamflow.jsonfile import read_json

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
ROLES = ("worker", "source")
DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")
DOWNWARD_PRICE = 1e6  # the profiler's marker for traffic towards a lower tier (the planner forbids it)


class InfraError(StreamflowError):
    """infra.json is invalid; the message names the file and the field."""

    exit_status = 2


@dataclass(frozen=True)
class Host:
    """A machine of the infrastructure; on the testbed, one network namespace."""

    name: str
    tier: str
    cost_per_hour: float
    device: str = "cpu"
    threads: int = 1
    cpus: float | None = None
    memory_mb: int | None = None
    role: str = "worker"


@dataclass(frozen=True)
class Link:
    """What connects two tiers: bandwidth per direction, round trip, price of upward traffic."""

    lower: str
    upper: str
    bandwidth_mbps: float | None = None
    rtt_ms: float = 0.0
    cost_per_gb: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.lower}->{self.upper}"


@dataclass
class Infra:
    path: str
    tiers: list[str]
    hosts: list[Host]
    links: dict[tuple[str, str], Link]          # (lower tier, upper tier), both orders resolve
    comm_cost_scaling_factor: float = 1.0
    prices: dict[tuple[str, str], float] = field(default_factory=dict)   # directed tier pair -> per GB
    doc: dict[str, Any] = field(default_factory=dict)

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def tier_index(self, tier: str) -> int:
        return self.tiers.index(tier)

    def link(self, a: str, b: str) -> Link:
        """The link between two different tiers (unshaped and free when the file lists none)."""
        lo, hi = sorted((a, b), key=self.tier_index)
        return self.links.get((lo, hi)) or Link(lo, hi)

    def pairs(self) -> list[tuple[str, str]]:
        """Every pair of different tiers, lower first: the testbed links them all directly."""
        return [(a, b) for i, a in enumerate(self.tiers) for b in self.tiers[i + 1:]]

    def price_matrix(self) -> list[list[float]]:
        """Price per GB from tier p to tier q: free inside a tier, prohibitive downwards."""
        n = len(self.tiers)
        return [[0.0 if p == q else self.prices.get((self.tiers[p], self.tiers[q]),
                                                    DOWNWARD_PRICE if q < p else 0.0)
                 for q in range(n)] for p in range(n)]

    def bandwidth_matrix(self) -> list[list[float | None]]:
        """Mbit/s per direction between tiers; None where unlimited (inside a tier, unshaped links)."""
        return [[None if a == b else self.link(a, b).bandwidth_mbps for b in self.tiers] for a in self.tiers]

    def rtt_matrix(self) -> list[list[float]]:
        return [[0.0 if a == b else self.link(a, b).rtt_ms for b in self.tiers] for a in self.tiers]


def load_infra(path: str | Path) -> Infra:
    """Read and validate infra.json; raises InfraError naming the file and the field."""
    return parse_infra(read_json(path, InfraError), str(path))


def _number(v: Any, where: str, fail, *, minimum: float = 0.0, strict: bool = False) -> float:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if not ok or v < minimum or (strict and v == minimum):
        raise fail(where, f"expected a number {'>' if strict else '>='} {minimum:g}, got {v!r}")
    return float(v)


def parse_infra(doc: Any, origin: str = "infra.json") -> Infra:
    """Validate an infrastructure document (already parsed)."""
    def fail(where: str, msg: str) -> InfraError:
        return InfraError(f"{origin}: {where}: {msg}")
    if not isinstance(doc, dict):
        raise InfraError(f"{origin}: expected a JSON object")
    tiers = doc.get("tiers")
    if not isinstance(tiers, list) or not tiers or not all(isinstance(t, str) and NAME.match(t) for t in tiers):
        raise fail("tiers", "expected a list of tier names (letters, digits, '-', '_', '.'), lowest (edge) first")
    if len(set(tiers)) != len(tiers):
        raise fail("tiers", "a tier is listed twice")
    hosts: list[Host] = []
    raw_hosts = doc.get("workers")
    if not isinstance(raw_hosts, list) or not raw_hosts:
        raise fail("workers", "expected a non-empty list of hosts")
    for i, w in enumerate(raw_hosts):
        where = f"workers[{i}]"
        if not isinstance(w, dict):
            raise fail(where, "expected an object")
        name = w.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise fail(f"{where}.name", f"expected a name of letters, digits, '-', '_', '.' (at most 40), got {name!r}")
        if any(h.name == name for h in hosts):
            raise fail(f"{where}.name", f"host {name!r} is listed twice")
        if w.get("tier") not in tiers:
            raise fail(f"{where}.tier", f"expected one of {', '.join(tiers)}, got {w.get('tier')!r}")
        threads = w.get("threads", 1)
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise fail(f"{where}.threads", f"expected an integer >= 1, got {threads!r}")
        device = w.get("device", "cpu")
        if not isinstance(device, str) or not DEVICE.match(device):
            raise fail(f"{where}.device", f"expected cpu, cuda or cuda:N, got {device!r}")
        role = w.get("role", "worker")
        if role not in ROLES:
            raise fail(f"{where}.role", f"expected one of {', '.join(ROLES)}, got {role!r}")
        cost = _number(w.get("cost_per_hour", 0.0 if role == "source" else None), f"{where}.cost_per_hour", fail)
        cpus = w.get("cpus")
        if cpus is not None:
            cpus = _number(cpus, f"{where}.cpus", fail, strict=True)
        memory = w.get("memory_mb")
        if memory is not None and (not isinstance(memory, int) or isinstance(memory, bool) or memory < 64):
            raise fail(f"{where}.memory_mb", f"expected an integer >= 64, got {memory!r}")
        hosts.append(Host(name, w["tier"], cost, device, threads, cpus, memory, role))
    if not any(h.role == "worker" for h in hosts):
        raise fail("workers", "no host with role 'worker'")
    links: dict[tuple[str, str], Link] = {}
    prices: dict[tuple[str, str], float] = {}

    def pair(key: str, where: str) -> tuple[str, str]:
        a, sep, b = key.partition("->")
        if not sep or a not in tiers or b not in tiers:
            raise fail(where, "expected 'TIER->TIER' with tiers named in 'tiers'")
        return a, b
    legacy = doc.get("link_cost_per_gb") or {}
    if not isinstance(legacy, dict):
        raise fail("link_cost_per_gb", "expected an object {'TIER->TIER': price per GB}")
    for key, price in legacy.items():
        prices[pair(key, f"link_cost_per_gb.{key}")] = _number(price, f"link_cost_per_gb.{key}", fail)
    spec = doc.get("links") or {}
    if not isinstance(spec, dict):
        raise fail("links", "expected an object {'TIER->TIER': {bandwidth_mbps, rtt_ms, cost_per_gb}}")
    for key, entry in spec.items():
        where = f"links.{key}"
        a, b = pair(key, where)
        if not isinstance(entry, dict):
            raise fail(where, "expected an object with bandwidth_mbps, rtt_ms, cost_per_gb")
        unknown = set(entry) - {"bandwidth_mbps", "rtt_ms", "cost_per_gb"}
        if unknown:
            raise fail(f"{where}.{sorted(unknown)[0]}", "unknown field (expected bandwidth_mbps, rtt_ms, cost_per_gb)")
        if "cost_per_gb" in entry:
            price = _number(entry["cost_per_gb"], f"{where}.cost_per_gb", fail)
            if (a, b) in prices and prices[(a, b)] != price:
                raise fail(f"{where}.cost_per_gb", f"{price:g} contradicts link_cost_per_gb.{key} = {prices[(a, b)]:g}")
            prices[(a, b)] = price
        shaped = {k: entry[k] for k in ("bandwidth_mbps", "rtt_ms") if k in entry}
        if a == b:
            if shaped:
                raise fail(f"{where}.{next(iter(shaped))}", "hosts of one tier share a LAN: only cost_per_gb "
                                                            "may be given inside a tier")
            continue
        lo, hi = sorted((a, b), key=tiers.index)
        if (lo, hi) in links:
            raise fail(where, f"the link between {lo} and {hi} is already described by links.{links[(lo, hi)].key}")
        bw = entry.get("bandwidth_mbps")
        links[(lo, hi)] = Link(lo, hi, None if bw is None else _number(bw, f"{where}.bandwidth_mbps", fail, strict=True),
                               _number(entry.get("rtt_ms", 0.0), f"{where}.rtt_ms", fail),
                               prices.get((lo, hi), 0.0))
    for (lo, hi), link in list(links.items()):
        links[(lo, hi)] = Link(lo, hi, link.bandwidth_mbps, link.rtt_ms, prices.get((lo, hi), 0.0))
    scale = _number(doc.get("comm_cost_scaling_factor", 1.0), "comm_cost_scaling_factor", fail)
    return Infra(origin, list(tiers), hosts, links, scale, prices, doc)
