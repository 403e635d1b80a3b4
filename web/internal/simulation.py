"""The what-if simulation for staff (issue #16): choose a candidate plan, a slice and a period; see
the plan actually used and the candidate side by side, the contracts that differ (CSV), and the
replay check. Reads only: nothing in the ledger or in Temporal changes.

- `GET /analytics/simulation` — the page (form; results when `candidate` is given)
- `GET /analytics/simulation.csv` — the per-contract differences as CSV
- `GET /api/simulation` — the same report as JSON

Bounds: at most `MAX_CONTRACTS` contracts per run (the page says when the slice was cut), a period
of at most 400 days, and one simulation at a time per web process (a second gets 429). A run of
2,000 contracts takes a few seconds and runs in a worker thread, so the app keeps answering.
Larger slices: `starter.py simulate …` (no limit but the machine's).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from core.simulation import SimulationError
from core.simulation_report import WhatIf, csv_text, what_if
from ledger.db import session_scope
from ledger.simulation_input import Slice, read_slice
from models.plans import BUILTIN_PLANS, get_plan
from web.deps import berlin_today, context
from web.render import page

router = APIRouter(tags=["simulation"])
MAX_CONTRACTS = 2_000
_running = asyncio.Lock()

Text = Annotated[str, Query(max_length=80)]


@dataclass(frozen=True)
class Form:
    candidate: str
    start: str
    end: str
    plan: str
    product: str


def _default_period() -> tuple[date, date]:
    """The last twelve months and this month so far (until tomorrow, exclusive)."""
    today = berlin_today()
    this_month = today.replace(day=1)
    return this_month.replace(year=this_month.year - 1), today + timedelta(days=1)


def _parse(form: Form) -> tuple[Slice, str]:
    """The slice and the candidate plan, or SimulationError naming what is wrong."""
    if form.candidate not in BUILTIN_PLANS:
        known = ", ".join(sorted(BUILTIN_PLANS))
        raise SimulationError(f"unknown candidate plan {form.candidate!r}, known: {known}")
    try:
        start, end = date.fromisoformat(form.start), date.fromisoformat(form.end)
    except ValueError:
        raise SimulationError(f"the period needs two dates (YYYY-MM-DD), got {form.start!r} and {form.end!r}") from None
    part = Slice(start=start, end=end, plan_id=form.plan or None, product=form.product or None, limit=MAX_CONTRACTS)
    part.check()
    return part, form.candidate


async def _run(request: Request, form: Form) -> tuple[WhatIf, bool]:
    part, candidate = _parse(form)
    ctx = context(request)

    def work() -> tuple[WhatIf, bool]:
        with session_scope(ctx.engine) as session:
            data = read_slice(session, part, ctx.settings.default_plan)
        report = what_if(data.histories, data.recorded, get_plan(candidate), part.start_at, part.end_at)
        return report, data.truncated

    if _running.locked():
        raise Busy
    async with _running:
        return await asyncio.to_thread(work)


class Busy(Exception):
    """Another simulation runs in this process: try again in a few seconds."""


def _form(candidate: str, start: str, end: str, plan: str, product: str) -> Form:
    first, last = _default_period()
    start, end = (start or first.isoformat()).strip(), (end or last.isoformat()).strip()
    return Form(candidate.strip(), start, end, plan.strip(), product.strip())


@router.get("/analytics/simulation")
async def simulation_page(
    request: Request, candidate: Text = "", start: Text = "", end: Text = "", plan: Text = "", product: Text = ""
) -> Response:
    form = _form(candidate, start, end, plan, product)
    values: dict[str, Any] = {"form": form, "plans": sorted(BUILTIN_PLANS), "max_contracts": MAX_CONTRACTS}
    if not candidate:
        return page(request, "simulation.html", **values)
    try:
        report, truncated = await _run(request, form)
    except SimulationError as error:
        return page(request, "simulation.html", 422, error=str(error), **values)
    except Busy:
        busy = "Another simulation is running; try again shortly."
        return page(request, "simulation.html", 429, error=busy, **values)
    rows = [
        ("Cases", "cases"),
        ("Messages", "messages"),
        ("Fees (cents)", "fees_cents"),
        ("Suspensions", "suspensions"),
        ("Days of suspended cover", "suspended_days"),
        ("Agency handovers", "handovers"),
        ("Court cases (applications prepared)", "court_cases"),
        ("Termination proposals", "termination_proposals"),
        ("Cases still open at the end", "cases_open_at_end"),
        ("Open at the end (cents)", "open_cents_at_end"),
    ]
    actual, tried = report.actual_totals.as_dict(), report.candidate_totals.as_dict()
    channels = sorted(set(report.actual_totals.by_channel) | set(report.candidate_totals.by_channel))
    kinds = sorted(set(report.actual_totals.by_kind) | set(report.candidate_totals.by_kind))
    return page(
        request,
        "simulation.html",
        report=report,
        truncated=truncated,
        rows=[(label, actual[key], tried[key]) for label, key in rows],
        channels=[(ch, report.actual_totals.by_channel[ch], report.candidate_totals.by_channel[ch]) for ch in channels],
        kinds=[(k, report.actual_totals.by_kind[k], report.candidate_totals.by_kind[k]) for k in kinds],
        differences=report.differences[:100],
        **values,
    )


@router.get("/analytics/simulation.csv", response_model=None)
async def simulation_csv(
    request: Request, candidate: Text = "", start: Text = "", end: Text = "", plan: Text = "", product: Text = ""
) -> Response:
    try:
        report, _ = await _run(request, _form(candidate, start, end, plan, product))
    except SimulationError as error:
        return PlainTextResponse(f"{error}\n", status_code=422)
    except Busy:
        return PlainTextResponse("another simulation is running; try again shortly\n", status_code=429)
    name = f"simulation-{report.candidate_plan}-{start or 'period'}.csv".replace("/", "-")
    return Response(
        csv_text(report.differences),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/api/simulation",
    response_model=None,
    responses={422: {"description": "unknown plan or bad period; nothing ran"}, 429: {"description": "busy"}},
)
async def simulation_api(
    request: Request, candidate: Text = "", start: Text = "", end: Text = "", plan: Text = "", product: Text = ""
) -> JSONResponse:
    """The plan actually used and `candidate` over the slice's recorded events, side by side, with
    the contracts that differ (first 200) and the replay check's defects."""
    try:
        report, truncated = await _run(request, _form(candidate, start, end, plan, product))
    except SimulationError as error:
        return JSONResponse({"detail": str(error)}, status_code=422)
    except Busy:
        return JSONResponse({"detail": "another simulation is running; try again shortly"}, status_code=429)
    return JSONResponse({**report.as_dict(), "truncated": truncated, "max_contracts": MAX_CONTRACTS})

