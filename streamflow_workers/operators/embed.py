"""`embed`: appearance embeddings for the detections of frame records (re-identification).

Crops every detection box from the record's frame and embeds them in one batch per model call
(OSNet for people, MobileNetV2 features for vehicles); the output record drops the frame and
carries `embeddings` (K x D, L2-normalised) aligned with `boxes`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from streamflow.errors import PlanError
from streamflow_workers.operators.batching import BatchingOperator
from streamflow_workers.operators.common import batch_params, one_line, worker_device
from streamflow_workers.operators.trace_source import frame_image


class EmbedOperator(BatchingOperator):
    """Batched crop embedding on the hosting worker's device."""

    def __init__(self, variant: str, runtime: str, plan: Any, max_size: int, max_wait_ms: float) -> None:
        super().__init__(max_size, max_wait_ms)
        self.variant, self.runtime, self.plan = variant, runtime, plan
        self.embedder: Any = None

    def on_start(self) -> None:
        self.load(worker_device(self.plan, self.ctx.worker_name))

    def load(self, device: str) -> None:
        """Build the embedder on `device` (the profiler calls this too)."""
        from streamflow_workers.variants import build_embedder
        self.embedder = build_embedder(self.variant, device, self.runtime)

    def process(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in records:
            rec = {k: v for k, v in r.items() if k != "frame"}
            boxes = r.get("boxes")
            if boxes is not None and "frame" in r and len(boxes):
                image = frame_image(r["frame"])
                rec["embeddings"] = self.embedder.embed(image, np.asarray(boxes)[:, :4]).astype(np.float32)
            elif boxes is not None:
                rec["embeddings"] = np.zeros((0, self.embedder.dim), np.float32)
            out.append(rec)
        return out


def build_embed(params: dict[str, Any], path: str, plan: Any) -> Any:
    from streamflow_workers.errors import ModelLoadError, VariantError
    from streamflow_workers.variants import build_embedder, parse_variant
    where = path.rsplit(".params", 1)[0]
    variant = params.get("variant")
    if not isinstance(variant, str):
        raise PlanError(f"{where}.variant: missing (e.g. 'mobilenetv2' for vehicles, 'osnet_x0_25' for people)")
    try:
        if parse_variant(variant).kind != "embed":
            raise PlanError(f"{where}.variant: {variant!r} is not an embed variant")
        runtime = params.get("runtime", "opencv")
        build_embedder(variant, "cpu", runtime)
    except (ModelLoadError, VariantError) as exc:
        raise PlanError(f"{where}: {one_line(exc)}") from None
    max_size, max_wait = batch_params(params)
    return lambda: EmbedOperator(variant, runtime, plan, max_size, max_wait)
