"""`streamflow testbed up INFRA.json`: one network namespace per host, a router namespace per
tier, shaped links between tiers, and each host's `streamflow-worker` started inside its
namespace under its CPU quota and memory limit, registered and waiting for runs.

Control traffic (register, deploy, stats, progress copies to the coordinator) goes over an
unshaped management bridge in the root namespace: the coordinator observes the emulated
infrastructure from outside it, and its own chatter should not eat the links it measures.
Everything a run moves between workers (data, credits, progress between peers) travels on the
data plane: each worker binds its data socket to its host address, so peers dial that address
and the kernel routes it through the tier routers and the shaped links.

Each step records what it is about to make in the state file first; any failure, Ctrl-C or
SIGTERM takes down everything made so far before the error is reported.
"""
from __future__ import annotations

import os
import signal
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from streamflow.testbed import cgroups, netns, shaping
from streamflow.testbed.down import teardown
from streamflow.testbed.infra import Host, Infra, load_infra
from streamflow.testbed.state import DEFAULT_DIR, Lock, State, TestbedError
from streamflow.testbed.topology import MGMT_BRIDGE, MGMT_GATEWAY, ROUTER_BRIDGE, Topology, plan_topology

CGROUP_ROOT = "sf-testbed"
REGISTER_TIMEOUT_S = 180.0


def require_root() -> None:
    if os.geteuid() != 0:
        raise TestbedError("the testbed needs root (network namespaces, tc and cgroups); run it as root")


def bring_up(infra_path: str | Path, state_dir: str | Path = DEFAULT_DIR, wait_s: float = REGISTER_TIMEOUT_S,
             progress: Any = None) -> State:
    """Build the testbed for `infra_path`; returns its state once every worker has registered."""
    require_root()
    infra = load_infra(infra_path)
    try:
        topo = plan_topology(infra)
    except ValueError as exc:
        raise TestbedError(f"{infra_path}: {exc}") from None
    say = progress or (lambda _msg: None)
    with Lock(state_dir):
        if State.load(state_dir) is not None:
            raise TestbedError(f"a testbed is already up (state in {state_dir}); "
                               f"take it down first: streamflow testbed down")
        _preflight(topo)
        backend = cgroups.detect()
        state = State.create(state_dir, infra=str(Path(infra_path).resolve()), infra_doc=infra.doc,
                             cgroup_version=backend.version, hosts={})
        previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        _INTERRUPTED.clear()
        try:
            _build(state, infra, topo, backend, lambda msg: (_check_interrupt(), say(msg)))
            _await_registration(state, infra, wait_s, say)
            _check_interrupt()
            state.update(status="up", up_at=time.time())
        except BaseException:
            for sig in previous:  # a second Ctrl-C must not cut the clean-up short
                signal.signal(sig, signal.SIG_IGN)
            say("failed: taking down what was made")
            teardown(state)
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return state


_INTERRUPTED: list[int] = []


def _interrupt(sig: int, _frame: Any) -> None:
    """Ctrl-C or SIGTERM: raise now, and remember it, in case the exception lands somewhere Python
    swallows it (a destructor); `_check_interrupt` raises it again at the next step."""
    _INTERRUPTED.append(sig)
    raise KeyboardInterrupt


def _check_interrupt() -> None:
    if _INTERRUPTED:
        raise KeyboardInterrupt


def _preflight(topo: Topology) -> None:
    """Refuse to start over names another testbed (or its leftovers) holds."""
    existing = set(netns.namespaces())
    taken = [n for n in topo.namespaces() if n in existing]
    if taken:
        raise TestbedError(f"network namespace {taken[0]} exists: another testbed is up, or one was not "
                           f"taken down (streamflow testbed down [--state DIR], or ip netns delete {taken[0]})")
    if netns.link_exists(MGMT_BRIDGE):
        raise TestbedError(f"interface {MGMT_BRIDGE} exists: another testbed is up, or one was not taken down")


def _build(state: State, infra: Infra, topo: Topology, backend: cgroups.Backend, say) -> None:
    root_dirs = [str(d) for d in backend.dirs(CGROUP_ROOT)]
    state.record("cgroup", dirs=root_dirs)
    cgroups.create(backend, CGROUP_ROOT, weight=1000)
    say(f"namespaces: {len(topo.tiers)} tier routers, {len(topo.hosts)} hosts")
    for ns in topo.namespaces():
        _check_interrupt()
        state.record("netns", name=ns)
        netns.add_namespace(ns)
    for tier in topo.tiers.values():
        netns.add_bridge(ROUTER_BRIDGE, tier.namespace, f"{tier.gateway}/24")
        netns.enable_forwarding(tier.namespace)
    for h in topo.hosts.values():
        _check_interrupt()
        router = topo.tiers[h.tier]
        state.record("veth", name=h.router_end, ns=router.namespace)
        netns.add_veth("eth0", h.namespace, h.router_end, router.namespace)
        netns.up("eth0", h.namespace, f"{h.address}/24")
        netns.route(h.namespace, "default", "via", router.gateway)
        netns.up(h.router_end, router.namespace, master=ROUTER_BRIDGE)
    state.record("link", name=MGMT_BRIDGE, ns=None)
    netns.add_bridge(MGMT_BRIDGE, None, f"{MGMT_GATEWAY}/24")
    for h in topo.hosts.values():
        state.record("veth", name=h.mgmt_end, ns=None)
        netns.add_veth("mgmt0", h.namespace, h.mgmt_end, None)
        netns.up("mgmt0", h.namespace, f"{h.mgmt}/24")
        netns.up(h.mgmt_end, None, master=MGMT_BRIDGE, isolated=True)
    say(f"links: {len(topo.links)} tier pairs through the delay line")
    _links(state, infra, topo, backend)
    coordinator = f"tcp://{MGMT_GATEWAY}:{_free_port(MGMT_GATEWAY)}"
    from streamflow.communication.security import COORDINATOR, generate
    keys = state.dir / "keys"  # this testbed's CURVE keys: `run --testbed` and its workers share them
    shutil.rmtree(keys, ignore_errors=True)  # left by a testbed that was not taken down cleanly
    generate(keys, COORDINATOR)
    state.update(coordinator=coordinator, keys=str(keys))
    for host in infra.hosts:
        _start_worker(state, host, topo, backend, coordinator)
    say(f"workers: {len(infra.hosts)} started; waiting for them to register at {coordinator}")


def _links(state: State, infra: Infra, topo: Topology, backend: cgroups.Backend) -> None:
    """Start the delay line that owns the tier-pair devices, then address, route and shape them."""
    if not topo.links:
        return
    import json
    config = {"ready": str(state.dir / "delayline.ready"),
              "links": [{"a": l.dev_lower, "ns_a": topo.tiers[l.lower].namespace,
                         "b": l.dev_upper, "ns_b": topo.tiers[l.upper].namespace,
                         "delay_ms": infra.link(l.lower, l.upper).rtt_ms / 2} for l in topo.links]}
    ready = Path(config["ready"])
    ready.unlink(missing_ok=True)
    (state.dir / "delayline.json").write_text(json.dumps(config, indent=1))
    for l in topo.links:
        state.record("link", name=l.dev_lower, ns=topo.tiers[l.lower].namespace)
        state.record("link", name=l.dev_upper, ns=topo.tiers[l.upper].namespace)
    proc = _spawn(state, backend, "delay-line", None,
                  [sys.executable, "-m", "streamflow.testbed.delayline", str(state.dir / "delayline.json")])
    deadline = time.monotonic() + 15
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise TestbedError(f"the delay line did not start: {_tail(state.log_dir / 'delay-line.log')}")
        time.sleep(0.05)
    for l in topo.links:
        lo, hi = topo.tiers[l.lower], topo.tiers[l.upper]
        link = infra.link(l.lower, l.upper)
        for dev, ns, mine, peer, far in ((l.dev_lower, lo.namespace, l.addr_lower, l.addr_upper, hi),
                                         (l.dev_upper, hi.namespace, l.addr_upper, l.addr_lower, lo)):
            netns.ip("addr", "add", mine, "peer", peer, "dev", dev, ns=ns)
            netns.ip("link", "set", dev, "up", ns=ns)
            netns.route(ns, f"{far.gateway.rsplit('.', 1)[0]}.0/24", "dev", dev)
            if link.bandwidth_mbps is not None:
                state.record("qdisc", ns=ns, dev=dev)
                shaping.shape(ns, dev, link.bandwidth_mbps, link.rtt_ms)


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def _spawn(state: State, backend: cgroups.Backend, name: str, host: Host | None, cmd: list[str]
           ) -> subprocess.Popen[bytes]:
    """Start a testbed process in its own cgroup (limits from `host`) and session, logging to the
    state directory; the cgroup and the pid are recorded before and as it starts."""
    from streamflow.cluster.local import worker_env
    _check_interrupt()
    relative = f"{CGROUP_ROOT}/{name}"
    dirs = [str(d) for d in backend.dirs(relative)]
    state.record("cgroup", dirs=dirs)
    cgroups.create(backend, relative, host.cpus if host else None, host.memory_mb if host else None)
    entry = state.record("process", what=name)
    state.log_dir.mkdir(parents=True, exist_ok=True)
    with (state.log_dir / f"{name}.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=worker_env(), start_new_session=True,
                                preexec_fn=lambda: cgroups.join(dirs))
    state.record_process(entry, proc.pid)
    return proc


def _start_worker(state: State, host: Host, topo: Topology, backend: cgroups.Backend, coordinator: str) -> None:
    from streamflow.cluster.local import worker_command
    net = topo.hosts[host.name]
    # metrics on any free port of the namespace's own interfaces; the worker registers the address
    # the coordinator reaches it at
    cmd = worker_command(host.name, host.tier, coordinator, device=host.device, cost_per_hour=host.cost_per_hour,
                         threads=host.threads, bind=f"tcp://{net.address}:0", metrics_port=0,
                         keys=state.doc["keys"]) + ["--preload", "--metrics-host", "0.0.0.0"]
    proc = _spawn(state, backend, host.name, host, ["ip", "netns", "exec", net.namespace, *cmd])
    state.doc["hosts"][host.name] = {"tier": host.tier, "namespace": net.namespace, "address": net.address,
                                     "mgmt": net.mgmt, "cpus": host.cpus, "memory_mb": host.memory_mb,
                                     "threads": host.threads, "device": host.device, "role": host.role,
                                     "cost_per_hour": host.cost_per_hour, "pid": proc.pid,
                                     "log": str(state.log_dir / f"{host.name}.log")}
    state.flush()


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _await_registration(state: State, infra: Infra, wait_s: float, say) -> None:
    """Listen where a coordinator will, until every worker has said `register` (it is running, in
    its namespace, and reaches the management bridge)."""
    import zmq

    from streamflow.communication.security import COORDINATOR, security_for
    context = zmq.Context()
    security = security_for(state.doc["keys"], COORDINATOR)
    security.start(context)
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    security.server(router)
    router.bind(state.doc["coordinator"])
    waiting = {h.name for h in infra.hosts}
    deadline = time.monotonic() + wait_s
    try:
        while waiting:
            _check_interrupt()
            if router.poll(250):
                identity = router.recv_multipart()[0].decode(errors="replace")
                if identity in waiting:
                    waiting.discard(identity)
                    say(f"registered: {identity} ({len(infra.hosts) - len(waiting)}/{len(infra.hosts)})")
            for name in sorted(waiting):
                pid = state.doc["hosts"][name]["pid"]
                if not _alive(pid):
                    raise TestbedError(f"worker {name} exited before registering: "
                                       f"{_tail(Path(state.doc['hosts'][name]['log']))}")
            if time.monotonic() > deadline:
                raise TestbedError(f"workers did not register within {wait_s:.0f} s: {', '.join(sorted(waiting))} "
                                   f"(logs in {state.log_dir})")
    finally:
        router.close(0)
        security.stop()
        context.term()


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return Path(f"/proc/{pid}").exists()
