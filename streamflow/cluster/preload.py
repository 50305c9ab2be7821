"""Load-then-switch: a worker loads the models of a plan it is about to run while the running plan
goes on, so the switch that follows does not pause the output for the loading.

The coordinator sends `preload` (the new plan and the roles this worker will take) when it
accepts a switch, and waits for `preloaded` from every worker of the new plan (at most
`PRELOAD_MAX_S`) before it drains or switches. The worker builds the new plan's graph (which
checks its operators, cluster/worker_process.py does the same at deployment) and calls
`warm(role)` on a throwaway instance of each operator placed on its roles, in a thread beside the
event loop and the operator threads: under a CPU quota the running plan slows while the models
load, but keeps emitting.

Why it is safe: `warm` fills process-wide caches of stateless models only (the detectors'
LOADED table); no running instance, channel, capability or progress count is touched, so the
switch protocol (cluster/handover.py) and its argument are unchanged. A preload that fails or is
late changes nothing: the deployment then loads what it needs as it always did.

Warm standby. A worker the running plan does not use (a spare) is sent the running plan too,
with `standby` and no roles, when it registers and whenever a new generation starts: it loads
the models of every operator of that plan as if it were placed on it (with its own device), as a
serving system keeps idle replicas warm, and answers which variants it holds. A scale-up that
adds it is then not asked to preload at all (cluster/reconfiguring.py) and finds them loaded,
instead of waiting for the load (0.6-1.0 s of int8 YOLOX-nano on a 0.25-CPU testbed edge, part
of the reaction to a load step). The same argument holds: only the caches of
stateless models are filled. Models loaded for standby stay loaded (a few MB per variant) until
an instance of this process uses them and a later start unloads what it does not use. Preloads
run one at a time per process, so a switch's preload that comes while a standby load is under
way waits for it and finds the model loaded instead of loading it a second time.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

PRELOAD_MAX_S = 20.0  # a switch waits at most this long for the new plan's models to load
_ONE_AT_A_TIME = threading.Lock()  # preloads of this process (a switch's waits for a standby's)


def warm_plan(raw: dict[str, Any], source_path: str, base_dir: str, speed: Any, roles: list[str],
              standby: dict[str, Any] | None = None) -> list[str]:
    """Load the models the operators placed on `roles` would load at their start; returns the
    names of the operators warmed. `standby` (a spare's own plan entry: name, tier, device): every
    operator of the plan with a variant, as if placed on that worker."""
    from streamflow.plan import build_graph, parse_plan
    if standby is not None:
        raw = {**raw, "workers": [w for w in raw.get("workers", []) if w.get("name") != standby["name"]] + [standby]}
        roles = [standby["name"]]
    plan = parse_plan(raw, source_path, speed, base_dir)
    graph, placement = build_graph(plan)
    with_variant = {n.name for n in plan.nodes if n.variant}  # the models a re-plan may place anywhere
    warmed = []
    for spec in graph.operators:
        for role in roles:
            if (spec.name in with_variant if standby is not None
                    else any(worker == role for worker, _share in placement.get(spec.name, []))):
                op = spec.factory()
                if callable(getattr(op, "warm", None)):
                    op.warm(role)
                    warmed.append(spec.name)
    return warmed


def preload_in_thread(body: dict[str, Any], roles: list[str], done: Callable[[dict[str, Any]], None]) -> None:
    """Run `warm_plan` off the event loop; `done(answer)` is called in that thread when it ends
    (the caller hands it back to its loop: sockets belong to one thread)."""
    def work() -> None:
        t = time.monotonic()
        try:
            with _ONE_AT_A_TIME:
                warmed = warm_plan(body["plan"], str(body.get("source_path", "plan.json")),
                                   str(body.get("base_dir", ".")), body.get("speed"), roles, body.get("standby"))
            answer: dict[str, Any] = {"warmed": warmed}
        except Exception as exc:  # noqa: BLE001 - the deployment will say it properly
            log.warning("preloading the next plan failed: %s", str(exc).splitlines()[0] if str(exc) else exc)
            answer = {"warmed": [], "error": str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}
        answer["seconds"] = round(time.monotonic() - t, 3)
        answer["switch"] = body.get("switch")
        answer["standby"] = body.get("standby") is not None
        answer["key"] = body.get("key")  # which set of variants a standby load was for
        done(answer)
    threading.Thread(target=work, name="preload", daemon=True).start()
