"""Errors a user can cause; the CLI turns each into one line and an exit status."""
from __future__ import annotations


class StreamflowError(Exception):
    """Base of user-facing errors: the message is the whole story, no traceback needed."""

    exit_status = 1


class GraphError(StreamflowError):
    """The dataflow graph is malformed (cycle, unknown operator, port out of range)."""

    exit_status = 2


class PlanError(StreamflowError):
    """plan.json is invalid; the message starts with the path of the offending field."""

    exit_status = 2


class CapabilityError(StreamflowError):
    """An operator emitted or asked for a notification at an epoch it holds no capability for."""


class OperatorError(StreamflowError):
    """User code inside an operator raised; names the operator and the epoch."""
