"""The record type system: the codec round-trips every carried type with its type and value, in
process and over a real socket to another process; refusals name the operator, the field and the
type, alike in one process and across processes; the key hash is the same in every process."""
from __future__ import annotations

import collections
import datetime as dt
import enum
import json
import os
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from streamflow.communication.codec import decode, encode, pack_value, unpack_value
from streamflow.records import RecordTypeError, check_batch, key_hash
from streamflow.records.keys import PartitionKeyError, check_keys

from tests.runtime.recordvalues import Box, Plate, Reading, hashables, records, strict

REPO = Path(__file__).resolve().parents[2]

ECHO = """
import sys, msgpack, zmq
from streamflow.communication.codec import decode, encode
sock = zmq.Context().socket(zmq.PAIR)
sock.connect(sys.argv[1])
while True:
    frames = sock.recv_multipart(copy=False)
    kind, meta = msgpack.unpackb(frames[0].bytes)
    if kind < 0:
        break
    batch = decode(kind, meta, [f.buffer for f in frames[1:]])
    kind, meta, out = encode(batch)  # decoded in this process, encoded again
    sock.send_multipart([msgpack.packb([kind, meta]), *out])
"""


def roundtrip(batch: list) -> list:
    kind, meta, frames = encode(batch)
    return decode(kind, meta, [bytes(f) for f in frames])


@settings(max_examples=400, deadline=None)
@given(st.lists(records, max_size=4))
def test_codec_roundtrips_every_carried_type_in_process(batch) -> None:
    check_batch(batch)  # accepted by the type system ...
    assert strict(roundtrip(batch)) == strict(batch)  # ... and carried with type and value


@pytest.fixture(scope="module")
def echo():
    """Another Python process that decodes each batch and encodes it again, over TCP."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PAIR)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    proc = subprocess.Popen([sys.executable, "-c", ECHO, f"tcp://127.0.0.1:{port}"],
                            env=dict(os.environ, PYTHONPATH=str(REPO), PYTHONHASHSEED="12345"))
    sock.setsockopt(zmq.RCVTIMEO, 20_000)

    def send(batch: list) -> list:
        kind, meta, frames = encode(batch)
        sock.send_multipart([msgpack.packb([kind, meta]), *frames])
        reply = sock.recv_multipart()
        kind, meta = msgpack.unpackb(reply[0])
        return decode(kind, meta, reply[1:])
    yield send
    sock.send_multipart([msgpack.packb([-1, []])])
    proc.wait(timeout=10)
    sock.close(linger=0)
    ctx.term()


@settings(max_examples=150, deadline=None)
@given(st.lists(records, max_size=4))
def test_codec_roundtrips_over_a_socket_through_another_process(echo, batch) -> None:
    assert strict(echo(batch)) == strict(batch)


def test_examples_of_each_type_keep_their_type(echo) -> None:
    values = [{1, 2}, frozenset({"a"}), Reading("s1", 2.5), Box(1.0, 2.0), Plate("CA", 7), 2**70, -2**90,
              float("nan"), -0.0, b"x", np.float32(1.5), np.int16(-3), (None, (1, [2])),
              dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), np.zeros((2, 3), np.uint8), "\ud800"]
    back = echo(values)
    assert [type(v) for v in back] == [type(v) for v in values]
    assert strict(back) == strict(values)
    assert back[2].value == 2.5 and back[3].label == "car" and back[5] == 2**70


def test_state_values_pack_to_bytes_and_back() -> None:
    state = {"tracks": {("cam1", 3): np.arange(6, dtype=np.float32)}, "seen": {1, 2}, "next": 2**65}
    back = unpack_value(pack_value(state))
    assert strict(back) == strict(state)
    back["tracks"][("cam1", 3)][0] = 9  # arrays from a snapshot are writable copies


class Colour(enum.IntEnum):
    RED = 1


def local_namedtuple():
    return namedtuple("Local", "a")(1)


class OddZone(dt.tzinfo):
    def utcoffset(self, d):  # noqa: ANN001
        return dt.timedelta(hours=1)


@pytest.mark.parametrize("batch, message", [
    ([{"when": collections.OrderedDict()}], "record 0.when: OrderedDict (a subclass of dict) is not carried; convert it to dict"),
    ([1, 2, Colour.RED], "record 2: Colour (a subclass of int) is not carried; convert it to int"),
    ([{"a": [1, object()]}], "record 0.a[1]: object is not a record type"),
    ([local_namedtuple()], "record 0: class runtime.test_records:Local does not import here"),
    ([(1, dt.datetime(2026, 1, 1, tzinfo=OddZone()))], "record 0[1]: datetime with tzinfo OddZone is not carried"),
    ([np.array([object()])], "record 0: numpy arrays of Python objects are not carried"),
    ([{"f": len}], "record 0.f: builtin_function_or_method is not a record type"),
])
def test_refusals_name_the_field_and_type_alike_in_check_and_codec(batch, message) -> None:
    with pytest.raises(RecordTypeError) as checked:
        check_batch(batch)
    with pytest.raises(RecordTypeError) as encoded:
        encode(batch)
    assert message in str(checked.value)
    assert str(encoded.value) == str(checked.value)


def test_bytearray_is_refused_by_the_check_that_guards_every_output() -> None:
    """msgpack packs bytearray as bytes without asking, so the type system refuses it; every
    batch an operator emits is checked before it goes anywhere."""
    with pytest.raises(RecordTypeError, match="record 1: bytearray is not carried"):
        check_batch([b"ok", bytearray(b"no")])


REFUSING_PLAN = {
    "version": 1, "name": "refuse", "epoch": {"unit": "frame", "size": 1},
    "workers": [{"name": "w0", "tier": "edge"}, {"name": "w1", "tier": "edge"}, {"name": "w2", "tier": "edge"}],
    "sources": [{"name": "g", "kind": "generator", "worker": "w0", "count": 20, "rate_per_s": 1000,
                 "batch_size": 5, "speed": 0, "fields": {"lane": {"int": [0, 3]}}}],
    "operators": [{"name": "stamp", "kind": "map", "inputs": [{"from": "g"}], "placement": [{"worker": "w1"}],
                   "params": {"fn": {"import": "tests.runtime.test_records:stamp_ordered"}}}],
    "sinks": [{"name": "out", "from": "stamp", "path": "out.jsonl", "worker": "w2"}],
}


def stamp_ordered(record: dict) -> dict:
    """The map REFUSING_PLAN imports: adds a value the type system does not carry."""
    return {**record, "when": collections.OrderedDict(a=1)}


def run_cli(plan: dict, folder: Path, *args: str) -> subprocess.CompletedProcess:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plan.json").write_text(json.dumps(plan))
    return subprocess.run([sys.executable, "-m", "streamflow.cli", "run", str(folder / "plan.json"), *args,
                           "--allow-import", "tests"],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(REPO)))


def test_a_refused_record_fails_alike_in_one_process_and_across_processes(tmp_path) -> None:
    core = ("operator 'stamp' emitted at epoch 0 a value that cannot cross between workers: "
            "record 0.when: OrderedDict (a subclass of dict) is not carried; convert it to dict")
    one = run_cli(REFUSING_PLAN, tmp_path / "one", "--inprocess")
    many = run_cli(REFUSING_PLAN, tmp_path / "many", "--local", "--quiet", "--speed", "0")
    for result in (one, many):
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1 and core in result.stderr, result.stderr
    assert "worker 'w1' failed" in many.stderr


def test_key_hash_is_the_same_in_every_process_and_run() -> None:
    keys = ("[None, True, 3, 2**70, -0.0, 0.0, float('nan'), 1.5, 'cam-1', b'raw', (None, 'a'), "
            "frozenset({'x', 'y', 'z'}), (1, (None, frozenset({b'q'}))), __import__('numpy').int64(7), "
            "__import__('numpy').float32(0.5), __import__('decimal').Decimal('2.5'), complex(1, 2), "
            "__import__('datetime').date(2026, 12, 2), __import__('uuid').UUID(int=5)]")
    code = f"from streamflow.records import key_hash; print([key_hash(k) for k in {keys}])"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env=dict(os.environ, PYTHONPATH=str(REPO), PYTHONHASHSEED=seed)).stdout
            for seed in ("0", "1", "4242", "random")}
    assert len(outs) == 1, outs


@settings(max_examples=300, deadline=None)
@given(hashables, hashables)
def test_equal_keys_hash_alike(a, b) -> None:
    assert key_hash(a) == key_hash(a)
    if a == b:
        assert key_hash(a) == key_hash(b)


@pytest.mark.parametrize("equal", [
    (1, 1.0, True, np.int64(1), np.float32(1.0), np.bool_(True)),
    (0.0, -0.0, 0, False),
    (float("nan"), float("nan"), np.float64("nan")),
    ((1, "a"), Reading(1, "a")),
    (frozenset({1, 2}), frozenset({2.0, 1})),
    (dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc), dt.datetime(2026, 1, 1, 14, tzinfo=dt.timezone(dt.timedelta(hours=2)))),
])
def test_keys_equal_across_types_hash_alike(equal) -> None:
    assert len({key_hash(k) for k in equal}) == 1


def test_unsupported_and_unhashable_keys_are_refused_naming_the_operator() -> None:
    with pytest.raises(PartitionKeyError, match=r"operator 'counts': key \[1, 2\] is a list, which is unhashable"):
        check_keys(["a", [1, 2]], "operator 'counts'")
    with pytest.raises(PartitionKeyError, match="operator 'counts': key .*object.* cannot be a partition key"):
        check_keys([object()], "operator 'counts'")
