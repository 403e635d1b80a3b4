"""Collections analytics for supervisors and finance (issue #16, docs/analytics.md):

- `GET /analytics` — the staff page: filters, charts (server-side SVG) and the same figures as tables;
- `GET /api/analytics` — the same report as JSON.

Query parameters (both): `plan` (a built-in plan id), `product`, `from` and `to` (cases opened in that
period, ISO dates), `as_of` (the report's day, default today in Berlin), `window` (days after a message
a payment counts as cured by it, default the CURE_WINDOW_DAYS setting). Bad input is answered 422 with
the problem named; nothing is written.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.calendar import local_date
from core.timezone import BUSINESS_TIMEZONE
from ledger import analytics
from ledger.db import session_scope
from models.inputs import Line
from models.plans import BUILTIN_PLANS
from web.deps import context
from web.internal import analytics_charts
from web.render import page

router = APIRouter(tags=["analytics"])
MAX_PRODUCT_CHARS = 100


class AnalyticsQuery(BaseModel):
    """The filters as the URL gives them (empty fields of the page's form count as not given)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    plan: str | None = None
    product: Line | None = Field(default=None, max_length=MAX_PRODUCT_CHARS)
    opened_from: date | None = Field(default=None, alias="from")
    opened_to: date | None = Field(default=None, alias="to")
    as_of: date | None = None
    window: int | None = Field(default=None, ge=1, le=90)

    @field_validator("plan", "product", "opened_from", "opened_to", "as_of", "window", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("plan")
    @classmethod
    def _known_plan(cls, value: str | None) -> str | None:
        if value is not None and value not in BUILTIN_PLANS:
            raise ValueError(f"unknown plan {value!r}; known: {', '.join(sorted(BUILTIN_PLANS))}")
        return value


class BadFilter(ValueError):
    pass


def _filters(params: dict[str, str]) -> tuple[analytics.Filters, int | None]:
    try:
        query = AnalyticsQuery.model_validate(params)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'query'}: {e['msg']}" for e in error.errors())
        raise BadFilter(problems) from error
    as_of = query.as_of or local_date(datetime.now(UTC), BUSINESS_TIMEZONE)
    try:
        filters = analytics.Filters(
            as_of=as_of,
            plan=query.plan,
            product=query.product,
            opened_from=query.opened_from,
            opened_to=query.opened_to,
        )
    except analytics.FilterError as error:
        raise BadFilter(str(error)) from error
    return filters, query.window


def build_report(request: Request, params: dict[str, str]) -> analytics.Report:
    filters, window = _filters(params)
    ctx = context(request)
    settings = ctx.settings
    with session_scope(ctx.engine) as session:
        return analytics.report(
            session,
            filters,
            acquisition_cost_cents=settings.acquisition_cost_cents,
            default_plan=settings.default_plan,
            cure_window_days=window or settings.cure_window_days,
        )


def percent(rate: Decimal | None) -> str:
    """0.7123 → "71.2 %"; no rate (nothing to divide by, or not yet observable) → "—"."""
    if rate is None:
        return "—"
    return f"{(rate * 100).quantize(Decimal('0.1'))} %"


@router.get("/api/analytics")
def analytics_json(
    request: Request,
    plan: Annotated[str | None, Query()] = None,
    product: Annotated[str | None, Query()] = None,
    opened_from: Annotated[str | None, Query(alias="from")] = None,
    opened_to: Annotated[str | None, Query(alias="to")] = None,
    as_of: Annotated[str | None, Query()] = None,
    window: Annotated[str | None, Query()] = None,
) -> Response:
    """Every figure of the analytics page as JSON (amounts in cents, rates as decimal strings)."""
    try:
        report = build_report(request, _given(request))
    except BadFilter as error:
        return JSONResponse(status_code=422, content={"detail": str(error)})
    return JSONResponse(content=report.model_dump(mode="json"))


def _given(request: Request) -> dict[str, str]:
    """The query's known parameters; an unknown one is refused by the model (extra="forbid")."""
    return dict(request.query_params)


@router.get("/analytics")
def analytics_page(
    request: Request,
    plan: Annotated[str | None, Query()] = None,
    product: Annotated[str | None, Query()] = None,
    opened_from: Annotated[str | None, Query(alias="from")] = None,
    opened_to: Annotated[str | None, Query(alias="to")] = None,
    as_of: Annotated[str | None, Query()] = None,
    window: Annotated[str | None, Query()] = None,
) -> Response:
    params = _given(request)
    try:
        report = build_report(request, params)
    except BadFilter as error:
        return page(
            request, "analytics.html", status_code=422, error=str(error), report=None, params=params,
            plans=sorted(BUILTIN_PLANS), charts={}, percent=percent,
        )  # fmt: skip
    return page(
        request,
        "analytics.html",
        report=report,
        params=params,
        plans=sorted(BUILTIN_PLANS),
        charts=analytics_charts.charts(report),
        percent=percent,
        error=None,
    )
