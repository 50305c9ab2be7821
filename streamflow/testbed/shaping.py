"""Link shaping: a token bucket (tc tbf) on each end of a tier-to-tier link sets its bandwidth
per direction; the delay line between the two ends adds half the round trip each way.

Why not netem for the delay: it is not compiled into every kernel (this machine's has no
CONFIG_NET_SCH_NETEM; tbf and htb are there), and one mechanism everywhere means what the tests
measure is what runs. The bucket holds at least two full packets and 4 ms of traffic, so a
link reaches its rate without bursting far past it; the queue holds up to `QUEUE_MS` (at least
one round trip) of traffic, so TCP fills a long, thin pipe instead of losing packets to a short
queue.
"""
from __future__ import annotations

from streamflow.testbed.netns import run

MTU = 1500
QUEUE_MS = 50.0


def tbf_args(bandwidth_mbps: float, rtt_ms: float) -> list[str]:
    """tc arguments of the token bucket for one direction of a link."""
    rate_bytes = bandwidth_mbps * 1e6 / 8
    burst = max(2 * MTU, int(rate_bytes * 0.004))
    latency_ms = max(QUEUE_MS, rtt_ms)
    return ["tbf", "rate", f"{bandwidth_mbps * 1000:.0f}kbit", "burst", str(burst), "latency", f"{latency_ms:.0f}ms"]


def shape(ns: str, dev: str, bandwidth_mbps: float, rtt_ms: float) -> None:
    """Limit what leaves `dev` (inside namespace `ns`) to `bandwidth_mbps`."""
    run("tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", *tbf_args(bandwidth_mbps, rtt_ms))


def unshape(ns: str, dev: str) -> None:
    run("tc", "-n", ns, "qdisc", "del", "dev", dev, "root", check=False)


def qdiscs(ns: str) -> str:
    """`tc qdisc show` inside a namespace (for status and tests)."""
    return run("tc", "-n", ns, "qdisc", "show", check=False).stdout
