"""Generate JellyBean-shaped planning problems (VQA, vehicle tracking) on 2-3 tier infrastructures.

Seeded and reproducible. Workers come from a catalogue of machine types per tier (edge CPUs and
edge GPUs, hub CPUs/GPUs, cloud CPUs/GPUs), priced and sped up relative to reference profiles:
- VQA: JellyBean's speech VQA workflow; latencies, message sizes and accuracy profiles are those of
  JellyBean's published example (shared/data/planner/vqa_medium.json, CPU-5 and GPU-1 columns).
- vehicle tracking: per camera detect (YOLOX-nano at 320/416/640/960) -> re-identify (OSNet-x0.25 or
  MobileNetV2 embedder) -> one cross-camera join -> track. Detector latencies and AP50 follow the
  measurements in shared/data/README.md; the other figures are modelled (stated in docs/planner.md).
Link prices are per tier and additive (edge->cloud = edge->hub + hub->cloud), JellyBean's scaling
factor 0.1 applies. Usage:

    python tools/gen_problems.py --workflow vqa --workers 9 --tiers 2 --seed 0 -o p.json
    python tools/gen_problems.py --suite examples/planner/generated
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from pathlib import Path

# ---- infrastructure catalogue: (type, tier role, price/h, cpu speed, gpu speed or 0) -----------
CATALOGUE = {
    "edge": [("edge-cpu-small", 0.048, 0.35, 0.0), ("edge-cpu", 0.096, 0.55, 0.0),
             ("edge-gpu", 0.35, 0.0, 0.45)],
    "hub": [("hub-cpu", 0.384, 1.0, 0.0), ("hub-gpu", 1.2, 0.0, 0.7)],
    # GPU-heavy like JellyBean's medium cloud (3 GPU servers, 1 CPU server)
    "cloud": [("cloud-cpu", 0.768, 1.5, 0.0), ("cloud-gpu", 2.497, 0.0, 1.0), ("cloud-gpu", 2.497, 0.0, 1.0)],
}
TIER_ROLES = {2: ["edge", "cloud"], 3: ["edge", "hub", "cloud"]}
TIER_SHARE = {2: [0.55, 0.45], 3: [0.45, 0.3, 0.25]}
TIER_PRICE_PER_GB = {2: [[0.0, 1.0], [10.0, 0.0]],
                     3: [[0.0, 0.4, 1.0], [10.0, 0.0, 0.6], [10.0, 10.0, 0.0]]}

# ---- VQA: reference latencies (ms) on a reference CPU and GPU, from JellyBean's example ----------
VQA_LATENCY = {
    "ExtractImageFeature": {"resnet18": (36.69, 16.14), "resnet34": (53.73, 19.26), "resnet50": (76.23, 18.12),
                            "resnet101": (122.64, 23.70), "resnet152": (168.16, 31.07)},
    "SpeechRecognition": {"wav2vec2-base-960h": (57.93, 14.73), "wav2vec2-large-960h-lv60-self": (166.47, 26.89)},
    "VQA": {"default": (11.34, 4.59)},
}
VQA_IMAGE_ACC = {"resnet18": 89.074, "resnet34": 91.42, "resnet50": 92.866, "resnet101": 93.548, "resnet152": 94.05}
VQA_SPEECH_ACC = {"wav2vec2-base-960h": -3.823, "wav2vec2-large-960h-lv60-self": -1.8621}
VQA_END_TO_END = {("resnet18", "wav2vec2-base-960h"): 54.02, ("resnet18", "wav2vec2-large-960h-lv60-self"): 56.59,
                  ("resnet34", "wav2vec2-base-960h"): 54.37, ("resnet34", "wav2vec2-large-960h-lv60-self"): 56.85,
                  ("resnet50", "wav2vec2-base-960h"): 55.42, ("resnet50", "wav2vec2-large-960h-lv60-self"): 57.94,
                  ("resnet101", "wav2vec2-base-960h"): 55.91, ("resnet101", "wav2vec2-large-960h-lv60-self"): 58.19,
                  ("resnet152", "wav2vec2-base-960h"): 55.76, ("resnet152", "wav2vec2-large-960h-lv60-self"): 58.33}
VQA_FEATURE_KB = {"resnet18": 2.00390625, "resnet34": 2.00390625, "resnet50": 8.00390625,
                  "resnet101": 8.00390625, "resnet152": 8.00390625}

# ---- vehicle tracking -------------------------------------------------------------------------
DETECT = {  # variant: (cpu ms, gpu ms, AP50 %, input size)
    "yolox_nano@320": (12.0, 3.0, 35.0, 320), "yolox_nano@416": (20.0, 3.5, 48.0, 416),
    "yolox_nano@640": (47.0, 5.0, 65.0, 640), "yolox_nano@960": (110.0, 8.0, 80.0, 960)}
REID = {  # variant: (cpu ms, gpu ms, fraction of detections re-identified correctly, model file)
    "osnet_x0_25": (9.0, 2.0, 0.85, "osnet_x0_25_msmt17.onnx"), "mobilenetv2": (25.0, 3.0, 0.92, "mobilenetv2")}
CROPS_KB = {"yolox_nano@320": 18.0, "yolox_nano@416": 22.0, "yolox_nano@640": 28.0, "yolox_nano@960": 34.0}
FRAME_KB = 60.0
JOIN_MS = (4.0, 1.5)
TRACK_MS = (6.0, 2.5)


def _infrastructure(num_workers: int, tiers: int, rng: random.Random, heterogeneous: bool) -> list[dict]:
    roles = TIER_ROLES[tiers]
    counts = [max(1, round(num_workers * s)) for s in TIER_SHARE[tiers]]
    counts[-1] = max(1, num_workers - sum(counts[:-1]))
    while sum(counts) > num_workers:
        counts[counts.index(max(counts))] -= 1
    workers = []
    for tier, (role, count) in enumerate(zip(roles, counts)):
        types = CATALOGUE[role]
        picks = [types[i % len(types)] for i in range(count)]
        rng.shuffle(picks)
        for i, (tname, price, cpu, gpu) in enumerate(sorted(picks)):
            factor = rng.uniform(0.9, 1.1) if heterogeneous else rng.choice([0.9, 1.0, 1.1])
            workers.append({"name": f"{tname}-{i + 1}", "tier": tier, "cost_per_hour": round(price * factor, 4),
                            "device": "cuda" if gpu else "cpu", "_cpu": cpu, "_gpu": gpu,
                            "_speed": rng.uniform(0.9, 1.1) if heterogeneous else 1.0})
    names = {}
    for w in workers:  # make names unique per tier role
        base = w["name"].rsplit("-", 1)[0]
        names[base] = names.get(base, 0) + 1
        w["name"] = f"{base}-{names[base]}"
    return workers


def _latency(w: dict, cpu_ms: float, gpu_ms: float) -> float:
    ms = gpu_ms / w["_gpu"] if w["_gpu"] else cpu_ms / w["_cpu"]
    return round(ms / w["_speed"], 4)


def _edge(src: str, dst: str, sizes: dict[tuple[str, str], float]) -> dict:
    return {"from": src, "to": dst, "throughput_normalization_ratio": 1.0,
            "message_size_kb_by_variant": [{"from_variant": a, "to_variant": b, "message_size_kb": kb}
                                           for (a, b), kb in sizes.items()]}


def _vqa(workers: list[dict], rate: float) -> dict:
    ops = [
        {"name": "ReadImage", "kind": "source", "injection_rate_per_s": rate, "located_on_tier": 0},
        {"name": "ExtractImageFeature", "kind": "ml_operator", "input_operators": ["ReadImage"],
         "variants": list(VQA_LATENCY["ExtractImageFeature"])},
        {"name": "ReadSpeech", "kind": "source", "injection_rate_per_s": rate, "located_on_tier": 0},
        {"name": "SpeechRecognition", "kind": "ml_operator", "input_operators": ["ReadSpeech"],
         "variants": list(VQA_LATENCY["SpeechRecognition"])},
        {"name": "VQA", "kind": "ml_operator", "input_operators": ["ExtractImageFeature", "SpeechRecognition"],
         "variants": ["default"]},
    ]
    edges = [
        _edge("ReadImage", "ExtractImageFeature", {("default", v): 794.0348300933838 for v in VQA_IMAGE_ACC}),
        _edge("ReadSpeech", "SpeechRecognition", {("default", v): 97.07174682617188 for v in VQA_SPEECH_ACC}),
        _edge("ExtractImageFeature", "VQA", {(v, "default"): kb for v, kb in VQA_FEATURE_KB.items()}),
        _edge("SpeechRecognition", "VQA", {(v, "default"): 0.1 for v in VQA_SPEECH_ACC}),
    ]
    latency = {op: {v: {w["name"]: _latency(w, *ms) for w in workers} for v, ms in vs.items()}
               for op, vs in VQA_LATENCY.items()}
    profiles = [
        {"operator": "VQA", "input_operators": ["ExtractImageFeature", "SpeechRecognition"],
         "variants": {"default": {"samples": [{"inputs_accuracy": [VQA_IMAGE_ACC[i], VQA_SPEECH_ACC[s]],
                                               "output_accuracy": acc} for (i, s), acc in VQA_END_TO_END.items()]}}},
        {"operator": "ExtractImageFeature", "input_operators": [],
         "variants": {v: {"samples": [{"inputs_accuracy": [], "output_accuracy": a}]} for v, a in VQA_IMAGE_ACC.items()}},
        {"operator": "SpeechRecognition", "input_operators": [],
         "variants": {v: {"samples": [{"inputs_accuracy": [], "output_accuracy": a}]} for v, a in VQA_SPEECH_ACC.items()}},
    ]
    accuracy = {"sink": "VQA", "threshold": 56.0, "per_operator_profiles": profiles}
    return {"dataflow": {"operators": ops, "edges": edges, "sink": "VQA"}, "execution_latency_ms": latency,
            "accuracy": accuracy}


def _vehicle(workers: list[dict], rate: float, cameras: int) -> dict:
    ops: list[dict] = []
    edges: list[dict] = []
    latency: dict = {}
    for c in range(1, cameras + 1):
        cam, det, reid = f"cam{c}", f"detect{c}", f"reid{c}"
        ops.append({"name": cam, "kind": "source", "injection_rate_per_s": rate, "located_on_tier": 0,
                    "runtime": {"kind": "trace",
                                "params": {"path": f"../../traces/clips/ngsim_cam{(c - 1) % 4 + 1}", "encode": "jpeg"}}})
        ops.append({"name": det, "kind": "ml_operator", "input_operators": [cam], "variants": list(DETECT),
                    "runtime": {"kind": "detect", "params": {"classes": ["car", "truck", "bus"], "agnostic_nms": True,
                                                             "keep_frame": True}}})
        ops.append({"name": reid, "kind": "ml_operator", "input_operators": [det], "variants": list(REID),
                    "runtime": {"kind": "embed", "params": {}}})
        edges.append(_edge(cam, det, {("default", v): FRAME_KB for v in DETECT}))
        edges.append(_edge(det, reid, {(d, r): CROPS_KB[d] for d in DETECT for r in REID}))
        latency[det] = {v: {w["name"]: _latency(w, d[0], d[1]) for w in workers} for v, d in DETECT.items()}
        latency[reid] = {v: {w["name"]: _latency(w, r[0], r[1]) for w in workers} for v, r in REID.items()}
    reids = [f"reid{c}" for c in range(1, cameras + 1)]
    ops.append({"name": "match", "kind": "ml_operator", "input_operators": reids, "variants": ["default"],
                "runtime": {"kind": "join", "params": {"on": "epoch"}}})
    ops.append({"name": "track", "kind": "ml_operator", "input_operators": ["match"], "variants": ["default"],
                "runtime": {"kind": "track", "params": {}}})
    for r in reids:
        edges.append(_edge(r, "match", {(v, "default"): 8.0 for v in REID}))
    edges.append(_edge("match", "track", {("default", "default"): 4.0}))
    latency["match"] = {"default": {w["name"]: _latency(w, *JOIN_MS) for w in workers}}
    latency["track"] = {"default": {w["name"]: _latency(w, *TRACK_MS) for w in workers}}

    det_acc = {v: d[2] for v, d in DETECT.items()}
    reid_values = sorted({round(a * r[2], 4) for a in det_acc.values() for r in REID.values()})
    profiles = []
    for c in range(1, cameras + 1):
        profiles.append({"operator": f"detect{c}", "input_operators": [],
                         "variants": {v: {"samples": [{"inputs_accuracy": [], "output_accuracy": a}]}
                                      for v, a in det_acc.items()}})
        profiles.append({"operator": f"reid{c}", "input_operators": [f"detect{c}"],
                         "variants": {v: {"samples": [{"inputs_accuracy": [a], "output_accuracy": round(a * r[2], 4)}
                                                      for a in det_acc.values()]} for v, r in REID.items()}})
    join_samples = [{"inputs_accuracy": list(ins), "output_accuracy": round(0.98 * min(ins) + 0.02 * sum(ins) / len(ins), 4)}
                    for ins in itertools.product(reid_values, repeat=cameras)]
    profiles.append({"operator": "match", "input_operators": reids, "variants": {"default": {"samples": join_samples}}})
    profiles.append({"operator": "track", "input_operators": ["match"],
                     "variants": {"default": {"samples": [{"inputs_accuracy": [s["output_accuracy"]],
                                                           "output_accuracy": s["output_accuracy"]}
                                                          for s in join_samples]}}})
    accuracy = {"sink": "track", "threshold": 50.0, "per_operator_profiles": profiles}
    return {"dataflow": {"operators": ops, "edges": edges, "sink": "track"}, "execution_latency_ms": latency,
            "accuracy": accuracy}


def generate_problem(workflow: str, workers: int, tiers: int = 2, seed: int = 0, rate: float | None = None,
                     cameras: int = 2, heterogeneous: bool = False) -> dict:
    """A problem document in the planner's format, reproducible from its arguments."""
    if workflow not in ("vqa", "vehicle"):
        raise ValueError(f"unknown workflow {workflow!r}")
    if tiers not in TIER_ROLES:
        raise ValueError("tiers must be 2 or 3")
    if workers < tiers:
        raise ValueError("need at least one worker per tier")
    rng = random.Random(f"{workflow}-{workers}-{tiers}-{seed}-{cameras}-{heterogeneous}")
    infra = _infrastructure(workers, tiers, rng, heterogeneous)
    if workflow == "vqa":
        body = _vqa(infra, rate if rate is not None else DEFAULT_RATE["vqa"])
    else:
        body = _vehicle(infra, rate if rate is not None else DEFAULT_RATE["vehicle"], cameras)
    name = f"{workflow}_w{workers}_t{tiers}_s{seed}" + (f"_c{cameras}" if workflow == "vehicle" else "")
    return {
        "problem": name,
        "description": f"generated by tools/gen_problems.py: {workflow}, {workers} workers, {tiers} tiers, seed {seed}",
        "units": {"execution_latency": "ms per request", "rates_and_throughputs": "requests per second",
                  "message_size": "KB per request received downstream", "worker_cost": "money per hour",
                  "link_cost": "money per GB before comm_cost_scaling_factor"},
        "tier_names": TIER_ROLES[tiers],
        "workers": [{k: v for k, v in w.items() if not k.startswith("_")} for w in infra],
        "links": {"comm_cost_scaling_factor": 0.1, "tier_cost_per_gb": TIER_PRICE_PER_GB[tiers],
                  "unlisted_pair_cost_per_gb": 0.0},
        **body,
    }


SUITE_SIZES = (5, 9, 15, 30)
DEFAULT_RATE = {"vqa": 30.0, "vehicle": 8.0}   # requests/s per source


def write_suite(out_dir: Path, seed: int = 0) -> list[Path]:
    """The evaluation's instances: both workflows at 5, 9, 15, 30 workers (2 tiers, 3 from 9 up)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for workflow in ("vqa", "vehicle"):
        for n in SUITE_SIZES:
            for tiers in (2, 3):
                if tiers == 3 and n < 9:
                    continue
                doc = generate_problem(workflow, n, tiers, seed)
                path = out_dir / f"{doc['problem']}.json"
                path.write_text(json.dumps(doc, indent=1) + "\n")
                paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workflow", choices=("vqa", "vehicle"), default="vqa")
    p.add_argument("--workers", type=int, default=9)
    p.add_argument("--tiers", type=int, choices=(2, 3), default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate", type=float, help="injection rate per source (default 30/s VQA, 8/s per camera)")
    p.add_argument("--cameras", type=int, default=2, help="vehicle tracking: number of cameras")
    p.add_argument("--heterogeneous", action="store_true", help="every worker its own price and speed")
    p.add_argument("-o", "--output", help="output file (default stdout)")
    p.add_argument("--suite", metavar="DIR", help="write the evaluation suite into DIR instead")
    args = p.parse_args(argv)
    if args.suite:
        for path in write_suite(Path(args.suite), args.seed):
            print(path)
        return 0
    doc = generate_problem(args.workflow, args.workers, args.tiers, args.seed, args.rate, args.cameras,
                           args.heterogeneous)
    text = json.dumps(doc, indent=1) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
