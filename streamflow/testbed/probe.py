"""Measure the testbed as a run sees it: a link's round trip and TCP throughput between two hosts
(each end inside its host's namespace, over the data plane), and how long a CPU-bound loop takes
inside a cgroup (what a quota does to compute).

    python -m streamflow.testbed.probe serve ADDRESS PORT      # in the receiving namespace
    python -m streamflow.testbed.probe send ADDRESS PORT SECONDS

Round trip: median of 20 one-byte exchanges with Nagle off. Throughput: bytes sent in SECONDS
divided by the time until the receiver acknowledged the last byte, so data still queued in the
sender's buffers is not counted as delivered.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from typing import Any

PINGS = 20
CHUNK = 1 << 16
SERVER_TIMEOUT_S = 60.0


def serve(address: str, port: int) -> None:
    """Answer one ping connection and one bulk connection, then exit (or give up after a minute)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(SERVER_TIMEOUT_S)
        s.bind((address, port))
        s.listen(2)
        print("ready", flush=True)
        for _ in range(2):
            conn, _ = s.accept()
            with conn:
                conn.settimeout(SERVER_TIMEOUT_S)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if conn.recv(1) == b"p":
                    while data := conn.recv(1):
                        conn.sendall(data)
                else:
                    while conn.recv(CHUNK):
                        pass
                    conn.sendall(b"k")


def send(address: str, port: int, seconds: float) -> dict[str, float]:
    with socket.create_connection((address, port), timeout=SERVER_TIMEOUT_S) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sendall(b"p")
        rtts = []
        for _ in range(PINGS):
            t = time.perf_counter()
            c.sendall(b"x")
            c.recv(1)
            rtts.append((time.perf_counter() - t) * 1000)
    rtts.sort()
    buf = b"\0" * CHUNK
    with socket.create_connection((address, port), timeout=SERVER_TIMEOUT_S) as c:
        c.sendall(b"b")
        sent = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            c.sendall(buf)
            sent += len(buf)
        c.shutdown(socket.SHUT_WR)
        c.recv(1)
        elapsed = time.perf_counter() - start
    return {"rtt_ms": round(rtts[len(rtts) // 2], 3), "bytes": sent, "seconds": round(elapsed, 3),
            "mbytes_per_s": round(sent / elapsed / 1e6, 3), "mbps": round(sent * 8 / elapsed / 1e6, 3)}


def measure_link(state: Any, sender: str, receiver: str, seconds: float = 2.0, port: int = 5299) -> dict[str, float]:
    """Round trip and throughput from host `sender` to host `receiver` of a testbed that is up."""
    from streamflow.cluster.local import worker_env
    hosts = state.doc["hosts"]
    dst, src = hosts[receiver], hosts[sender]
    me = [sys.executable, "-m", "streamflow.testbed.probe"]
    server = subprocess.Popen(["ip", "netns", "exec", dst["namespace"], *me, "serve", dst["address"], str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=worker_env())
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError(f"probe server in {dst['namespace']} did not start: {server.stderr.read()[-300:]}")
        out = subprocess.run(["ip", "netns", "exec", src["namespace"], *me, "send", dst["address"], str(port),
                              str(seconds)], capture_output=True, text=True, env=worker_env(),
                             timeout=seconds + SERVER_TIMEOUT_S)
        if out.returncode != 0:
            raise RuntimeError(f"probe from {sender} to {receiver} failed: {out.stderr.strip()[-300:]}")
        return json.loads(out.stdout)
    finally:
        server.kill()
        server.wait()


def cpu_loop(dirs: list[str] | None = None, iterations: int = 3_000_000) -> tuple[float, float]:
    """(wall, CPU) seconds of a pure-Python loop, in a fresh process inside the cgroup `dirs` (None:
    here). CPU / wall is the share of a core the loop got: a quota caps it, a busy machine only lowers it."""
    from streamflow.testbed import cgroups
    code = ("import time\nt=time.perf_counter()\nc=time.process_time()\nx=0\nfor i in range(%d): x+=i\n"
            "print(time.perf_counter()-t, time.process_time()-c)" % iterations)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         preexec_fn=(lambda: cgroups.join(dirs)) if dirs else None)
    wall, cpu = out.stdout.split()
    return float(wall), float(cpu)


def main(argv: list[str]) -> int:
    if argv[0] == "serve":
        serve(argv[1], int(argv[2]))
    elif argv[0] == "send":
        print(json.dumps(send(argv[1], int(argv[2]), float(argv[3]))))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
