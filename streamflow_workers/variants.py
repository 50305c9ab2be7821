"""The registry of model variants the planner chooses between, and builders for them.

A detect variant is model x input size x precision x runtime x on-camera filter x sampling:

    yolox_nano@640[:int8|:fp16][:cv2|:torch|:ort|:ov][+diff0.02][/k]      mog2[+diff0.02][/k]

`@S` is any multiple of 32 (one ONNX file; the ladder 320..1280 is what `list_variants` offers);
precision defaults to fp32; without a runtime tag the operator's `runtime` parameter decides
(today's default, OpenCV DNN), so names such as `yolox_nano@640` keep their meaning. `+diffT` drops
frames on the camera host whose changed-pixel fraction against the last frame sent is below T
(streamflow_workers/detect/framediff.py); `/k` detects every k-th frame. Embed variants: `histogram`
(colour, any object), `osnet_x0_25` (people), `mobilenetv2` (vehicles).
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, replace

from streamflow_workers.errors import VariantError

YOLOX_SIZES = (320, 416, 640, 960, 1280)
DETECT_MODELS = ("mog2", "yolox_nano")
EMBED_MODELS = ("histogram", "osnet_x0_25", "mobilenetv2")
# Conv multiply-accumulates of yolox_nano.onnx at 416x416, counted from its graph
# (streamflow_workers.runtimes.onnx_graph.conv_macs); convolutions scale with the input's pixel count.
YOLOX_NANO_GMACS_AT_416 = 0.5226
# MOG2 on a 640x480 BGR frame, estimated: ~100 operations per pixel for the mixture update
# (up to 5 Gaussians x 3 channels) and the two morphology passes. An order of magnitude only.
MOG2_GFLOPS_AT_VGA = 0.03
OSNET_GMACS = 0.0822  # conv MACs of osnet_x0_25_msmt17.onnx at 256x128
MOBILENETV2_GMACS = 0.30  # Sandler et al. 2018, width 1.0 at 224x224
HISTOGRAM_GFLOPS = 0.0001  # colour histogram of a ~30x30 crop: a few thousand operations

# Runtime tags in variant names and the runtimes they name (streamflow_workers.runtimes.RUNTIMES).
RUNTIME_TAGS = {"cv2": "opencv", "torch": "torch", "ort": "onnxruntime", "ov": "openvino"}
TAG_OF_RUNTIME = {v: k for k, v in RUNTIME_TAGS.items()}
PRECISIONS = ("fp32", "fp16", "int8")
INT8_RUNTIMES = ("onnxruntime", "openvino")  # they run the QDQ model streamflow_workers.runtimes.derived writes
MAX_SIZE = 4096

_NAME = re.compile(r"^(?P<model>[a-z][a-z0-9_]*)(?:@(?P<size>\d+))?(?::(?P<precision>fp32|fp16|int8))?"
                   r"(?::(?P<runtime>cv2|torch|ort|ov))?(?:\+diff(?P<diff>\d*\.?\d+))?(?:/(?P<every>\d+))?$")


@dataclass(frozen=True)
class VariantSpec:
    """A parsed variant name: model, input size (YOLOX), frame-sampling interval, precision,
    runtime (None: the operator's runtime parameter) and on-camera frame-difference threshold."""

    kind: str
    model: str
    size: int | None = None
    every: int = 1
    precision: str = "fp32"
    runtime: str | None = None
    diff: float | None = None

    @property
    def base(self) -> str:
        """The model configuration itself (what is loaded): no filter, no sampling suffix."""
        name = self.model if self.size is None else f"{self.model}@{self.size}"
        if self.precision != "fp32":
            name += f":{self.precision}"
        return name if self.runtime is None else f"{name}:{TAG_OF_RUNTIME[self.runtime]}"

    @property
    def name(self) -> str:
        name = self.base if self.diff is None else f"{self.base}+diff{self.diff:g}"
        return name if self.every == 1 else f"{name}/{self.every}"

    def with_runtime(self, runtime: str) -> "VariantSpec":
        """The same variant pinned to `runtime` (a runtimes.RUNTIMES name)."""
        return replace(self, runtime=runtime)

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
    return (", ".join(list_variants("detect") + list_variants("embed")) +
            " (yolox_nano@S for S a multiple of 32, then :int8|:fp16, :cv2|:torch|:ort|:ov;"
            " detect variants take +diffT and /k)")


def parse_variant(name: str) -> VariantSpec:
    """Parse `yolox_nano@416`, `yolox_nano@640:int8:ort`, `yolox_nano@416:ov+diff0.02/2`, `mog2/3`,
    `osnet_x0_25`, `mobilenetv2`."""
    match = _NAME.match(name.strip()) if isinstance(name, str) else None
    if match is None:
        raise VariantError(f"unknown variant {name!r}; known: {known_variants()}")
    model, size, every = match.group("model"), match.group("size"), match.group("every")
    precision, tag, diff = match.group("precision") or "fp32", match.group("runtime"), match.group("diff")
    every_k = int(every) if every is not None else 1
    if every_k < 1:
        raise VariantError(f"variant {name!r}: the sampling interval /k needs k >= 1")
    threshold = float(diff) if diff is not None else None
    if threshold is not None and not 0 < threshold < 1:
        raise VariantError(f"variant {name!r}: the frame-difference threshold +diffT needs 0 < T < 1")
    runtime = RUNTIME_TAGS[tag] if tag is not None else None
    if model == "yolox_nano" and size is not None and 0 < int(size) <= MAX_SIZE and int(size) % 32 == 0:
        if precision == "int8" and runtime not in INT8_RUNTIMES:
            raise VariantError(f"variant {name!r}: int8 runs on onnxruntime or OpenVINO; add :ort or :ov")
        return VariantSpec("detect", model, int(size), every_k, precision, runtime, threshold)
    if model == "mog2" and size is None and tag is None and match.group("precision") is None:
        return VariantSpec("detect", model, None, every_k, diff=threshold)
    if model in EMBED_MODELS and size is None and every is None and diff is None and tag is None \
            and match.group("precision") is None:
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
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "size", "runtime", "device", "precision")]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise VariantError(f"variant {variant!r}: unknown parameter(s) {', '.join(unknown)} "
                           f"(accepted: {', '.join(accepted)})")


def build_detector(variant: str, runtime: str = "opencv", device: str = "cpu", **params):
    """A detector for `variant` with `detect(frames, camera=None) -> list[(K, 6) arrays]`.

    YOLOX runs on the runtime its name says, else on `runtime`; MOG2 is OpenCV code on the CPU
    whatever the runtime and device. The `+diff` filter runs on the camera host, not here."""
    from streamflow_workers.detect.sampling import SampledDetector

    spec = parse_variant(variant)
    if spec.kind != "detect":
        raise VariantError(f"{variant!r} is an embed variant, not a detect variant")
    if spec.model == "yolox_nano":
        from streamflow_workers.detect.yolox import YoloxDetector
        _check_params(YoloxDetector, params, variant)
        detector = YoloxDetector(spec.size, runtime=spec.runtime or runtime, device=device,
                                 precision=spec.precision, **params)
    else:
        from streamflow_workers.detect.mog2 import Mog2Detector
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
        from streamflow_workers.embed.histogram import HistogramEmbedder
        _check_params(HistogramEmbedder, params, name)
        return HistogramEmbedder()
    if spec.model == "osnet_x0_25":
        from streamflow_workers.embed.osnet import OsnetEmbedder
        _check_params(OsnetEmbedder, params, name)
        return OsnetEmbedder(runtime=runtime, device=device, **params)
    from streamflow_workers.embed.mobilenetv2 import MobileNetV2Embedder
    _check_params(MobileNetV2Embedder, params, name)
    return MobileNetV2Embedder(device=device, **params)
