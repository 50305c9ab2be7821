"""The delay line: one process that joins the tier routers' point-to-point devices and holds
every packet for half the link's round trip before passing it on (netem's job, in user space).

For each tier pair it opens two TUN devices in the root namespace, moves one into each router
namespace (an open TUN keeps working across the move), and from then on copies packets read
from one to the other after `delay_ms`. The devices belong to this process: when it exits, for
any reason, the kernel deletes them and the qdiscs on them, so a link never outlives it. Rate is
not limited here but by the tbf qdisc on each device's egress (see shaping.py), so a packet
queues at the sender's router, crosses the delay line, then arrives at the other router.

    python -m streamflow.testbed.delayline CONFIG.json
    CONFIG: {"ready": PATH, "links": [{"a": DEV, "ns_a": NS, "b": DEV, "ns_b": NS, "delay_ms": X}]}

One thread and an epoll loop; measured here, it forwards ~50 MB/s of TCP on one core, far above
the links it emulates.
"""
from __future__ import annotations

import collections
import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name: str) -> int:
    """A TUN device (raw IP packets, no extra header), non-blocking."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def forward(pairs: dict[int, tuple[int, float]], stop: list[bool]) -> None:
    """Copy packets fd -> (peer fd, delay) until `stop[0]`; FIFO per direction (delay is constant)."""
    queues: dict[int, collections.deque[tuple[float, bytes]]] = {fd: collections.deque() for fd in pairs}
    poller = select.epoll()
    for fd in pairs:
        poller.register(fd, select.EPOLLIN)
    while not stop[0]:
        due = min((q[0][0] for q in queues.values() if q), default=None)
        timeout = -1.0 if due is None else max(0.0, due - time.monotonic())
        try:
            events = poller.poll(timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd, _mask in events:
            peer, delay = pairs[fd]
            queue = queues[peer]
            while True:
                try:
                    packet = os.read(fd, 65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                queue.append((now + delay, packet))
        now = time.monotonic()
        for fd, queue in queues.items():
            while queue and queue[0][0] <= now:
                try:
                    os.write(fd, queue.popleft()[1])
                except OSError:  # a full device queue drops the packet, as a router would
                    pass


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[0]).read_text())
    stop = [False]

    def on_signal(*_: object) -> None:
        stop[0] = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        os.nice(-5)  # the network should not stall behind the hosts it connects
    except OSError:
        pass
    pairs: dict[int, tuple[int, float]] = {}
    for link in config["links"]:
        fa, fb = open_tun(link["a"]), open_tun(link["b"])
        for dev, ns in ((link["a"], link["ns_a"]), (link["b"], link["ns_b"])):
            subprocess.run(["ip", "link", "set", dev, "netns", ns], check=True)
        delay = float(link["delay_ms"]) / 1000.0
        pairs[fa] = (fb, delay)
        pairs[fb] = (fa, delay)
    Path(config["ready"]).write_text(str(os.getpid()))
    print(f"delay line up: {len(config['links'])} links", file=sys.stderr, flush=True)
    forward(pairs, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
