"""`streamflow profile WORKFLOW --infra INFRA -o problem.json`: measure every ML operator variant
on every worker type (device, threads), with real frames from the workflow's traces, and write
the planning problem `streamflow plan` takes as is.

Latency per frame at each batch size, the size of what each edge carries, and accuracy (AP50
against the trace's ground truth, or F1 against the most expensive variant where there is none).
Results are cached per (operator, variant, machine, settings), so re-profiling is quick.

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


def sample_records(source: dict[str, Any], base: Path, frames: int) -> tuple[list[dict], dict[str, Any], float]:
    """The first `frames` frames of each camera as the source would emit them, the cameras'
    ground truth, and the source's frame rate (frames per second at speed 1, all cameras)."""
    from traces.format import Trace
    from traces.replay import FrameReader, iter_merged
    from workers.operators.trace_source import encode_frame, trace_groundtruth
    paths = [str((base / p).resolve()) for p in source.get("paths", [source.get("path")])]
    traces = [Trace.open(p) for p in paths]
    encoding, quality = source.get("encode", "raw"), source.get("quality", 90)
    records = [{"camera": f.camera, "index": f.index, "ts": f.ts, "frame": encode_frame(f.image, encoding, quality)}
               for f in iter_merged([FrameReader(t, stop=frames) for t in traces])]
    truth = trace_groundtruth({"paths": paths}, None)
    rate = sum(t.frame_count / t.duration for t in traces if t.duration > 0)
    return records, truth, rate


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
    from workers.profiling.quota import measure_links, on_testbed
    with on_testbed(args.state) as (state, timer):
        return profile(args, timer, lambda infra: measure_links(state, infra))


def profile(args: argparse.Namespace, timer: Any, links: Any) -> int:
    """Measure and write the problem; `timer` times under quotas, `links` measures the links."""
    from workers.errors import DeviceError, ModelLoadError, VariantError
    from workers.profiling.measure import record_kb, run_variant, time_variant
    from workers.profiling.problem import assemble
    from workers.profiling.spec import load_infrastructure, load_workflow
    from workers.variants import parse_variant
    workflow = load_workflow(args.workflow)
    infra = load_infrastructure(args.infra, quotas=timer is not None)
    batch_sizes = sorted({int(b) for b in args.batch_sizes.split(",")} |
                         {int(op.get("batch", {}).get("max_size", 1)) for op in workflow.ml_operators})
    samples, truth, rates, sizes_in = {}, {}, {}, {}
    for s in workflow.sources:
        if s.get("kind") != "trace":
            raise PlanError(f"{args.workflow}: sources.{s['name']}: the profiler replays trace sources only")
        try:
            samples[s["name"]], gt, rates[s["name"]] = sample_records(s, workflow.base_dir, args.frames)
        except Exception as exc:  # a missing trace or unreadable video: one line
            raise PlanError(f"{args.workflow}: sources.{s['name']}: {exc}") from None
        truth.update(gt)
        sizes_in[s["name"]] = record_kb(samples[s["name"]])
    cache: dict[str, Any] = {}
    if CACHE.exists():  # --no-cache measures again but keeps (and updates) what others measured
        cache = json.loads(CACHE.read_text())
    machines = sorted({w.machine for w in infra.workers})
    latency: dict[str, Any] = {}
    sizes_out: dict[str, dict[str, float]] = {}
    accuracy: dict[str, dict[str, float]] = {}
    outputs: dict[str, dict[str, list]] = {}
    classes = workflow.doc.get("accuracy", {}).get("classes")
    progress = tqdm(total=sum(len(op["variants"]) * (1 + len(machines)) for op in workflow.ml_operators),
                    desc="profiling", unit="step")
    for op in workflow.ml_operators:  # in order: an ML operator after another sees its best output
        name = op["name"]
        src = op["inputs"][0] if isinstance(op["inputs"][0], str) else op["inputs"][0]["from"]
        records = samples[src] if src in samples else outputs[src][max(accuracy[src], key=accuracy[src].get)]
        for variant in op["variants"]:
            try:
                parse_variant(variant)
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
        reference = outputs[name][max(op["variants"], key=lambda v: parse_variant(v).relative_cost)]
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
        print(f"{op['name']}: " + ", ".join(f"{v} {accuracy[op['name']][v]:.1f}%" for v in op["variants"]))
    for key, m in (measured or {}).items():
        print(f"link {key}: {m['mbps']:.1f} Mbit/s measured (configured {m['configured_mbps'] or 'unshaped'}), "
              f"round trip {m['rtt_ms']:.1f} ms")
    print(f"problem written to {out}; accuracy vs cost plotted in {plot}")
    return 0


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
