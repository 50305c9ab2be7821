"""Checks on every message a process receives, so a peer that sends garbage is dropped and
logged while the run goes on.

Limits hold before anything is decoded: libzmq drops a connection that announces a frame above
MAX_FRAME_BYTES (ZMQ_MAXMSGSIZE, so no allocation follows a forged length), and a message with
more than MAX_FRAMES frames or a header above MAX_HEADER_BYTES is dropped unread. Then each kind
is checked for types and ranges: data names an edge this worker receives and an epoch; a progress
batch is checked whole before any of it is applied (a batch is atomic: applying half of one could
let a frontier run ahead); credits name a channel this worker sends on; control messages match
their schema. The checks are type tests and dictionary lookups, a few per message and never per
record, so the data path pays nothing measurable for them.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import msgpack

MAX_FRAME_BYTES = 1 << 30     # one frame: a 1080p batch of 100 frames fits
MAX_FRAMES = 1 << 16          # frames of one message: header + a batch's out-of-band arrays
MAX_HEADER_BYTES = 16 << 20   # a transport header or control body before it is unpacked
MAX_EPOCH = (1 << 63) - 1
LOG_EVERY_S = 10.0

log = logging.getLogger("streamflow.validate")


class Invalid(ValueError):
    """A message that does not match its kind; the text says what is wrong."""


def header(raw: bytes) -> tuple[Any, ...]:
    """A transport header unpacked, bounded in size and required to be a non-empty array."""
    if len(raw) > MAX_HEADER_BYTES:
        raise Invalid(f"header of {len(raw)} bytes")
    h = msgpack.unpackb(raw, use_list=False)
    if type(h) is not tuple or not h:
        raise Invalid("header is not an array")
    return h


def epoch(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= MAX_EPOCH:
        raise Invalid(f"epoch {value!r}")
    return value


def progress(flat: Any, n_locations: int) -> Any:
    """A flat (location, epoch, delta) * n batch, checked whole: locations of this dataflow,
    epochs >= 0, non-zero integer deltas."""
    if type(flat) is not tuple or len(flat) % 3:
        raise Invalid("progress batch is not a flat array of triples")
    if flat:
        if not all(type(x) is int for x in flat):
            raise Invalid("progress batch holds a non-integer")
        locations, epochs, deltas = flat[0::3], flat[1::3], flat[2::3]
        if min(locations) < 0 or max(locations) >= n_locations:
            raise Invalid("progress batch names a location this dataflow does not have")
        if min(epochs) < 0 or max(epochs) > MAX_EPOCH or 0 in deltas:
            raise Invalid("progress batch holds a negative epoch or a zero delta")
    return flat


def credit(h: tuple[Any, ...]) -> int:
    if len(h) != 3 or type(h[1]) is not int or type(h[2]) is not int or h[2] < 0:
        raise Invalid("credit is not (edge, bytes >= 0)")
    return h[2]


# control messages: kind -> (required fields with their types, optional fields with theirs)
STR, INT, NUM, DICT, LIST, BYTES = str, int, (int, float), dict, (list, tuple), bytes
OPT_STR = (str, type(None))
RUN = {"run": OPT_STR}
TO_COORDINATOR: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "register": ({"tier": STR}, {"name": STR, "device": STR, "cost_per_hour": NUM, "cores": INT,
                                 "memory_bytes": INT, "host": STR, "pid": INT, "threads": INT, "spare": bool}),
    "bye": ({}, {"name": STR}),
    "deployed": ({"run": STR, "addresses": DICT}, {"keys": DICT}),
    "ready": ({"run": STR}, {"stateful": LIST}),
    "stats": ({"run": STR, "stats": DICT}, {"role": STR}),
    "done": (RUN, {"error": OPT_STR}),
    "failed": (RUN, {"error": OPT_STR, "draining": bool}),
    "aborted": (RUN, {"error": OPT_STR}),
    "snapshot": ({"run": STR, "epoch": INT, "op": STR, "instance": INT, "state": BYTES}, {"notify": LIST}),
    "reconfigure": ({"plan": DICT}, {"source_path": STR, "base_dir": STR}),
    "sources-paused": ({"run": STR, "epoch": INT}, {"late": LIST}),
    "preloaded": ({"switch": INT}, {"run": OPT_STR, "warmed": LIST, "seconds": NUM, "error": OPT_STR,
                                   "standby": bool, "key": OPT_STR}),
}
TO_WORKER: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "deploy": ({"run": STR, "plan": DICT}, {"roles": LIST, "states": DICT, "source_path": STR, "base_dir": STR,
                                            "speed": (int, float, type(None)), "credit_window": INT,
                                            "start_epoch": INT, "checkpoint_every": (int, type(None)),
                                            "notify": DICT, "source_budget": INT}),
    "wire": ({"run": STR, "peers": DICT}, {"keys": DICT}),
    "start": ({"run": STR}, {"elapsed": (int, float, type(None))}),
    "ping": (RUN, {}),
    "abort": (RUN, {"regenerate": bool}),
    "release": (RUN, {}),
    "drain": (RUN, {}),
    "pause-sources": ({"run": STR, "epoch": INT}, {}),
    "drain-checkpoint": ({"run": STR, "epoch": INT}, {}),
    "resume-sources": (RUN, {}),
    "preload": ({"switch": INT, "plan": DICT, "roles": LIST}, {"run": OPT_STR, "source_path": STR, "base_dir": STR,
                                                              "speed": (int, float, type(None)), "standby": bool,
                                                              "key": STR}),
    "shutdown": ({}, {}),
}


def control(frames: list[bytes], schema: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> tuple[str, Any]:
    """(kind, body) of a two-frame control message whose body matches `schema[kind]`."""
    if not 1 <= len(frames) <= 3:
        raise Invalid(f"{len(frames)} frames")
    if len(frames[0]) > 32:
        raise Invalid("kind longer than 32 bytes")
    kind = frames[0].decode("ascii")
    if kind not in schema:
        raise Invalid(f"unknown kind {kind[:32]!r}")
    if len(frames) < 2:
        body = None
    else:
        if len(frames[1]) > MAX_FRAME_BYTES:
            raise Invalid("body too large")
        body = msgpack.unpackb(frames[1], raw=False, strict_map_key=False)
    required, optional = schema[kind]
    if body is None and not required:
        return kind, body
    if type(body) is not dict:
        raise Invalid(f"{kind}: body is not a map")
    for key, types in required.items():
        if key not in body or not isinstance(body[key], types) or (types is INT and type(body[key]) is bool):
            raise Invalid(f"{kind}.{key}: missing or not {_name(types)}")
    for key, types in optional.items():
        if key in body and not isinstance(body[key], types):
            raise Invalid(f"{kind}.{key}: not {_name(types)}")
    return kind, body


def str_map(value: Any, what: str) -> dict[str, str]:
    """A map of strings to strings (peer addresses, public keys)."""
    if type(value) is not dict or not all(type(k) is str and type(v) is str for k, v in value.items()):
        raise Invalid(f"{what}: not a map of strings")
    return value


def _name(types: Any) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join(t.__name__ for t in types)


class Drops:
    """Counts dropped messages and logs at most one line per sender every LOG_EVERY_S."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.count = 0
        self._last: dict[str, tuple[float, int]] = {}

    def drop(self, sender: Any, why: Any) -> None:
        self.count += 1
        who = sender.decode(errors="replace")[:64] if isinstance(sender, bytes) else str(sender)[:64]
        now = time.monotonic()
        last, quiet = self._last.get(who, (-LOG_EVERY_S, 0))
        if now - last >= LOG_EVERY_S:
            more = f" (and {quiet} more since the last line)" if quiet else ""
            text = str(why).splitlines()[0][:200] if str(why) else type(why).__name__
            log.warning("%s: dropped a message from %r: %s%s", self.where, who, text, more)
            self._last[who] = (now, 0)
        else:
            self._last[who] = (last, quiet + 1)
