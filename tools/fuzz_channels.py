"""Fuzz every socket kind: random and mutated messages at a worker's data socket, the
coordinator's control socket (control, heartbeat and progress-copy messages) and a worker's
control inbox, in this process at each handler and over real sockets during a real run.

In process, each message goes to the handler the socket's reader calls (ZmqTransport.receive,
Coordinator.accept, the worker's control schema), from an identity the handler knows, so the
checks and decoders behind the identity check see every message; no message may raise, take
longer than a second, or change state unless it is well formed. Over the network, the same kinds
of messages are sent from many identities at the coordinator and at every worker while a
three-worker run goes on, and the run must complete with the output of an undisturbed run.
Usage: python tools/fuzz_channels.py [--count 10000] [--seed 0] [--skip-live]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgpack  # noqa: E402
import zmq  # noqa: E402
from tqdm import tqdm  # noqa: E402

from streamflow.cluster.coordinator import Coordinator, Options  # noqa: E402
from streamflow.cluster.localcluster import LocalCluster  # noqa: E402
from streamflow.communication import validate  # noqa: E402
from streamflow.communication.transport import CREDIT, DATA, PROGRESS, ZmqTransport  # noqa: E402
from streamflow.dataflow.worker import Worker  # noqa: E402
from streamflow.plan import build_graph, parse_plan  # noqa: E402

SLOW_S = 1.0


def plan_doc(count: int = 3000, folder: str = ".") -> dict[str, Any]:
    """Three workers: a generator on w0, a hash exchange to an aggregate on w1 and w2, a sink."""
    return {"version": 1, "name": "fuzzed", "epoch": {"unit": "frame", "size": 100},
            "workers": [{"name": "w0", "tier": "edge"}, {"name": "w1", "tier": "edge"}, {"name": "w2", "tier": "edge"}],
            "sources": [{"name": "g", "kind": "generator", "worker": "w0", "count": count, "rate_per_s": 1500,
                         "batch_size": 50, "seed": 7, "fields": {"lane": {"int": [0, 4]}, "speed": {"normal": [60, 30]}}}],
            "operators": [{"name": "fast", "kind": "filter", "inputs": [{"from": "g"}], "placement": [{"worker": "w0"}],
                           "params": {"where": {"expr": "r['speed'] > 50"}}},
                          {"name": "per-lane", "kind": "aggregate", "inputs": [{"from": "fast", "partition": "hash", "key": "lane"}],
                           "placement": [{"worker": "w1"}, {"worker": "w2"}],
                           "params": {"key": "lane", "agg": "count"}}],
            "sinks": [{"name": "out", "from": "per-lane", "path": f"{folder}/out.jsonl", "worker": "w1"}]}


# messages ------------------------------------------------------------------------------------------
def random_value(rng: random.Random, depth: int = 0) -> Any:
    """Any msgpack value, edge cases often: huge and negative ints, NaN, deep nesting, extension types."""
    pick = rng.randrange(12 if depth < 4 else 8)
    if pick == 0:
        return rng.choice([0, 1, -1, 2**31, 2**63 - 1, -2**63, 2**64 - 1, rng.randrange(-10**6, 10**6)])
    if pick == 1:
        return rng.choice([0.0, -0.0, float("nan"), float("inf"), rng.random() * 1e300])
    if pick == 2:
        return "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(12)))
    if pick == 3:
        return rng.randbytes(rng.randrange(40))
    if pick == 4:
        return rng.choice([None, True, False])
    if pick == 5:
        return msgpack.ExtType(rng.randrange(128), rng.randbytes(rng.randrange(24)))
    if pick == 6:
        return rng.choice(["<f8", "|O", "V8", "<i8", "S0", "x", "uint64"])
    if pick == 7:
        return rng.choice(["register", "stats", "run", "plan", "progress", "tests.x:y", "os:system"])
    if pick in (8, 9):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(6))]
    return {random_value(rng, 4) if rng.random() < 0.3 else rng.choice(["run", "tier", "stats", "plan", "peers"]):
            random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def packb(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def mutate(rng: random.Random, frames: list[bytes]) -> list[bytes]:
    """Flip, cut, grow, drop, duplicate or replace frames of a well-formed message."""
    frames = list(frames)
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(len(frames)) if frames else 0
        op = rng.randrange(7)
        if op == 0 and frames and frames[i]:
            b = bytearray(frames[i])
            for _ in range(rng.randrange(1, 4)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            frames[i] = bytes(b)
        elif op == 1 and frames:
            frames[i] = frames[i][:rng.randrange(len(frames[i]) + 1)]
        elif op == 2 and frames:
            frames[i] = frames[i] + rng.randbytes(rng.randrange(1, 64))
        elif op == 3 and len(frames) > 1:
            del frames[i]
        elif op == 4 and frames:
            frames.insert(i, frames[i])
        elif op == 5:
            frames.insert(i, packb(random_value(rng)))
        elif frames:
            frames[i] = rng.randbytes(rng.randrange(64))
    return frames


def data_messages(rng: random.Random, edges: int, locations: int) -> list[bytes]:
    """A well-formed data, progress or credit message (without the identity frame)."""
    kind = rng.randrange(5)
    if kind == 0:
        batch = [{"lane": rng.randrange(4), "speed": rng.random() * 150} for _ in range(rng.randrange(1, 5))]
        return [packb((DATA, rng.randrange(edges), rng.randrange(100), 1, ())), packb(batch)]
    if kind == 1:
        header = (DATA, rng.randrange(edges), rng.randrange(100), 0, (rng.choice(["<f8", "<i8", "|u1"]), [2]))
        return [packb(header), rng.randbytes(rng.choice([16, 2, 8]))]
    if kind == 2:
        flat = [x for _ in range(rng.randrange(1, 4)) for x in (rng.randrange(locations), rng.randrange(100),
                                                                  rng.choice([1, -1, 2]))]
        return [packb((PROGRESS, flat))]
    if kind == 3:
        return [packb((CREDIT, rng.randrange(edges), rng.randrange(1 << 20)))]
    return [packb(tuple(random_value(rng) for _ in range(rng.randrange(1, 6))))]


def control_message(rng: random.Random, schema: dict[str, Any]) -> list[bytes]:
    """A control message of a random kind with plausible and implausible fields."""
    kind = rng.choice(list(schema))
    required, optional = schema[kind]
    body = {k: _sample(rng, t) for k, t in {**required, **optional}.items() if rng.random() < 0.9}
    return [kind.encode(), packb(body)]


def _sample(rng: random.Random, types: Any) -> Any:
    types = types if isinstance(types, tuple) else (types,)
    t = rng.choice(types)
    if rng.random() < 0.2:
        return random_value(rng)
    return {str: "x" * rng.randrange(5), int: rng.randrange(-5, 100), float: rng.random(), bool: True,
            dict: {"a": random_value(rng)}, list: [random_value(rng)], bytes: rng.randbytes(8),
            type(None): None}.get(t, None)


def fuzz_messages(rng: random.Random, count: int, make: Any) -> list[list[bytes]]:
    """`count` messages: a third random frames, the rest `make()` mutated or (one in five) intact."""
    out = []
    for i in range(count):
        if i % 3 == 0:
            out.append([rng.randbytes(rng.randrange(80)) for _ in range(rng.randrange(1, 5))])
        else:
            good = make()
            out.append(good if rng.random() < 0.2 else mutate(rng, good))
    return out


# in process ---------------------------------------------------------------------------------------
def timed(fn: Any, what: str) -> float:
    t = time.perf_counter()
    fn()
    took = time.perf_counter() - t
    if took > SLOW_S:
        raise AssertionError(f"{what}: one message took {took:.2f} s")
    return took


def fuzz_data_socket(count: int, seed: int) -> dict[str, Any]:
    """ZmqTransport.receive of w1, messages from its peer w0 (known identity)."""
    rng = random.Random(seed)
    plan = parse_plan(plan_doc(), "plan.json")
    graph, placement = build_graph(plan)
    context = zmq.Context()
    transport = ZmqTransport(context, "w1")
    transport.connect({"w0": "tcp://127.0.0.1:9", "w2": "tcp://127.0.0.1:9"})

    async def run() -> dict[str, Any]:
        worker = Worker(graph, "w1", placement, transport)
        transport.attach(worker)
        n_locations = len(worker.tracker.antichains)
        messages = fuzz_messages(rng, count, lambda: data_messages(rng, len(graph.edges), n_locations))
        slowest = 0.0
        for frames in tqdm(messages, desc="data socket", leave=False):
            msg = [zmq.Frame(b"w0"), *(zmq.Frame(f) for f in frames)]
            slowest = max(slowest, timed(lambda: transport.receive(msg), "data socket"))
        return {"messages": count, "dropped": transport.drops.count, "slowest_ms": slowest * 1e3}
    try:
        return asyncio.run(run())
    finally:
        transport.close(0)
        context.term()


def fuzz_coordinator_socket(count: int, seed: int) -> dict[str, Any]:
    """Coordinator.accept: control, heartbeat and progress-copy messages from a member's identity."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        plan = parse_plan(plan_doc(folder=tmp), str(Path(tmp) / "plan.json"))
        graph, placement = build_graph(plan)
        coordinator = Coordinator(plan, graph, placement, Options(listen="tcp://127.0.0.1:0", quiet=True,
                                                                  report=str(Path(tmp) / "r.json")))
        from streamflow.cluster.coordinator import Member
        coordinator.members["w0"] = Member("w0", b"w0", {"tier": "edge"})
        locations = len(coordinator.observer.tracker.antichains)

        def make() -> list[bytes]:
            pick = rng.randrange(3)
            if pick == 0:
                return [b"progress", data_messages(rng, len(graph.edges), locations)[0], coordinator.gen_id.encode()]
            if pick == 1:
                return [b"hb", packb(time.time())]
            return control_message(rng, validate.TO_COORDINATOR)
        messages = fuzz_messages(rng, count, make)
        slowest = 0.0
        for frames in tqdm(messages, desc="coordinator socket", leave=False):
            identity = rng.choice([b"w0", b"w0#hb", b"stranger", rng.randbytes(5)])
            slowest = max(slowest, timed(lambda: coordinator.accept(identity, frames), "coordinator socket"))
        coordinator.context.term()
        return {"messages": count, "dropped": coordinator.drops.count, "slowest_ms": slowest * 1e3,
                "spares_registered": len(coordinator.spares)}


def fuzz_worker_control(count: int, seed: int) -> dict[str, Any]:
    """The worker's control inbox: the schema check, then a deploy's plan through parse_plan."""
    from streamflow.errors import StreamflowError
    rng = random.Random(seed)
    base = plan_doc()
    messages = fuzz_messages(rng, count, lambda: (
        [b"deploy", packb({"run": "r.0", "plan": mutated_plan(rng, base)})]
        if rng.random() < 0.3 else control_message(rng, validate.TO_WORKER)))
    drops = validate.Drops("worker control")
    slowest = 0.0

    def handle(frames: list[bytes]) -> None:
        try:
            kind, body = validate.control(frames, validate.TO_WORKER)
        except Exception as exc:  # noqa: BLE001 - as WorkerDaemon._next
            drops.drop("coordinator", exc)
            return
        if kind == "deploy":
            try:
                build_graph(parse_plan(body["plan"], "plan.json"))
            except StreamflowError:
                pass  # reported to the coordinator as one line ("failed")
            except Exception as exc:  # noqa: BLE001 - the daemon reports these as "failed: TypeName: ..."
                unclear.append(f"{type(exc).__name__}: {exc}")
    unclear: list[str] = []
    for frames in tqdm(messages, desc="worker control", leave=False):
        slowest = max(slowest, timed(lambda: handle(frames), "worker control"))
    return {"messages": count, "dropped": drops.count, "slowest_ms": slowest * 1e3,
            "plan_errors_without_a_field": unclear}


def mutated_plan(rng: random.Random, base: dict[str, Any]) -> dict[str, Any]:
    """The plan with one field replaced by a random value (or a hostile expression or import)."""
    plan = json.loads(json.dumps(base))
    target = rng.choice(plan["operators"] + plan["sources"] + plan["sinks"])
    key = rng.choice(list(target) + ["params"])
    hostile = rng.choice([{"expr": "__import__('os').system('id')"}, {"import": "os:system"},
                          {"expr": "r.__class__.__mro__"}, {"class": "subprocess:Popen"}])
    value = hostile if rng.random() < 0.3 else random_value(rng)
    target[key] = {"where": value, "fn": value, "class": value.get("class") if isinstance(value, dict) else value} \
        if key == "params" else value
    return plan


# live ---------------------------------------------------------------------------------------------
def listening_ports(pids: list[int]) -> list[int]:
    """TCP ports the processes `pids` listen on (their data sockets), from `ss`."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    ports = []
    for line in out.splitlines():
        if any(f"pid={pid}," in line for pid in pids):
            ports.append(int(line.split()[3].rsplit(":", 1)[1]))
    return ports


ZMTP_NULL_GREETING = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" * 32


def raw_tcp(port: int, rng: random.Random, connections: int = 20) -> None:
    """Raw TCP at a socket: random bytes, and a plaintext ZMTP greeting followed by a message."""
    import socket
    for i in range(connections):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                if i % 2:
                    conn.sendall(ZMTP_NULL_GREETING + b"\x04\x19\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER"
                                 + b"\x00\x08progress" + rng.randbytes(64))
                else:
                    conn.sendall(rng.randbytes(rng.randrange(1, 4096)))
        except OSError:
            pass  # the server closed on us: what it should do


def fuzz_live(count: int, seed: int, secure: bool = False) -> dict[str, Any]:
    """A three-worker run under fire: `count` messages at the coordinator and at each worker's data
    socket from 20 identities each; returns the run's output next to an undisturbed run's."""
    from streamflow.dataflow.worker import Worker as LocalWorker
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        reference = Path(tmp) / "ref"
        reference.mkdir()
        LocalWorker(build_graph(parse_plan(plan_doc(folder=str(reference)), str(reference / "plan.json")))[0]).run()
        fuzzed = Path(tmp) / "fuzzed"
        fuzzed.mkdir()
        sent = {"coordinator": 0, "workers": 0, "coordinator_queued": 0, "workers_queued": 0}
        stop = threading.Event()
        with LocalCluster([("w0", "edge"), ("w1", "edge"), ("w2", "edge")], secure=secure) as cluster:
            pids = [p.pid for p in cluster.procs.values()]

            def attack() -> None:
                context = zmq.Context()
                sockets: list[zmq.Socket] = []

                def dealer(address: str, identity: bytes) -> zmq.Socket:
                    s = context.socket(zmq.DEALER)
                    s.setsockopt(zmq.IDENTITY, identity)
                    s.setsockopt(zmq.LINGER, 0)
                    s.setsockopt(zmq.SNDHWM, 0)
                    s.connect(address)
                    sockets.append(s)
                    return s
                at_coordinator = [dealer(cluster.listen, b"f%d" % i + (b"#hb" if i % 4 == 0 else b""))
                                  for i in range(20)]
                ports: list[int] = []
                deadline = time.monotonic() + 20
                while len(ports) < len(pids) and not stop.is_set() and time.monotonic() < deadline:
                    ports = listening_ports(pids)  # each worker binds its data socket as it deploys
                    time.sleep(0.05)
                at_workers = [dealer(f"tcp://127.0.0.1:{p}", rng.choice([b"w0", b"w1", b"w2", b"x"]) + b"%d" % i)
                              for p in ports for i in range(20)]
                coordinator_msgs = fuzz_messages(rng, count, lambda: control_message(rng, validate.TO_COORDINATOR))
                worker_msgs = fuzz_messages(rng, count, lambda: data_messages(rng, 4, 12))
                def send(sock: zmq.Socket, frames: list[bytes], where: str) -> None:
                    sent[where] += 1
                    try:  # a socket whose handshake failed (no key) queues nothing: that is the point
                        sock.send_multipart(frames or [b""], zmq.NOBLOCK)
                        sent[f"{where}_queued"] += 1
                    except zmq.Again:
                        pass
                for i in range(count):
                    send(rng.choice(at_coordinator), coordinator_msgs[i], "coordinator")
                    for p in range(len(ports)):
                        send(at_workers[p * 20 + rng.randrange(20)], worker_msgs[i], "workers")
                for port in [int(cluster.listen.rsplit(":", 1)[1]), *ports]:
                    raw_tcp(port, rng)
                for s in sockets:
                    s.close(0)
                context.term()
            thread = threading.Thread(target=attack, daemon=True)
            thread.start()
            report = cluster.run(plan_doc(folder=str(fuzzed)), quiet=True)
            stop.set()
            thread.join(timeout=60)
        want = sorted((reference / "out.jsonl").read_text().splitlines())
        got = sorted((fuzzed / "out.jsonl").read_text().splitlines()) if (fuzzed / "out.jsonl").exists() else []
        return {"status": report["status"], "error": report.get("error"), "same_output": got == want,
                "output_rows": len(got), "sent": sent, "dropped": report.get("dropped_messages")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="messages per socket kind (default 10,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-live", action="store_true", help="only the in-process handlers")
    args = parser.parse_args()
    logging.getLogger("streamflow.validate").setLevel(logging.ERROR)  # one line per drop would flood
    ok = True
    for name, fn in (("worker data socket", fuzz_data_socket), ("coordinator control socket", fuzz_coordinator_socket),
                     ("worker control inbox", fuzz_worker_control)):
        result = fn(args.count, args.seed)
        print(f"{name}: {result['messages']:,} messages, {result['dropped']:,} dropped, none raised, "
              f"slowest {result['slowest_ms']:.1f} ms")
        for text in sorted(set(result.get("plan_errors_without_a_field", [])))[:10]:
            print(f"  a fuzzed plan failed without naming its field (the worker reports it as is): {text}")
    if not args.skip_live:
        live = fuzz_live(args.count, args.seed)
        ok = live["status"] == "completed" and live["same_output"]
        print(f"live run under fire: {live['sent']['coordinator']:,} messages at the coordinator, "
              f"{live['sent']['workers']:,} at the workers' data sockets; run {live['status']}, "
              f"output {'identical to' if live['same_output'] else 'DIFFERENT from'} the undisturbed run "
              f"({live['output_rows']} rows); dropped: {live['dropped']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
