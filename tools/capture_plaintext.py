"""Capture a run's traffic on loopback and look for plaintext: JPEG start-of-image markers, the
msgpack headers of data and control messages, and a canary string the records carry.

The capture is a raw AF_PACKET socket on `lo` (root), every packet of the run, both directions.
A run with keys (CURVE) must show none of the patterns; the same run with --insecure shows them
all, which is the proof that the capture sees the traffic. Usage (root):
python tools/capture_plaintext.py [--frames 40]
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgpack  # noqa: E402

from tools.bench_ops import FrameSource  # noqa: E402

JPEG_SOI = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"  # start of image + the JFIF APP0 segment
CANARY = "plaintext-canary-7f3a"
ETH_P_ALL = 0x0003


class JpegSource(FrameSource):
    """`count` batches of one record, a JPEG-framed byte string and the canary, one per epoch."""

    def __init__(self, count: int = 40, size: int = 20_000) -> None:
        self.count = count
        self.frame = [{"camera": CANARY, "jpeg": JPEG_SOI + os.urandom(size) + b"\xff\xd9"}]
        self.sent = 0


def plan_doc(frames: int, folder: str) -> dict[str, Any]:
    """The JPEG source on w0, a sink writing the sequence numbers on w1."""
    return {"version": 1, "name": "capture",
            "workers": [{"name": "w0", "tier": "edge"}, {"name": "w1", "tier": "edge"}],
            "sources": [{"name": "cam", "kind": "python", "worker": "w0",
                         "params": {"class": "tools.capture_plaintext:JpegSource", "args": {"count": frames}}}],
            "operators": [{"name": "seq", "kind": "map", "inputs": [{"from": "cam"}], "placement": [{"worker": "w1"}],
                           "params": {"fn": {"expr": "{'camera': len(r['camera']), 'size': len(r['jpeg'])}"}}}],
            "sinks": [{"name": "out", "from": "seq", "path": f"{folder}/out.jsonl", "worker": "w1"}]}


class Capture:
    """Every packet on the loopback interface while open (a raw AF_PACKET socket; needs root)."""

    def __init__(self, interface: str = "lo") -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
        self.sock.bind((interface, 0))
        self.sock.settimeout(0.2)
        self.data = bytearray()
        self.packets = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                packet = self.sock.recv(1 << 17)
            except TimeoutError:
                continue
            self.data += packet
            self.packets += 1

    def __enter__(self) -> "Capture":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def patterns(frames: int) -> dict[str, list[bytes]]:
    """What plaintext traffic of the capture run holds, by name."""
    data_headers = [msgpack.packb((0, edge, epoch, 1, ())) for edge in range(2) for epoch in range(frames)]
    return {
        "JPEG start of image": [JPEG_SOI],
        "record canary": [CANARY.encode()],
        "msgpack data headers": data_headers,
        "msgpack control bodies": [msgpack.packb("register"), b"\x81\xa3run", b"register", b"deployed"],
    }


def capture_run(frames: int, secure: bool) -> dict[str, Any]:
    """Run the capture plan on two workers (CURVE or plaintext) while capturing loopback."""
    from streamflow.cluster.localcluster import LocalCluster
    with tempfile.TemporaryDirectory() as tmp:
        with Capture() as capture, LocalCluster([("w0", "edge"), ("w1", "edge")], secure=secure) as cluster:
            report = cluster.run(plan_doc(frames, tmp))
        rows = (Path(tmp) / "out.jsonl").read_text().splitlines() if (Path(tmp) / "out.jsonl").exists() else []
    found = {name: sum(bytes(capture.data).count(p) for p in pats) for name, pats in patterns(frames).items()}
    return {"status": report["status"], "rows": len(rows), "bytes": len(capture.data), "packets": capture.packets,
            "found": found}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("error: capturing loopback needs root (a raw AF_PACKET socket)", file=sys.stderr)
        return 2
    ok = True
    for secure in (True, False):
        r = capture_run(args.frames, secure)
        what = "CURVE (keys)" if secure else "plaintext (--insecure)"
        hits = ", ".join(f"{name}: {n}" for name, n in r["found"].items())
        print(f"{what}: run {r['status']}, {r['rows']} rows; captured {r['packets']:,} packets, "
              f"{r['bytes'] / 1e6:.1f} MB; occurrences of {hits}")
        ok = ok and r["status"] == "completed" and (not any(r["found"].values()) if secure else all(r["found"].values()))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
