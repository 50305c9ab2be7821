"""Where YOLOX-nano's time goes on onnxruntime (one thread): milliseconds per operator type, the
convolutions' multiply-accumulates, and the rate they run at. Put that rate beside the core's fp32
peak to see how far a faster runtime can go on this CPU.

    PYTHONPATH=. python tools/op_profile.py [--size 640] [--runs 20]

The model is the file onnxruntime loads in a worker (`derived.runnable_model`: dynamic dims and
the exact graph rewrites), the input a fixed random image; onnxruntime's own profiler times each
node. A peak is printed only when `--fma-per-cycle` and `--ghz` are given (the CPU's datasheet).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from streamflow_workers.data import shared_data_dir


def conv_macs(model_path: Path, size: int) -> tuple[float, float]:
    """(dense, depthwise) multiply-accumulates of every Conv at batch 1 and `size` x `size` input."""
    import onnx
    from onnx import helper, shape_inference
    model = onnx.load(str(model_path))
    for i, dim in enumerate(model.graph.input[0].type.tensor_type.shape.dim):
        dim.ClearField("dim_param")
        dim.dim_value = (1, 3, size, size)[i]
    model = shape_inference.infer_shapes(model)
    values = list(model.graph.value_info) + list(model.graph.output)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    dense = depthwise = 0.0
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        macs = float(np.prod(shapes[node.output[0]]) * np.prod(weights[node.input[1]][1:]))
        group = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "group"), 1)
        if group > 1:
            depthwise += macs
        else:
            dense += macs
    return dense, depthwise


def profile(model_path: Path, size: int, runs: int) -> tuple[float, dict[str, tuple[float, int]]]:
    """Median ms of a whole run, and per op type (ms per run, nodes) from onnxruntime's profiler."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.mkdtemp(prefix="sf-opprof-"), "ort")
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).uniform(0, 255, (1, 3, size, size)).astype(np.float32)}
    warmup = 5
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    trace = Path(session.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    trace.parent.rmdir()
    total: dict[str, float] = collections.Counter()
    nodes: dict[str, set[str]] = collections.defaultdict(set)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            total[op] += event["dur"]
            nodes[op].add(event["name"])
    per_run = {op: (us / (warmup + runs) / 1000.0, len(nodes[op])) for op, us in total.items()}
    return 1000.0 * float(np.median(times)), per_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=640, help="input size, a multiple of 32")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--fma-per-cycle", type=float, help="fp32 FMAs one core retires per cycle (e.g. 16 on AMD Zen 4, 32 on Intel cores with two AVX-512 FMA units)")
    parser.add_argument("--ghz", type=float, help="the core's clock under load")
    args = parser.parse_args(argv)
    if args.size <= 0 or args.size % 32:
        print(f"error: --size {args.size} is not a positive multiple of 32", file=sys.stderr)
        return 2
    from streamflow_workers.runtimes.derived import runnable_model
    model = runnable_model(shared_data_dir() / "models" / "yolox_nano.onnx")
    median_ms, per_op = profile(model, args.size, args.runs)
    dense, depthwise = conv_macs(model, args.size)
    print(f"YOLOX-nano@{args.size} on onnxruntime, one thread: {median_ms:.1f} ms per run (median of {args.runs})")
    print(f"{'op':<16} {'ms/run':>8} {'nodes':>6}")
    for op, (ms, count) in sorted(per_op.items(), key=lambda item: -item[1][0]):
        print(f"{op:<16} {ms:8.2f} {count:6d}")
    conv_ms = per_op.get("Conv", (0.0, 0))[0]
    macs = dense + depthwise
    print(f"convolutions: {macs / 1e9:.3f} G multiply-accumulates ({dense / 1e9:.3f} dense, "
          f"{depthwise / 1e9:.3f} depthwise) in {conv_ms:.1f} ms = {macs / conv_ms / 1e6:.1f} GMAC/s")
    if args.fma_per_cycle and args.ghz:
        peak = args.fma_per_cycle * args.ghz
        print(f"fp32 peak of one core: {args.fma_per_cycle:g} FMA/cycle x {args.ghz:g} GHz = {peak:.1f} GMAC/s; "
              f"the convolutions run at {100 * macs / conv_ms / 1e6 / peak:.0f} % of it, "
              f"and alone need at least {macs / peak / 1e6:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
