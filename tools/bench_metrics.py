"""What a worker's metrics cost: the same in-process dataflow with metrics off, and on as a
worker process with `--metrics-port` runs it (service time per batch, the stats taken twice a
second and binned, /metrics served on the event loop and scraped four times a second, far more
often than Prometheus's default 15 s). `tools/bench_runtime.py --metrics` prints the figures."""
from __future__ import annotations

import asyncio
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

from streamflow.cluster.stats import worker_stats
from streamflow.observe.metrics import serve_metrics
from streamflow.observe.worker_metrics import WorkerCollector
from streamflow.runtime import run_coroutine

SCRAPE_EVERY_S = 0.25
STATS_EVERY_S = 0.5


async def _run_with_metrics(flow: Any) -> int:
    """Run `flow` with metrics on; returns how many scrapes were served."""
    worker = flow.worker(collect_service_times=True)
    collector = WorkerCollector({"name": worker.name, "tier": "local", "device": "cpu"})
    collector.deployed([(worker, None)])
    server = await serve_metrics(collector.registry(), "127.0.0.1", 0)
    stop, scrapes = threading.Event(), [0]

    def scrape() -> None:
        while not stop.wait(SCRAPE_EVERY_S):
            with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as r:
                r.read()
            scrapes[0] += 1

    async def stats() -> None:
        while True:
            await asyncio.sleep(STATS_EVERY_S)
            collector.observe_stats(worker.name, worker_stats(worker))
    scraper = threading.Thread(target=scrape, daemon=True)
    scraper.start()
    task = asyncio.get_running_loop().create_task(stats())
    try:
        await worker.run_async()
    finally:
        task.cancel()
        stop.set()
        await asyncio.get_running_loop().run_in_executor(None, scraper.join)
        await server.stop()
        worker.close()
    return scrapes[0]


def metrics_overhead(flows: dict[str, Callable[[], tuple[Any, list[int]]]], records: dict[str, int],
                     repeat: int) -> list[list[str]]:
    """Rows (pipeline, records/s off, records/s on, on/off) for flows built by `flows[name]()`
    (a Dataflow and the cell its sink counts results in), each the best of `repeat`, interleaved."""
    import time
    rows = []
    for name, build in flows.items():
        best = {"off": float("inf"), "on": float("inf")}
        for _ in range(repeat):
            for mode in ("off", "on"):
                flow, _out = build()
                t = time.perf_counter()
                if mode == "off":
                    flow.run()
                else:
                    run_coroutine(_run_with_metrics(flow))
                best[mode] = min(best[mode], time.perf_counter() - t)
        off, on = records[name] / best["off"], records[name] / best["on"]
        rows.append([name, f"{off / 1e6:.2f} M/s", f"{on / 1e6:.2f} M/s", f"{on / off:.3f}"])
    return rows
