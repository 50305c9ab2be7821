import logging

import pytest
import torch

from streamflow_workers.device import resolve_device
from streamflow_workers.errors import DeviceError


def test_cpu_resolves_to_cpu():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device(" CPU ") == "cpu"


@pytest.mark.parametrize("requested", ["cuda", "cuda:0"])
def test_cuda_without_gpu_falls_back_to_cpu_with_one_warning(monkeypatch, caplog, requested):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="streamflow_workers.device"):
        assert resolve_device(requested) == "cpu"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].getMessage() == f"device {requested} requested but no GPU is available; running on cpu"


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cpu:1", "tpu:0"])
def test_unknown_device_is_one_line_error(bad):
    with pytest.raises(DeviceError) as err:
        resolve_device(bad)
    assert "\n" not in str(err.value) and bad in str(err.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")
def test_cuda_resolves_to_an_existing_gpu():
    assert resolve_device("cuda") == "cuda:0"
    with pytest.raises(DeviceError):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
