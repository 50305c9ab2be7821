"""`streamflow profile WORKFLOW --infra INFRA -o problem.json`: measure every ML operator variant
on every worker type (device, threads), with real frames from the workflow's traces, and write
the planning problem `streamflow plan` takes as is.

Latency per frame at each batch size, the size of what each edge carries, and accuracy (AP50
against the trace's ground truth, or F1 against the most expensive variant where there is none).
Results are cached per (operator, variant, machine, settings), so re-profiling is quick.

A variant is model x input size x precision x runtime x on-camera filter x sampling
(streamflow_workers/variants.py). A YOLOX variant that names no runtime (and an operator without a
`runtime` parameter) runs on the fastest CPU runtime measured here: the profiler times it on
each installed one and writes the winner into the variant's name (`yolox_nano@640` ->
`yolox_nano@640:ort`), so the plan says what runs. A `+diffT` variant is profiled on the frames
its camera-side filter lets through, and the source -> detect edge carries its smaller size.

With `--testbed` (root, a testbed up): each worker type is timed inside a cgroup with its `cpus`
quota, and the links between tiers are measured across the testbed's shaped links; both go into
the problem (latency per batch size per worker type; link bandwidth and round trip). Without it,
`cpus` is ignored (every type runs on this machine's cores) and links are copied from infra.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from streamflow.errors import PlanError, StreamflowError

CACHE = Path.home() / ".cache" / "streamflow" / "profile-cache.json"


CPU_RUNTIMES = ("opencv", "onnxruntime", "openvino")


class SourceSample:
    """The first frames of each camera of a trace source, and the records its host would send
    for them with or without an on-camera filter (the source's own record builder)."""

    def __init__(self, source: dict[str, Any], base: Path, frames: int):
        from streamflow_traces.format import Trace
        from streamflow_traces.replay import FrameReader, iter_merged
        from streamflow_workers.operators.trace_source import trace_groundtruth
        self.paths = [str((base / p).resolve()) for p in source.get("paths", [source.get("path")])]
        traces = [Trace.open(p) for p in self.paths]
        self.encoding, self.quality = source.get("encode", "raw"), source.get("quality", 90)
        self.frames = list(iter_merged([FrameReader(t, stop=frames) for t in traces]))
        self.truth = trace_groundtruth({"paths": self.paths}, None)
        self.rate = sum(t.frame_count / t.duration for t in traces if t.duration > 0)
        self._records: dict[float | None, list[dict]] = {}

    def records(self, diff: float | None = None) -> list[dict]:
        """Records as sent, `frame: None` where a `+diff` filter of threshold `diff` drops one."""
        if diff not in self._records:
            from streamflow_workers.detect.framediff import FrameDifferenceFilter
            from streamflow_workers.operators.trace_source import source_record
            frame_filter = FrameDifferenceFilter(diff) if diff is not None else None
            self._records[diff] = [source_record(f.camera, f.index, f.ts, f.image, self.encoding, self.quality,
                                                 frame_filter) for f in self.frames]
        return self._records[diff]


def fastest_runtime(op: dict[str, Any], variant: str, records: list[dict], cache: dict[str, Any],
                    refresh: bool) -> tuple[str, dict[str, float]]:
    """The installed CPU runtime that runs `variant` fastest here (one thread, batch 1), with the
    ms/frame of each; cached like every measurement."""
    import importlib.util
    from streamflow_workers.profiling.measure import release_models, time_variant
    from streamflow_workers.variants import TAG_OF_RUNTIME, parse_variant
    spec = parse_variant(variant)
    installed = [r for r in CPU_RUNTIMES if r == "opencv" or importlib.util.find_spec(r) is not None]
    key = hashlib.sha1(json.dumps(["fastest-runtime", op, variant, installed, len(records)], sort_keys=True,
                                  default=str).encode()).hexdigest()
    if refresh or key not in cache:
        ms = {}
        for runtime in installed:
            name = spec.with_runtime(runtime).name
            ms[runtime] = time_variant(op, name, "cpu", 1, records, [1])[1]
            release_models()
        cache[key] = ms
    ms = cache[key]
    best = min(ms, key=ms.get)
    return spec.with_runtime(best).name if TAG_OF_RUNTIME.get(best) else variant, ms


def measured_operator(op: dict[str, Any], sample: SourceSample | None) -> dict[str, Any]:
    """The operator as measured: int8 variants fed by a trace source calibrate on its traces, as
    they do in a run (the plan's upstream source); the problem keeps the workflow's params."""
    params = op.get("params", {})
    if sample is None or op.get("kind") != "detect" or "calibration" in params:
        return op
    return {**op, "params": {**params, "calibration": sample.paths}}


def resolve_runtimes(workflow: Any, samples: dict[str, SourceSample], cache: dict[str, Any], args: Any) -> None:
    """Name the runtime of every YOLOX variant that leaves it to the default (in place)."""
    from streamflow_workers.variants import parse_variant
    for op in workflow.ml_operators:
        if op.get("kind") != "detect" or "runtime" in op.get("params", {}):
            continue
        src = op["inputs"][0] if isinstance(op["inputs"][0], str) else op["inputs"][0]["from"]
        if src not in samples:
            continue
        resolved = []
        for variant in op["variants"]:
            spec = parse_variant(variant)
            if spec.model != "yolox_nano" or spec.runtime is not None:
                resolved.append(variant)
                continue
            records = samples[src].records(spec.diff)[:args.timing_frames]
            name, ms = fastest_runtime(measured_operator(op, samples[src]), variant, records, cache, args.no_cache)
            print(f"{op['name']}: {variant} -> {name} (fastest here, 1 thread: "
                  + ", ".join(f"{r} {v:.1f}" for r, v in ms.items()) + " ms/frame)")
            resolved.append(name)
        op["variants"] = resolved


def accuracy_of(outputs: list[dict], truth: dict[str, Any], classes: list | None, reference: list[dict] | None
                ) -> float:
    """Percent: AP50 against ground truth, else F1 against the reference outputs."""
    from streamflow.cluster.evaluation import score_detection
    if truth:
        return 100 * score_detection(outputs, truth, classes)["ap50"]
    from streamflow.metrics.groundtruth import GroundTruth
    import numpy as np
    frames: dict[str, dict[int, Any]] = {}
    for r in reference or []:
        frames.setdefault(r["camera"], {})[r["index"]] = np.asarray(r["boxes"] if r["boxes"] is not None
                                                                     else np.zeros((0, 6)))
    pseudo = {c: GroundTruth(c, {i: b[b[:, 4] >= 0.3] if len(b) else b for i, b in f.items()}, [], False, None)
              for c, f in frames.items()}
    block = score_detection(outputs, pseudo, classes)
    p, r = block["precision@0.3"], block["recall@0.3"]
    return 100 * (2 * p * r / (p + r) if p + r else 0.0)


def reference_rank(variant: str) -> tuple:
    """Order for picking the reference variant where there is no ground truth: the most
    computation per frame, unfiltered, at full precision."""
    from streamflow_workers.variants import parse_variant
    spec = parse_variant(variant)
    return spec.relative_cost, spec.diff is None, spec.precision == "fp32"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streamflow profile", description=__doc__.splitlines()[0])
    parser.add_argument("workflow", help="workflow.json: a plan without placement; ML operators list variants")
    parser.add_argument("--infra", required=True, help="infra.json: tiers, workers (device, threads, price), links")
    parser.add_argument("-o", "--output", required=True, help="problem.json to write")
    parser.add_argument("--frames", type=int, default=24, help="frames per camera to profile on (default 24)")
    parser.add_argument("--timing-frames", type=int, default=12, help="frames timed per batch size (default 12)")
    parser.add_argument("--batch-sizes", default="1,4", help="batch sizes to time (default 1,4)")
    parser.add_argument("--no-cache", action="store_true", help="measure everything again")
    parser.add_argument("--testbed", action="store_true",
                        help="time each worker type under its cpus quota and measure the links on the testbed that is up")
    parser.add_argument("--state", default=None, help="with --testbed: its state directory")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except StreamflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    if not args.testbed:
        return profile(args, None, None)
    from streamflow_workers.profiling.quota import measure_links, on_testbed
    with on_testbed(args.state) as (state, timer):
        return profile(args, timer, lambda infra: measure_links(state, infra))


def profile(args: argparse.Namespace, timer: Any, links: Any) -> int:
    """Measure and write the problem; `timer` times under quotas, `links` measures the links."""
    from streamflow_workers.errors import DeviceError, ModelLoadError, VariantError
    from streamflow_workers.profiling.measure import record_kb, release_models, run_variant, time_variant
    from streamflow_workers.profiling.problem import assemble
    from streamflow_workers.profiling.spec import load_infrastructure, load_workflow
    from streamflow_workers.variants import parse_variant
    workflow = load_workflow(args.workflow)
    infra = load_infrastructure(args.infra, quotas=timer is not None)
    batch_sizes = sorted({int(b) for b in args.batch_sizes.split(",")} |
                         {int(op.get("batch", {}).get("max_size", 1)) for op in workflow.ml_operators})
    samples: dict[str, SourceSample] = {}
    truth, rates, sizes_in = {}, {}, {}
    for s in workflow.sources:
        if s.get("kind") != "trace":
            raise PlanError(f"{args.workflow}: sources.{s['name']}: the profiler replays trace sources only")
        try:
            samples[s["name"]] = SourceSample(s, workflow.base_dir, args.frames)
        except Exception as exc:  # a missing trace or unreadable video: one line
            raise PlanError(f"{args.workflow}: sources.{s['name']}: {exc}") from None
        truth.update(samples[s["name"]].truth)
        rates[s["name"]] = samples[s["name"]].rate
        sizes_in[s["name"]] = {"default": record_kb(samples[s["name"]].records())}
    cache: dict[str, Any] = {}
    if CACHE.exists():  # --no-cache measures again but keeps (and updates) what others measured
        cache = json.loads(CACHE.read_text())
    try:
        resolve_runtimes(workflow, samples, cache, args)
    except (ModelLoadError, VariantError, DeviceError) as exc:
        raise PlanError(f"{args.workflow}: {exc}") from None
    machines = sorted({w.machine for w in infra.workers})
    latency: dict[str, Any] = {}
    sizes_out: dict[str, dict[str, float]] = {}
    accuracy: dict[str, dict[str, float]] = {}
    outputs: dict[str, dict[str, list]] = {}
    classes = workflow.doc.get("accuracy", {}).get("classes")
    progress = tqdm(total=sum(len(op["variants"]) * (1 + len(machines)) for op in workflow.ml_operators),
                    desc="profiling", unit="step")
    for spec_op in workflow.ml_operators:  # in order: an ML operator after another sees its best output
        name = spec_op["name"]
        src = spec_op["inputs"][0] if isinstance(spec_op["inputs"][0], str) else spec_op["inputs"][0]["from"]
        op = measured_operator(spec_op, samples.get(src))
        for variant in op["variants"]:
            try:
                diff = parse_variant(variant).diff
                if src in samples:
                    records = samples[src].records(diff)
                    if diff is not None:
                        sizes_in[src][variant] = record_kb(records)
                else:
                    records = outputs[src][max(accuracy[src], key=accuracy[src].get)]
                progress.set_postfix_str(f"{name} {variant}")
                outputs.setdefault(name, {})[variant] = run_variant(op, variant, records)
                progress.update()
                for machine in machines:
                    device, threads = machine[:2]
                    key = hashlib.sha1(json.dumps([op, variant, *machine, batch_sizes, args.timing_frames,
                                                   sorted(rates.items())], sort_keys=True, default=str
                                                  ).encode()).hexdigest()
                    if args.no_cache or key not in cache:
                        frames = records[:args.timing_frames]
                        ms = (time_variant(op, variant, device, threads, frames, batch_sizes) if len(machine) == 2
                              else timer.time(op, variant, device, threads, machine[2], frames, batch_sizes))
                        cache[key] = {str(b): v for b, v in ms.items()}
                    latency.setdefault(name, {}).setdefault(variant, {})[str(machine)] = {
                        int(b): v for b, v in cache[key].items()}
                    progress.update()
            except (ModelLoadError, VariantError, DeviceError) as exc:
                raise PlanError(f"{args.workflow}: operators.{name}: variant {variant!r}: {exc}") from None
            sizes_out.setdefault(name, {})[variant] = record_kb(outputs[name][variant])
            release_models()
        reference = outputs[name][max(op["variants"], key=reference_rank)]
        accuracy[name] = {v: accuracy_of(outputs[name][v], truth, classes, reference) for v in op["variants"]}
    progress.close()
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(json.dumps(cache))
    measured = links(infra.model) if links else None
    settings = {"frames_per_camera": args.frames, "timing_frames": args.timing_frames,
                "batch_sizes": batch_sizes, "ground_truth": bool(truth)}
    if measured is not None:
        settings["testbed"] = {"quotas": "each worker type timed in a cgroup with its cpus", "links": measured}
    out = Path(args.output)
    problem = assemble(workflow, infra, out.parent, rates, latency, sizes_in, sizes_out, accuracy, settings,
                       measured)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(problem, indent=1) + "\n")
    plot = plot_profile(problem, out.with_suffix(".png"))
    for op in workflow.ml_operators:
        print(variant_table(op, accuracy[op["name"]], latency[op["name"]], problem))
    for key, m in (measured or {}).items():
        print(f"link {key}: {m['mbps']:.1f} Mbit/s measured (configured {m['configured_mbps'] or 'unshaped'}), "
              f"round trip {m['rtt_ms']:.1f} ms")
    print(f"problem written to {out}; accuracy vs cost plotted in {plot}")
    return 0


def variant_table(op: dict[str, Any], accuracy: dict[str, float], latency: dict[str, dict[str, dict]],
                  problem: dict[str, Any]) -> str:
    """One row per variant: its knobs, accuracy, ms per frame on each worker type (best batch
    size) and the KB per frame it receives, as the planner will see them."""
    from streamflow_workers.variants import TAG_OF_RUNTIME, parse_variant
    machines = sorted({m for per in latency.values() for m in per})
    sizes = {r["to_variant"]: r["message_size_kb"] for e in problem["dataflow"]["edges"] if e["to"] == op["name"]
             for r in e["message_size_kb_by_variant"] if r["from_variant"] == "default"}
    head = ["variant", "size", "precision", "runtime", "filter", "accuracy %"] + [
        "ms " + "/".join(m.strip("()").replace("'", "").split(", ")) for m in machines] + ["KB in"]
    rows = [head]
    for v in op["variants"]:
        spec = parse_variant(v)
        network = spec.model == "yolox_nano"
        runtime = TAG_OF_RUNTIME.get(spec.runtime, "-") if network else "-"
        kb = sizes.get(v, sizes.get("default"))
        rows.append([v, str(spec.size or "-"), spec.precision if network else "-", runtime,
                     f"+diff{spec.diff:g}" if spec.diff is not None else "-", f"{accuracy[v]:.1f}"]
                    + [f"{min(latency[v][m].values()):.1f}" for m in machines] + [f"{kb:.1f}" if kb else "-"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [f"{op['name']}:"] + ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def plot_profile(problem: dict[str, Any], path: Path) -> Path:
    """Accuracy against ms per frame for every variant, one marker per worker type (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    profiles = {p["operator"]: p["variants"] for p in problem["accuracy"]["per_operator_profiles"]}
    ops = list(problem["execution_latency_ms_by_batch"])
    fig, axes = plt.subplots(1, len(ops), figsize=(6.5 * len(ops), 4.5), squeeze=False)
    for ax, op in zip(axes[0], ops):
        per_variant = problem["execution_latency_ms_by_batch"][op]
        hosts = {w["name"]: w for w in problem["workers"]}
        kinds: dict[tuple, str] = {}   # one marker per kind of worker (device, threads, quota)
        for name in sorted({n for v in per_variant.values() for n in v}):
            w = hosts.get(name, {})
            kinds.setdefault((w.get("device"), w.get("threads"), w.get("cpus")), name)
        for marker, ((device, threads, cpus), name) in zip("osD^v<>", sorted(kinds.items(), key=str)):
            xs, ys, names = [], [], []
            for variant, by_worker in per_variant.items():
                ms = min(by_worker[name].values())
                acc = profiles[op][variant]["samples"][-1]["output_accuracy"]
                xs.append(ms)
                ys.append(acc)
                names.append(variant)
            label = f"{name}: {device}, {threads} thread(s)" + (f", {cpus} cpus" if cpus is not None else "")
            ax.scatter(xs, ys, marker=marker, label=label)
            if marker == "o":  # label each variant once
                for x, y, n in zip(xs, ys, names):
                    ax.annotate(n, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(problem["accuracy"]["threshold"], color="grey", linestyle="--", linewidth=1, label="floor")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())   # minor labels overlap
        ax.set_xlabel("ms per frame (best batch size)")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"{problem['problem']}: {op}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    sys.exit(main())
