"""Names and addresses of the emulated network, derived from the infrastructure alone.

    root namespace            sf-mgmt bridge 10.77.255.1  (coordinator; control traffic only)
      |  sf-m<i> veth per host, bridge ports isolated (hosts never talk to each other here)
    sf-h-<host>               eth0 10.77.<tier>.<10+j>/24, default via its tier router
                              mgmt0 10.77.255.<10+i>/24
    sf-r-<tier>               router: bridge sf-br 10.77.<tier>.1/24 over the hosts' veths,
                              one point-to-point device per other tier (sf-t<a>t<b>), forwarding on

Every pair of tiers gets a direct link, so a packet between two hosts crosses at most one shaped
link, the one of its tier pair, and the planner's per-pair bandwidth is what the packet sees.
Links inside a tier are the tier bridge: unshaped, as a LAN. Data addresses (10.77.<tier>.x)
exist only inside the namespaces; the root namespace holds just the management bridge.
Interface names stay within Linux's 15 characters by using indices, not host names.
"""
from __future__ import annotations

from dataclasses import dataclass

from streamflow.testbed.infra import Infra

PREFIX = "sf-"
NET = "10.77"
MGMT_BRIDGE = f"{PREFIX}mgmt"
MGMT_GATEWAY = f"{NET}.255.1"
ROUTER_BRIDGE = f"{PREFIX}br"
MAX_TIERS = 16      # 120 tier pairs fit the link range 10.77.100-219
MAX_HOSTS_PER_TIER = 240


@dataclass(frozen=True)
class HostNet:
    name: str
    tier: str
    index: int            # over all hosts
    namespace: str
    address: str          # data plane
    mgmt: str             # management (control) plane
    router_end: str       # the host's veth end inside its tier router
    mgmt_end: str         # the host's veth end on the root management bridge


@dataclass(frozen=True)
class TierNet:
    name: str
    index: int
    namespace: str
    gateway: str


@dataclass(frozen=True)
class LinkNet:
    """A tier pair: one device in each tier's router, joined by the delay line."""

    lower: str
    upper: str
    index: int
    dev_lower: str
    dev_upper: str
    addr_lower: str
    addr_upper: str


@dataclass(frozen=True)
class Topology:
    tiers: dict[str, TierNet]
    hosts: dict[str, HostNet]
    links: list[LinkNet]

    def namespaces(self) -> list[str]:
        return [t.namespace for t in self.tiers.values()] + [h.namespace for h in self.hosts.values()]


def plan_topology(infra: Infra) -> Topology:
    """Deterministic names and addresses for an infrastructure (no side effects)."""
    if len(infra.tiers) > MAX_TIERS:
        raise ValueError(f"at most {MAX_TIERS} tiers")
    tiers = {t: TierNet(t, i, f"{PREFIX}r-{t}", f"{NET}.{i}.1") for i, t in enumerate(infra.tiers)}
    hosts: dict[str, HostNet] = {}
    per_tier: dict[str, int] = {}
    for i, h in enumerate(infra.hosts):
        j = per_tier.get(h.tier, 0)
        per_tier[h.tier] = j + 1
        if j >= MAX_HOSTS_PER_TIER or i >= 245:
            raise ValueError(f"at most {MAX_HOSTS_PER_TIER} hosts per tier and 245 in all")
        t = tiers[h.tier].index
        hosts[h.name] = HostNet(h.name, h.tier, i, f"{PREFIX}h-{h.name}", f"{NET}.{t}.{10 + j}",
                                f"{NET}.255.{10 + i}", f"{PREFIX}h{i}", f"{PREFIX}m{i}")
    links = []
    for k, (lo, hi) in enumerate(infra.pairs()):
        a, b = tiers[lo].index, tiers[hi].index
        links.append(LinkNet(lo, hi, k, f"{PREFIX}t{a}t{b}", f"{PREFIX}t{b}t{a}",
                             f"{NET}.{100 + k}.1", f"{NET}.{100 + k}.2"))
    return Topology(tiers, hosts, links)
