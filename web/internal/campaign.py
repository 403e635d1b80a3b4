"""The abandoned-quote campaign's system and staff side (internal app; DOMAIN.md §9, SPEC.md §5).

- `POST /api/campaign/quotes/abandoned` — the calculator reports an abandoned quote (with or
  without opt-in); one workflow per quote, a second report joins the first.
- `POST /api/campaign/touchpoints` — the single customer view: every running workflow of the
  person is signalled; a signed contract starts onboarding and the inspection reminder once.
- `POST /api/campaign/email-events` — delivery/engagement events per mail (de-duplicated).
- `GET /campaign/report`, `GET /api/campaign/report` — results per experiment.

The customer's links (confirm, resume, unsubscribe) are web/public/campaign_links.py; the rules
(entry limits, consent, suppression) ledger/campaign.py; starting the workflows workflows/campaign_client.py.
Order of effects everywhere: the database first (idempotent), then Temporal (idempotent), so a
retry after a crash in between is harmless."""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter, ValidationError

from activities.campaign import campaign_report
from core.campaign import CAMPAIGN_PLANS, CampaignPlan, ExperimentReport, person_key_for, window_text
from infra.config import Settings
from ledger.campaign import EntryLimited, record_touchpoint, register_quote
from ledger.campaign import record_email_events as store_email_events
from ledger.db import transaction_in_thread
from models.campaign import ExitKind, ExitSignal, FollowUpInput
from models.campaign_requests import EmailEventIn, QuoteAbandonedIn, TouchpointIn
from models.inputs import QueryMoment
from web.deps import AppContext, client_ip, context, too_many
from web.render import page
from workflows.campaign import inspection_workflow_id, onboarding_workflow_id, quote_workflow_id
from workflows.campaign_client import signal_all, start_follow_up, start_quote

log = logging.getLogger(__name__)
router = APIRouter()


# --- routes: the calculator --------------------------------------------------------------------


@router.post(
    "/api/campaign/quotes/abandoned",
    response_model=None,
    responses={429: {"description": "entry limit per address or IP reached; nothing written"}},
)
async def quote_abandoned(body: QuoteAbandonedIn, request: Request) -> dict[str, Any] | JSONResponse:
    try:
        return await accept_abandoned_quote(context(request), body, client_ip(request))
    except EntryLimited as limited:
        return too_many(limited)


async def accept_abandoned_quote(ctx: AppContext, body: QuoteAbandonedIn, caller_ip: str | None) -> dict[str, Any]:
    """The quote, person and consent stored once, then its workflow started (or joined); EntryLimited:
    nothing written. What the route does, and what `make run`'s demo feeds its quotes through."""
    now = datetime.now(UTC)
    registered = await transaction_in_thread(
        ctx.engine, lambda session: register_quote(session, ctx.settings, body, now, caller_ip)
    )
    await start_quote(ctx.client, ctx.settings.task_queue, registered.input)
    return {
        "quote_id": body.quote_id,
        "workflow_id": quote_workflow_id(body.quote_id),
        "created": registered.created,
        "status": registered.status,
        "segment": registered.input.segment.value,
        "language": registered.language,
    }


# --- routes: the single customer view and the mail provider ------------------------------------


@router.post("/api/campaign/touchpoints")
async def touchpoint(body: TouchpointIn, request: Request) -> dict[str, Any]:
    """A contact in any channel ends every running sequence of the person at once."""
    return await accept_touchpoint(context(request), body)


async def accept_touchpoint(ctx: AppContext, body: TouchpointIn) -> dict[str, Any]:
    """Record the contact once, start the follow-ups of a signed contract once, signal the person's quotes."""
    now = datetime.now(UTC)
    person_key = body.person_key or person_key_for(ctx.settings.link_secret, str(body.email))
    occurred_at = body.occurred_at.astimezone(UTC)

    duplicate, workflow_ids, follow_up = await transaction_in_thread(
        ctx.engine, lambda session: record_touchpoint(session, body, person_key, now)
    )
    started: list[str] = []
    if follow_up and body.contract_number:
        follow = FollowUpInput(
            contract_number=body.contract_number,
            person_key=person_key,
            signed_at=occurred_at,
            inspection_due=body.inspection_due,
            plan=campaign_plan(ctx.settings),
        )
        await start_follow_up(ctx.client, ctx.settings.task_queue, "onboarding", follow)
        started.append(onboarding_workflow_id(body.contract_number))
        if body.inspection_due:
            await start_follow_up(ctx.client, ctx.settings.task_queue, "inspection", follow)
            started.append(inspection_workflow_id(body.contract_number))
    quote_ids = [w for w in workflow_ids if w.startswith("quote-")]
    signalled = await signal_all(
        ctx.client, quote_ids, ExitSignal(kind=ExitKind.TOUCHPOINT, occurred_at=occurred_at, detail=body.kind.value)
    )
    return {"event_id": body.event_id, "duplicate": duplicate, "signalled": signalled, "follow_ups": started}


EVENT_SIGNATURE_HEADER = "X-Campaign-Signature"
_EVENTS = TypeAdapter(list[EmailEventIn])


def event_signature(secret: str, body: bytes) -> str:
    """The value of the X-Campaign-Signature header for a body (what the event sender computes)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@router.post("/api/campaign/email-events")
async def email_events(request: Request) -> JSONResponse:
    """Events of the mail provider, per mail (= per workflow step), de-duplicated by event id.

    Signed with `campaign_events_secret` (HMAC-SHA256 of the raw body): a forged "bounce" would
    otherwise silence a person. A provider adapter with its own signature scheme (SendGrid's
    signed event webhook) verifies that and calls `record_email_events` directly.
    """
    ctx = context(request)
    body = await request.body()
    given = request.headers.get(EVENT_SIGNATURE_HEADER, "")
    if not hmac.compare_digest(given, event_signature(ctx.settings.campaign_events_secret, body)):
        return JSONResponse(status_code=401, content={"detail": f"missing or wrong {EVENT_SIGNATURE_HEADER}"})
    try:
        events = _EVENTS.validate_json(body)
    except ValidationError as error:
        return JSONResponse(status_code=422, content={"detail": error.errors(include_url=False, include_context=False)})
    result = await record_email_events(ctx, events)
    if isinstance(result, str):
        return JSONResponse(status_code=422, content={"detail": result})
    return JSONResponse(content={"recorded": result[0], "duplicates": result[1]})


async def record_email_events(ctx: AppContext, events: list[EmailEventIn]) -> tuple[int, int] | str:
    """Record the events once each; bounces, spam reports and unsubscribes suppress the person and
    end their sequences. An unknown mail rejects the whole batch (the reason is returned), so
    nothing is half-recorded."""
    now = datetime.now(UTC)
    if not events:
        return "no events given"

    result = await transaction_in_thread(ctx.engine, lambda session: store_email_events(session, events, now))
    if isinstance(result, str):
        return result
    recorded, duplicates, to_signal = result
    for reason, workflow_ids in to_signal:
        await signal_all(ctx.client, workflow_ids, ExitSignal(kind=ExitKind(reason.value), occurred_at=now))
    return recorded, duplicates


# --- routes: results -------------------------------------------------------------------------


def campaign_plan(settings: Settings) -> CampaignPlan:
    return CAMPAIGN_PLANS[settings.campaign_plan]


@router.get("/api/campaign/report")
def report_json(request: Request, as_of: Annotated[QueryMoment | None, Query()] = None) -> JSONResponse:
    """Results per experiment as of `as_of` (with a UTC offset; default: now)."""
    ctx = context(request)
    reports = campaign_report(ctx.engine, campaign_plan(ctx.settings), as_of or datetime.now(UTC))
    return JSONResponse(content=[r.model_dump(mode="json") for r in reports])


@router.get("/campaign/report")
def report_page(request: Request) -> Response:
    ctx = context(request)
    plan = campaign_plan(ctx.settings)
    reports: list[ExperimentReport] = campaign_report(ctx.engine, plan, datetime.now(UTC))
    return page(request, "campaign_report.html", reports=reports, window=window_text(plan.conversion_window))
