"""Runs the dunning worker: workflows and activities on the `dunning` task queue.

Scale out by starting more of these, on any number of machines, against the same Temporal
cluster and database — or several on one machine with `--processes N` (one per core: workflow
code and letter rendering are CPU-bound Python). Worker N (from 0) serves its business counters on
METRICS_PORT + N and the SDK's runtime metrics on SDK_METRICS_PORT + N, both bound to METRICS_HOST (the
internal interface; loopback by default; docs/deployment.md). ENVIRONMENT=production with unsafe
settings stops it before anything starts (config.get_settings).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

from prometheus_client import start_http_server

from infra.config import get_settings
from infra.observability import configure_logging, sdk_runtime
from infra.runtime import build_worker, connect
from ledger.db import make_engine, migrate

log = logging.getLogger("worker")


async def serve(index: int) -> None:
    settings = get_settings()
    if settings.log_format == "json":
        configure_logging(f"worker-{index}")
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        logging.getLogger("weasyprint").setLevel(logging.WARNING)  # one INFO line per layout step otherwise
        logging.getLogger("fontTools").setLevel(logging.WARNING)
    runtime = None
    try:
        if settings.metrics_port:
            start_http_server(settings.metrics_port + index, addr=settings.metrics_host)
        if settings.sdk_metrics_port:
            runtime = sdk_runtime(settings.sdk_metrics_port + index, settings.metrics_host)
    except OSError as error:
        raise SystemExit(
            f"worker {index}: metrics port in use ({error}); set METRICS_PORT / SDK_METRICS_PORT, or 0 to switch off"
        ) from error
    if index == 0:
        migrate(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    client = await connect(settings, runtime)
    with ThreadPoolExecutor(max_workers=16) as executor:
        worker = build_worker(client, engine, settings, executor)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        log.info(
            "worker %d started on task queue %s (metrics %s:%s, SDK metrics %s:%s)",
            index,
            settings.task_queue,
            settings.metrics_host,
            settings.metrics_port + index if settings.metrics_port else "off",
            settings.metrics_host,
            settings.sdk_metrics_port + index if settings.sdk_metrics_port else "off",
        )
        async with worker:  # SIGTERM/SIGINT: stop polling; cut-off activities are retried elsewhere (idempotent keys)
            await stop.wait()
        log.info("worker %d stopped", index)


def run_one(index: int) -> None:
    asyncio.run(serve(index))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--processes", type=int, default=1, help="worker processes on this machine (default 1)")
    args = parser.parse_args(argv)
    if args.processes < 1:
        parser.error(f"--processes must be at least 1, got {args.processes}")
    get_settings()  # refuses unsafe production settings before any process or port starts
    if args.processes == 1:
        run_one(0)
        return
    migrate(get_settings().effective_database_url)  # once, before the workers start
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=run_one, args=(i,), name=f"worker-{i}") for i in range(args.processes)]
    for child in children:
        child.start()

    def forward(signum: int, _frame: object) -> None:
        """Each child stops gracefully on SIGTERM/SIGINT; pass ours on (a group signal reaches them anyway)."""
        for child in children:
            if child.is_alive() and child.pid:
                os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        child.join()
    sys.exit(max((child.exitcode or 0) for child in children))


if __name__ == "__main__":
    main()
