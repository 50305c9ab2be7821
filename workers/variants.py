"""The registry of model variants the planner chooses between, and builders for them.

Detect variants: `yolox_nano@S` for S in 320, 416, 640, 960, 1280 (one ONNX file, input S x S)
and `mog2` (background subtraction), each with an optional frame-sampling suffix `/k` (detect
every k-th frame, re-emit in between). Embed variants: `histogram` (colour, any object),
`osnet_x0_25` (people), `mobilenetv2` (vehicles). The runtime ("opencv" or "torch") and device are chosen separately.
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass

from workers.errors import VariantError

YOLOX_SIZES = (320, 416, 640, 960, 1280)
DETECT_MODELS = ("mog2", "yolox_nano")
EMBED_MODELS = ("histogram", "osnet_x0_25", "mobilenetv2")
# Conv multiply-accumulates of yolox_nano.onnx at 416x416, counted from its graph
# (workers.runtimes.onnx_graph.conv_macs); convolutions scale with the input's pixel count.
YOLOX_NANO_GMACS_AT_416 = 0.5226
# MOG2 on a 640x480 BGR frame, estimated: ~100 operations per pixel for the mixture update
# (up to 5 Gaussians x 3 channels) and the two morphology passes. An order of magnitude only.
MOG2_GFLOPS_AT_VGA = 0.03
OSNET_GMACS = 0.0822  # conv MACs of osnet_x0_25_msmt17.onnx at 256x128
MOBILENETV2_GMACS = 0.30  # Sandler et al. 2018, width 1.0 at 224x224
HISTOGRAM_GFLOPS = 0.0001  # colour histogram of a ~30x30 crop: a few thousand operations

_NAME = re.compile(r"^(?P<model>[a-z][a-z0-9_]*)(?:@(?P<size>\d+))?(?:/(?P<every>\d+))?$")


@dataclass(frozen=True)
class VariantSpec:
    """A parsed variant name: model, input size (YOLOX), frame-sampling interval."""

    kind: str
    model: str
    size: int | None = None
    every: int = 1

    @property
    def base(self) -> str:
        """The name without the sampling suffix (the model configuration itself)."""
        return self.model if self.size is None else f"{self.model}@{self.size}"

    @property
    def name(self) -> str:
        return self.base if self.every == 1 else f"{self.base}/{self.every}"

    @property
    def gflops_per_frame(self) -> float:
        """Nominal GFLOPs per processed frame (2 x MACs for networks); for ordering and docs."""
        if self.model == "yolox_nano":
            return 2 * YOLOX_NANO_GMACS_AT_416 * (self.size / 416) ** 2
        if self.model == "mog2":
            return MOG2_GFLOPS_AT_VGA
        if self.model == "osnet_x0_25":
            return 2 * OSNET_GMACS
        if self.model == "histogram":
            return HISTOGRAM_GFLOPS
        return 2 * MOBILENETV2_GMACS

    @property
    def relative_cost(self) -> float:
        """Nominal GFLOPs per input frame once sampling skips frames."""
        return self.gflops_per_frame / self.every


def known_variants() -> str:
    """The known names, for error messages."""
    return ", ".join(list_variants("detect") + list_variants("embed")) + " (detect variants take /k)"


def parse_variant(name: str) -> VariantSpec:
    """Parse `yolox_nano@416`, `yolox_nano@416/2`, `mog2`, `mog2/3`, `osnet_x0_25`, `mobilenetv2`."""
    match = _NAME.match(name.strip()) if isinstance(name, str) else None
    if match is None:
        raise VariantError(f"unknown variant {name!r}; known: {known_variants()}")
    model, size, every = match.group("model"), match.group("size"), match.group("every")
    every_k = int(every) if every is not None else 1
    if every_k < 1:
        raise VariantError(f"variant {name!r}: the sampling interval /k needs k >= 1")
    if model == "yolox_nano" and size is not None and int(size) in YOLOX_SIZES:
        return VariantSpec("detect", model, int(size), every_k)
    if model == "mog2" and size is None:
        return VariantSpec("detect", model, None, every_k)
    if model in EMBED_MODELS and size is None and every is None:
        return VariantSpec("embed", model)
    raise VariantError(f"unknown variant {name!r}; known: {known_variants()}")


def list_variants(kind: str = "detect", sampling: tuple[int, ...] = (1,)) -> list[str]:
    """Variant names of one kind, cheapest first; detect names repeat for each sampling interval."""
    if kind == "detect":
        specs = [VariantSpec("detect", m, s, k) for k in sampling
                 for m, s in [("mog2", None)] + [("yolox_nano", s) for s in YOLOX_SIZES]]
    elif kind == "embed":
        specs = [VariantSpec("embed", m) for m in EMBED_MODELS]
    else:
        raise VariantError(f"unknown variant kind {kind!r} (known: detect, embed)")
    return [s.name for s in sorted(specs, key=lambda s: (s.relative_cost, s.name))]


def _check_params(cls, params: dict, variant: str) -> None:
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "size", "runtime", "device")]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise VariantError(f"variant {variant!r}: unknown parameter(s) {', '.join(unknown)} "
                           f"(accepted: {', '.join(accepted)})")


def build_detector(variant: str, runtime: str = "opencv", device: str = "cpu", **params):
    """A detector for `variant` with `detect(frames, camera=None) -> list[(K, 6) arrays]`.

    YOLOX runs on `runtime`; MOG2 is OpenCV code on the CPU whatever the runtime and device."""
    from workers.detect.sampling import SampledDetector

    spec = parse_variant(variant)
    if spec.kind != "detect":
        raise VariantError(f"{variant!r} is an embed variant, not a detect variant")
    if spec.model == "yolox_nano":
        from workers.detect.yolox import YoloxDetector
        _check_params(YoloxDetector, params, variant)
        detector = YoloxDetector(spec.size, runtime=runtime, device=device, **params)
    else:
        from workers.detect.mog2 import Mog2Detector
        _check_params(Mog2Detector, params, variant)
        detector = Mog2Detector(**params)
    return detector if spec.every == 1 else SampledDetector(detector, spec.every)


def build_embedder(name: str, device: str = "cpu", runtime: str = "opencv", **params):
    """An embedder with `embed(frame, boxes) -> (K, dim)` unit vectors and a `dim` attribute.

    OSNet runs on `runtime`; MobileNetV2 is a torch module whatever the runtime."""
    spec = parse_variant(name)
    if spec.kind != "embed":
        raise VariantError(f"{name!r} is a detect variant, not an embed variant")
    if spec.model == "histogram":
        from workers.embed.histogram import HistogramEmbedder
        _check_params(HistogramEmbedder, params, name)
        return HistogramEmbedder()
    if spec.model == "osnet_x0_25":
        from workers.embed.osnet import OsnetEmbedder
        _check_params(OsnetEmbedder, params, name)
        return OsnetEmbedder(runtime=runtime, device=device, **params)
    from workers.embed.mobilenetv2 import MobileNetV2Embedder
    _check_params(MobileNetV2Embedder, params, name)
    return MobileNetV2Embedder(device=device, **params)
