"""Resolve a device string ("cpu", "cuda", "cuda:0") to one torch can use, falling back to CPU.

A plan may place a model on a GPU worker that has none (a laptop standing in for a server):
the worker keeps running on CPU and says so in one warning line rather than failing.
"""
from __future__ import annotations

import logging
import re

import torch

from streamflow_workers.errors import DeviceError

log = logging.getLogger(__name__)
_DEVICE = re.compile(r"^(cpu|cuda)(?::(\d+))?$")


def resolve_device(requested: str) -> str:
    """Return "cpu" or "cuda:N" for `requested`; CUDA without a GPU warns once and gives "cpu"."""
    text = (requested or "cpu").strip().lower()
    match = _DEVICE.match(text)
    if match is None:
        raise DeviceError(f"unknown device {requested!r} (expected cpu, cuda or cuda:N)")
    kind, index = match.group(1), match.group(2)
    if kind == "cpu":
        if index is not None:
            raise DeviceError(f"unknown device {requested!r} (cpu takes no index)")
        return "cpu"
    if not torch.cuda.is_available():
        log.warning("device %s requested but no GPU is available; running on cpu", text)
        return "cpu"
    ordinal = int(index or 0)
    count = torch.cuda.device_count()
    if ordinal >= count:
        raise DeviceError(f"device {text} requested but this host has {count} GPU(s)")
    return f"cuda:{ordinal}"
