"""How a run, or a generation of it, ends early: the exceptions the coordinator's phases raise."""
from __future__ import annotations

import time

from streamflow.errors import StreamflowError


class RunFailed(StreamflowError):
    """The run could not complete (a worker died or failed, a timeout); the report is written."""


class WorkerLost(Exception):
    """A worker process died or went silent; the run may go on without it."""

    def __init__(self, name: str, reason: str, silent_s: float) -> None:
        super().__init__(f"worker {name!r} {reason}")
        self.name, self.reason, self.silent_s = name, reason, silent_s
        self.at = time.monotonic()


class Reconfigure(Exception):
    """A requested reconfiguration is due: its checkpoint has committed."""


class RunInterrupted(RunFailed):
    """Ctrl-C or SIGTERM ended the run; the report is written."""

    exit_status = 130
