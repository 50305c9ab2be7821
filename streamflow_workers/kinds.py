"""The operator kinds streamflow_workers/ adds to plans (loaded through the `streamflow.operators` entry point)."""
from __future__ import annotations

from streamflow.dataflow.registry import Kind, register
from streamflow_workers.operators.crosscam import build_crosscam
from streamflow_workers.operators.detect import build_detect
from streamflow_workers.operators.embed import build_embed
from streamflow_workers.operators.trace_source import build_trace_source, trace_groundtruth
from streamflow_workers.operators.track import build_track

register(Kind("trace", build_trace_source, 0, 1, "source", "recorded cameras replayed at their pace",
              groundtruth=trace_groundtruth))
register(Kind("detect", build_detect, 1, 1, "operator", "a detector variant over frame records"))
register(Kind("embed", build_embed, 1, 1, "operator", "appearance embeddings of detections"))
register(Kind("track", build_track, 1, 2, "operator", "SORT per camera; output 1: finished tracks",
              lambda params, port: "camera"))
register(Kind("crosscam", build_crosscam, 1, 1, "operator", "global ids across cameras by appearance"))
