"""Errors a user can cause in the ML layer; each carries one line meant to be printed as is."""
from __future__ import annotations


class ModelLoadError(RuntimeError):
    """A model file that is missing, corrupt or uses something this runtime cannot run."""


class DeviceError(ValueError):
    """A device string that names no device this process can use."""


class VariantError(ValueError):
    """An unknown or malformed model-variant name or parameter."""
