"""Serves the web apps in one process, each on its own address (issue #12):

- the public app on PUBLIC_HOST:PUBLIC_PORT (customers, providers; the only one for the internet),
- the internal app on INTERNAL_HOST:INTERNAL_PORT (staff, systems, the codec endpoint),
- the metrics app on METRICS_HOST:WEB_METRICS_PORT (0: off).

    .venv/bin/python -m web.serve                  # all three (make run does, on 127.0.0.1)
    .venv/bin/python -m web.serve --apps public    # e.g. only the public app on the internet-facing hosts

One process, so the metrics app reports what the other two count: prometheus_client keeps its counters
per process. Every address defaults to loopback. Behind a TLS proxy, uvicorn trusts X-Forwarded-For
from FORWARDED_ALLOW_IPS (default 127.0.0.1). ENVIRONMENT=production with unsafe settings stops it
before any port opens (config.get_settings).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from infra.config import Settings, get_settings

APPS = ("public", "internal", "metrics")


@dataclass(frozen=True)
class Served:
    name: str
    app: ASGIApp
    host: str
    port: int


def served(settings: Settings, names: tuple[str, ...] = APPS) -> list[Served]:
    """What this process serves, where. Imported here, not at the top: building the apps reads the settings."""
    from web import app as apps
    from web.internal.codec import DevUiCodecUrl

    internal: ASGIApp = apps.internal_app
    if settings.environment != "production":  # the dev server's Temporal UI sends its codec token in the URL
        internal = DevUiCodecUrl(internal)
    every = [
        Served("public", apps.public_app, settings.public_host, settings.public_port),
        Served("internal", internal, settings.internal_host, settings.internal_port),
        Served("metrics", apps.metrics_app, settings.metrics_host, settings.web_metrics_port),
    ]
    return [s for s in every if s.name in names and s.port]


class _Server(uvicorn.Server):
    """Several servers in one loop: the signal handlers are ours (below), not each server's."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(apps: list[Served]) -> None:
    servers = [_Server(uvicorn.Config(s.app, host=s.host, port=s.port, lifespan="on")) for s in apps]

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop()  # one stopped (a signal, or its start failed): stop them all
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [f"{s.name}: {r!r}" for s, r in zip(apps, results, strict=True) if isinstance(r, BaseException)]
    failed += [f"{s.name} did not start" for s, server in zip(apps, servers, strict=True) if not server.started]
    if failed:
        raise SystemExit("web apps stopped: " + "; ".join(failed))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--apps", default=",".join(APPS), help="which apps, comma-separated (default: all three)")
    args = parser.parse_args(argv)
    names = tuple(n.strip() for n in args.apps.split(",") if n.strip())
    unknown = sorted(set(names) - set(APPS))
    if unknown or not names:
        parser.error(f"--apps takes {', '.join(APPS)}, got {args.apps!r}")
    apps = served(get_settings(), names)
    if not apps:
        parser.error("nothing to serve (WEB_METRICS_PORT=0 switches the metrics app off)")
    asyncio.run(serve(apps))


if __name__ == "__main__":
    main()
