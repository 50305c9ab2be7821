"""Random DAGs whose operators check the progress guarantees as they run (shared by the
in-process and the multi-process property tests).

Every operator forwards what it receives (at once, at the notification, or delayed to a later
epoch with a retained capability), asks for a notification at every epoch it sees, and records
what had arrived when each notification fired; `expected` computes what must have arrived.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from streamflow import Operator
from streamflow.dataflow.flow import Dataflow
from streamflow.dataflow.source import IterableSource

KINDS = ("pass", "hold", "delay")


@dataclass
class DagSpec:
    """Sources emit (epoch, batch) items; op i reads `inputs[i]` (node names) and acts as `kinds[i]`."""

    sources: dict[str, list[tuple[int, list[Any]]]]
    inputs: list[list[str]]
    kinds: list[str]
    delays: list[int]

    def op_name(self, i: int) -> str:
        return f"op{i}"


@dataclass
class Log:
    """What one operator instance saw."""

    received: list[Counter] = field(default_factory=list)  # per port: (record, epoch) -> n
    notified: Counter = field(default_factory=Counter)     # epoch -> times
    at_notify: dict[int, list[Counter]] = field(default_factory=dict)
    late: list[tuple[int, int]] = field(default_factory=list)  # (epoch, notified epoch) violations


class Checker(Operator):
    """Forwards records per its kind and logs arrivals and notifications."""

    def __init__(self, n_inputs: int, kind: str, delay: int, log: Log) -> None:
        self.n_inputs = n_inputs
        self.kind = kind
        self.delay = delay
        self.log = log
        self.log.received = [Counter() for _ in range(n_inputs)]
        self.buffer: dict[int, list[Any]] = {}
        self.delayed: dict[int, list[tuple[Any, list[Any]]]] = {}
        self.max_notified = -1

    def on_input(self, port: int, epoch: int, batch: Any, output: Any) -> None:
        if epoch <= self.max_notified:
            self.log.late.append((epoch, self.max_notified))
        self.log.received[port].update((r, epoch) for r in batch)
        self.ctx.notify_at(epoch)
        if self.kind == "pass":
            output.give(list(batch))
        elif self.kind == "hold":
            self.buffer.setdefault(epoch, []).extend(batch)
        else:
            cap = self.ctx.retain()
            cap.downgrade(epoch + self.delay)
            self.delayed.setdefault(epoch, []).append((cap, list(batch)))

    def on_notify(self, epoch: int, output: Any) -> None:
        self.max_notified = max(self.max_notified, epoch)
        self.log.notified[epoch] += 1
        self.log.at_notify[epoch] = [Counter(c) for c in self.log.received]
        if epoch in self.buffer:
            output.give(self.buffer.pop(epoch), epoch)
        for cap, batch in self.delayed.pop(epoch, []):
            output.give(batch, cap.epoch)
            cap.drop()


def random_spec(rng: random.Random, max_sources: int = 2, max_ops: int = 5) -> DagSpec:
    sources: dict[str, list[tuple[int, list[Any]]]] = {}
    for s in range(rng.randint(1, max_sources)):
        epoch, items, seq = 0, [], 0
        for _ in range(rng.randint(0, 6)):
            epoch += rng.choice((0, 0, 1, 1, 2, 3))
            size = rng.choice((0, 1, 2, 5))
            items.append((epoch, [(f"s{s}", seq + j) for j in range(size)]))
            seq += size
        sources[f"s{s}"] = items
    nodes = list(sources)
    inputs, kinds, delays = [], [], []
    for i in range(rng.randint(1, max_ops)):
        inputs.append(rng.sample(nodes, rng.randint(1, min(2, len(nodes)))))
        kinds.append(rng.choice(KINDS))
        delays.append(rng.randint(1, 3))
        nodes.append(f"op{i}")
    return DagSpec(sources, inputs, kinds, delays)


def build(spec: DagSpec, flow: Dataflow | None = None) -> tuple[Dataflow, dict[str, Log]]:
    flow = flow or Dataflow("dag")
    logs: dict[str, Log] = {}
    for name, items in spec.sources.items():
        flow.add(name, "source", lambda items=items: IterableSource(items))
    from streamflow.dataflow.flow import Stream
    for i, (ins, kind, delay) in enumerate(zip(spec.inputs, spec.kinds, spec.delays)):
        log = logs[spec.op_name(i)] = Log()
        flow.add(spec.op_name(i), kind,
                 lambda n=len(ins), k=kind, d=delay, lg=log: Checker(n, k, d, lg),
                 [Stream(flow, up) for up in ins])
    return flow, logs


def expected(spec: DagSpec, copies: dict[tuple[int, int], int] | None = None) -> dict[str, list[Counter]]:
    """Per operator and input port: the (record, epoch) multiset that must arrive (summed over
    instances; `copies[(op, port)]` > 1 where a broadcast edge feeds every instance)."""
    out: dict[str, Counter] = {}
    for name, items in spec.sources.items():
        out[name] = Counter((r, e) for e, batch in items for r in batch)
    result: dict[str, list[Counter]] = {}
    for i, (ins, kind, delay) in enumerate(zip(spec.inputs, spec.kinds, spec.delays)):
        ports = []
        for port, up in enumerate(ins):
            n = (copies or {}).get((i, port), 1)
            ports.append(Counter({k: v * n for k, v in out[up].items()}))
        result[spec.op_name(i)] = ports
        merged: Counter = Counter()
        for port in ports:
            for (r, e), n in port.items():
                merged[(r, e + delay if kind == "delay" else e)] += n
        out[spec.op_name(i)] = merged
    return result


def check(spec: DagSpec, logs: dict[str, Log]) -> None:
    """Exactly-once delivery, no early or late notification, none missing, none twice."""
    want = expected(spec)
    for name, log in logs.items():
        assert log.received == want[name], f"{name}: records delivered differ from the reference"
        assert not log.late, f"{name}: records arrived after their epoch was notified: {log.late}"
        epochs_seen = {e for port in want[name] for (_r, e) in port}
        assert set(log.notified) == epochs_seen, f"{name}: notified {sorted(log.notified)}, saw {sorted(epochs_seen)}"
        assert all(n == 1 for n in log.notified.values()), f"{name}: a notification fired twice"
        for epoch, seen in log.at_notify.items():
            for port, (got, need) in enumerate(zip(seen, want[name])):
                need_by = Counter({k: n for k, n in need.items() if k[1] <= epoch})
                got_by = Counter({k: n for k, n in got.items() if k[1] <= epoch})
                assert got_by == need_by, f"{name}: notification {epoch} fired before input {port} was complete"


# --- the same checks across worker processes ------------------------------------------------

class SpecSource(IterableSource):
    """A source replaying (epoch, records) items given in a plan (records arrive as lists)."""

    def __init__(self, items: list) -> None:
        super().__init__([(e, [tuple(r) for r in batch]) for e, batch in items])


class LoggingChecker(Checker):
    """A Checker that writes what it saw to `log_dir/<name>.<worker>.json` when it closes."""

    def __init__(self, n_inputs: int, kind: str, delay: int, log_dir: str, name: str) -> None:
        super().__init__(n_inputs, kind, delay, Log())
        self.log_dir, self.name = log_dir, name
        self.order: list[int] = []

    def on_notify(self, epoch: int, output: Any) -> None:
        self.order.append(epoch)
        super().on_notify(epoch, output)

    def on_close(self) -> None:
        import json
        from pathlib import Path
        doc = {"received": [[[list(r), e, n] for (r, e), n in c.items()] for c in self.log.received],
               "order": self.order, "late": self.log.late}
        Path(self.log_dir, f"{self.name}.{self.ctx.worker_name}.json").write_text(json.dumps(doc))


def to_plan(spec: DagSpec, workers: list[str], rng: random.Random, log_dir: str) -> tuple[dict, dict]:
    """A plan running `spec` over `workers` with random placements and partitionings, and the
    broadcast copies the reference must count."""
    def place(k: int) -> list[dict]:
        return [{"worker": w, "share": rng.choice((1, 2, 3))} for w in rng.sample(workers, k)]
    sources = [{"name": name, "kind": "python", "placement": place(1),
                "params": {"class": "tests.runtime.dagcheck:SpecSource", "args": {"items": items}}}
               for name, items in spec.sources.items()]
    placed = {s["name"]: s["placement"] for s in sources}
    operators, copies = [], {}
    for i, (ins, kind, delay) in enumerate(zip(spec.inputs, spec.kinds, spec.delays)):
        name = spec.op_name(i)
        placement = place(rng.choice((1, 1, 2, 3)))
        inputs = []
        for port, up in enumerate(ins):
            choices = ["weighted", "hash", "broadcast"]
            ups = [p["worker"] for p in placed[up]]
            if len(placement) == 1 or set(ups) <= {p["worker"] for p in placement}:
                choices.append("forward")
            partition = rng.choice(choices)
            inp = {"from": up, "partition": partition}
            if partition == "hash":
                inp["key"] = 1  # the record's sequence number
            if partition == "broadcast":
                copies[(i, port)] = len(placement)
            inputs.append(inp)
        operators.append({"name": name, "kind": "python", "inputs": inputs, "placement": placement,
                          "params": {"class": "tests.runtime.dagcheck:LoggingChecker",
                                     "args": {"n_inputs": len(ins), "kind": kind, "delay": delay,
                                              "log_dir": log_dir, "name": name}}})
        placed[name] = placement
    plan = {"version": 1, "name": "dag", "epoch": {"unit": "frame", "size": 1},
            "workers": [{"name": w, "tier": "edge"} for w in workers],
            "sources": sources, "operators": operators}
    return plan, copies


def check_logs(spec: DagSpec, copies: dict, log_dir: str) -> None:
    """The distributed run's logs against the reference: same records (summed over instances),
    nothing after its epoch was notified, every instance notified once per epoch it saw, in order."""
    import json
    from pathlib import Path
    want = expected(spec, copies)
    for i in range(len(spec.inputs)):
        name = spec.op_name(i)
        total = [Counter() for _ in spec.inputs[i]]
        for path in Path(log_dir).glob(f"{name}.*.json"):
            doc = json.loads(path.read_text())
            assert not doc["late"], f"{path.name}: records after their epoch was notified: {doc['late']}"
            seen = set()
            for port, rows in enumerate(doc["received"]):
                for r, e, n in rows:
                    total[port][(tuple(r), e)] += n
                    seen.add(e)
            assert doc["order"] == sorted(seen), f"{path.name}: notified {doc['order']}, saw {sorted(seen)}"
        assert total == want[name], f"{name}: records delivered across processes differ from the reference"
