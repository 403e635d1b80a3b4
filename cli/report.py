"""`starter.py report …`: collections analytics as text tables, or JSON (docs/analytics.md).

python starter.py report                           # every figure, report date today
python starter.py report recovery --plan de-follow-up --from 2026-01-01 --to 2026-06-30
python starter.py report kept --product Hausrat --as-of 2026-11-30 --json

Reads only; the same figures as the staff page /analytics and GET /api/analytics.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import console, fail
from core.calendar import local_date
from core.money import format_eur
from core.timezone import BUSINESS_TIMEZONE
from infra.config import get_settings
from ledger import analytics
from ledger.db import make_engine, session_scope
from models.plans import BUILTIN_PLANS


class Section(StrEnum):
    ALL = "all"
    RECOVERY = "recovery"
    CURE = "cure"
    KEPT = "kept"
    AGEING = "ageing"
    COURT = "court"
    AGENTS = "agents"
    BANK = "bank"


def percent(rate: Decimal | None) -> str:
    return "—" if rate is None else f"{(rate * 100).quantize(Decimal('0.1'))} %"


def _day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=name) from None


def _print(report: analytics.Report, section: Section) -> None:
    show = {section} if section != Section.ALL else set(Section)
    t = report.totals
    console.print(
        f"report date {report.filters['as_of']}: {t.cases} cases ({t.open} open, {t.paid} paid, "
        f"{t.written_off} written off, {t.cancelled} cancelled), {format_eur(t.claimed_cents)} claimed at opening"
    )
    if Section.RECOVERY in show:
        table = Table("opened", "cases", "claimed", *[str(k) for k in range(1, analytics.MONTHS + 1)],
                      title="Recovered of claimed (%) after 1 … 12 months")  # fmt: skip
        for row in report.recovery:
            rates = [percent(r).removesuffix(" %") for r in row.rates]
            table.add_row(row.cohort, str(row.cases), format_eur(row.claimed_cents), *rates)
        Console(width=max(console.width, 150)).print(table)  # 15 columns: wider than a terminal, never cut
    if Section.CURE in show:
        table = Table("stage", "reached", "paid at this stage", "cure rate", title="Cure rate per stage")
        for s in report.cure_by_stage:
            table.add_row(s.stage, "—" if s.reached is None else str(s.reached), str(s.cured), percent(s.rate))
        console.print(table)
        days = report.cure_window_days
        table = Table("channel", "cases messaged", f"paid within {days} days", "cure rate", title="Cure per channel")
        for c in report.cure_by_channel:
            table.add_row(c.channel, str(c.cases_messaged), str(c.cured_within), percent(c.rate))
        console.print(table)
    if Section.KEPT in show:
        k = report.kept
        table = Table("outcome", "cases", title="Kept contracts")
        for label, n in [
            ("reactivated", k.reactivated),
            ("paid before suspension", k.paid_before_suspension),
            ("written off, contract kept", k.written_off),
            ("kept in all", k.kept),
            ("terminated", k.terminated),
            ("cancelled", k.cancelled),
        ]:
            table.add_row(label, str(n))
        console.print(table)
        cost, saved = format_eur(k.acquisition_cost_cents), format_eur(k.sales_cost_saved_cents)
        console.print(f"sales cost saved: {k.kept} × {cost} = {saved}")
    if Section.AGEING in show:
        table = Table("days past due", "premiums", "contracts", "open", title="Ageing of open premiums")
        for a in report.ageing:
            table.add_row(a.bucket, str(a.premiums), str(a.contracts), format_eur(a.open_cents))
        console.print(table)
    if Section.COURT in show:
        table = Table("state", "cases", title="Court outcomes")
        for state in report.court_outcomes:
            table.add_row(state.name, str(state.cases))
        console.print(table)
    if Section.AGENTS in show:
        table = Table(
            "agent", "tasks", "in time", "late or missed", "still due", "kept", title="Agents: contact in 24 h"
        )
        for g in report.agent_sla:
            table.add_row(
                g.agent_code, str(g.tasks), str(g.sla_kept), str(g.sla_missed), str(g.pending), percent(g.rate)
            )
        console.print(table)
        table = Table("outcome", "tasks", title="Agent outcomes")
        for o in report.agent_outcomes:
            table.add_row(o.name, str(o.cases))
        console.print(table)
    if Section.BANK in show:
        b = report.bank_backlog
        table = Table("days waiting", "lines", "amount", title="Bank queue backlog")
        for q in b.buckets:
            table.add_row(q.bucket, str(q.lines), format_eur(q.amount_cents))
        console.print(table)
        console.print(f"{b.lines} lines, {format_eur(b.amount_cents)}, oldest booked {b.oldest_booking_date or '—'}")


def report(
    section: Annotated[Section, typer.Argument(help="which figures")] = Section.ALL,
    plan: Annotated[str | None, typer.Option(help="the cases' plan id")] = None,
    product: Annotated[str | None, typer.Option(help="the contracts' product")] = None,
    opened_from: Annotated[str | None, typer.Option("--from", help="cases opened on or after (YYYY-MM-DD)")] = None,
    opened_to: Annotated[str | None, typer.Option("--to", help="cases opened on or before (YYYY-MM-DD)")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="the report's day (default today)")] = None,
    window: Annotated[int | None, typer.Option(min=1, max=90, help="days after a message that count as cured")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the whole report as JSON")] = False,
) -> None:
    """Collections analytics: recovery curve, cure rates, kept contracts, ageing, court, agents, bank queue."""
    if plan is not None and plan not in BUILTIN_PLANS:
        raise typer.BadParameter(f"unknown plan; known: {', '.join(sorted(BUILTIN_PLANS))}", param_hint="--plan")
    if product is not None and not 0 < len(product.strip()) <= 100:
        raise typer.BadParameter("must be 1..100 characters", param_hint="--product")
    settings = get_settings()
    try:
        filters = analytics.Filters(
            as_of=_day(as_of, "--as-of") or local_date(datetime.now(UTC), BUSINESS_TIMEZONE),
            plan=plan,
            product=product.strip() if product else None,
            opened_from=_day(opened_from, "--from"),
            opened_to=_day(opened_to, "--to"),
        )
    except analytics.FilterError as error:
        raise fail("error", error) from None
    with session_scope(make_engine(settings.effective_database_url)) as session:
        result = analytics.report(
            session,
            filters,
            acquisition_cost_cents=settings.acquisition_cost_cents,
            default_plan=settings.default_plan,
            cure_window_days=window or settings.cure_window_days,
        )
    if as_json:
        print(json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False))
    else:
        _print(result, section)
