"""Errors a user can cause while planning; CLIs turn them into one line and an exit status."""


class PlannerError(Exception):
    """Base class: carries the one-line message shown to the user."""

    exit_status = 1


class ProblemError(PlannerError):
    """The problem (or plan) file is malformed; the message names the JSON path. Exit status 2."""

    exit_status = 2


class InfeasibleError(PlannerError):
    """No plan meets the constraints; the message names what binds. Exit status 3."""

    exit_status = 3


class UnsupportedError(PlannerError):
    """An algorithm cannot handle this instance (e.g. brute force on a large infrastructure)."""

    exit_status = 2
