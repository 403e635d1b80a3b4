"""`starter.py simulate …`: the what-if simulation of a dunning plan from the shell (issue #16).

    python starter.py simulate de-follow-up-terminate --start 2025-12-01 --end 2026-12-01
    python starter.py simulate de-follow-up-final-reminder --plan de-follow-up --csv diff.csv --json

Reads the slice from the ledger, replays it offline through the plan actually used and the
candidate (core/simulation.py), prints both side by side and the replay check. Changes nothing.
Unlike the page it has no contract limit beyond `--limit`, and runs on every core (`--workers`).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import console, fail
from core.simulation import SimulationError
from core.simulation_report import csv_text, what_if
from infra.config import get_settings
from ledger.db import make_engine, migrate, session_scope
from ledger.simulation_input import Slice, read_slice
from models.plans import BUILTIN_PLANS, get_plan


def _day(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail("error", f"{what}: {value!r} is not a date (YYYY-MM-DD)") from None


def simulate(
    candidate: Annotated[str, typer.Argument(help="the candidate plan id (see `GET /api/plans`)")],
    start: Annotated[str, typer.Option(help="first day of the period (YYYY-MM-DD, Berlin)")],
    end: Annotated[str, typer.Option(help="day after the period (YYYY-MM-DD, exclusive)")],
    plan: Annotated[str | None, typer.Option(help="only contracts dunned on this plan")] = None,
    product: Annotated[str | None, typer.Option(help="only contracts of this product")] = None,
    limit: Annotated[int, typer.Option(help="at most this many contracts")] = 200_000,
    workers: Annotated[int, typer.Option(help="processes (default: every core)")] = 0,
    csv: Annotated[Path | None, typer.Option(help="write the per-contract differences here (CSV)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
) -> None:
    """Replay the ledger's recorded events through the plan actually used and CANDIDATE, side by side."""
    if candidate not in BUILTIN_PLANS:
        raise fail("error", f"unknown candidate plan {candidate!r}, known: {', '.join(sorted(BUILTIN_PLANS))}")
    part = Slice(start=_day(start, "--start"), end=_day(end, "--end"), plan_id=plan, product=product, limit=limit)
    settings = get_settings()
    try:
        part.check()
        migrate(settings.effective_database_url)
        with session_scope(make_engine(settings.effective_database_url)) as session:
            data = read_slice(session, part, settings.default_plan)
        processes = workers or os.cpu_count() or 1
        if processes > 1 and len(data.histories) > 500:
            with ProcessPoolExecutor(processes) as pool:
                report = what_if(
                    data.histories, data.recorded, get_plan(candidate), part.start_at, part.end_at, pool.map
                )
        else:
            report = what_if(data.histories, data.recorded, get_plan(candidate), part.start_at, part.end_at)
    except SimulationError as error:
        raise fail("error", error) from None
    if csv is not None:
        csv.write_text(csv_text(report.differences), encoding="utf-8")
    if as_json:
        console.print_json(json.dumps({**report.as_dict(), "truncated": data.truncated}))
        return
    actual, tried = report.actual_totals.as_dict(), report.candidate_totals.as_dict()
    table = Table(title=f"{actual['contracts']} contracts, {part.start} until {part.end}")
    table.add_column("measure")
    table.add_column("actual plan (replayed)", justify="right")
    table.add_column(candidate, justify="right")
    for key, value in actual.items():
        other = tried[key]
        if isinstance(value, dict) and isinstance(other, dict):
            for sub in sorted(set(value) | set(other)):
                table.add_row(f"{key}: {sub}", str(value.get(sub, 0)), str(other.get(sub, 0)))
        else:
            table.add_row(key, str(value), str(other))
    console.print(table)
    if data.truncated:
        console.print(f"[yellow]the slice was cut at {limit} contracts[/yellow]")
    console.print(f"contracts that differ: {len(report.differences)}" + (f" (CSV: {csv})" if csv else ""))
    for x in report.expectations:  # the response model: an estimate from the history, not a replay
        unknown = f" (no history for: {', '.join(x.unknown)})" if x.unknown else ""
        console.print(f"response model: {x.plan_id} would settle {x.settled_share:.1%} of the cases{unknown}")
    if report.defects:
        console.print(f"[red]replay check: {len(report.defects)} difference(s) from the ledger[/red]")
        for line in report.defects[:50]:
            console.print(f"  {line}")
    else:
        console.print("replay check: the plan actually used reproduces the ledger (messages and status changes)")
