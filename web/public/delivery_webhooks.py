"""Delivery outcomes from the message providers (public app): `POST /webhooks/twilio/status` (X-Twilio-Signature
verified with the SDK's RequestValidator) and `POST /webhooks/sendgrid` (ECDSA signature verified with the SDK,
timestamp within the replay window, each event de-duplicated by `sg_event_id`). A message that could not be
delivered starts its channel fallback (workflows/fallback.py); a webhook that fails verification changes nothing.

A SendGrid event about a campaign mail (its `custom_args` name the campaign workflow and the step) is also
the campaign's per-step event (open, click, bounce, dropped, spam report, unsubscribe …, recorded once by
event id, ledger/campaign.py); a bounce, spam report or unsubscribe suppresses the person and signals
every running workflow of theirs to end (`exit_sequence`)."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlmodel import Session
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from infra.config import Settings
from ledger.campaign import record_email_events
from models.activities import SendMessage
from models.campaign import ExitKind, ExitSignal
from models.campaign_requests import EmailEventIn
from models.providers import DeliveryStatus
from providers import deliveries
from providers.base import WebhookRejected
from providers.sendgrid_email import CAMPAIGN_EVENTS, SendGridEmail
from providers.sendgrid_email import SIGNATURE_HEADER as SENDGRID_SIGNATURE
from providers.sendgrid_email import TIMESTAMP_HEADER as SENDGRID_TIMESTAMP
from providers.twilio_sms import FINAL_FAILURES, INVALID_NUMBER_CODES, TwilioSms
from web.deps import AppContext, context
from web.public.provider_checks import (
    SENDGRID_SOURCE,
    SENDGRID_UNDELIVERABLE,
    TWILIO_SOURCE,
    bad_request,
    malformed_sendgrid_timestamp,
    not_configured,
    providers_for,
    unreadable_json,
)
from workflows.campaign_client import signal_all
from workflows.fallback import ChannelFallback, fallback_workflow_id

log = logging.getLogger(__name__)
router = APIRouter()


# --- delivery outcomes (Twilio, SendGrid) -----------------------------------------------------


async def start_fallback(client: Client, settings: Settings, request: SendMessage, message_key: str) -> str:
    workflow_id = fallback_workflow_id(message_key)
    try:
        await client.start_workflow(
            ChannelFallback.run,
            request,
            id=workflow_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Fallback for {request.kind} of {request.contract_number}",
        )
    except WorkflowAlreadyStartedError:
        pass  # a repeated webhook: the fallback runs or ran already
    return workflow_id


async def delivery_outcome(
    ctx: AppContext,
    provider: str,
    *,
    provider_id: str | None,
    message_key: str | None,
    status: str,
    error: str | None,
    contact_invalid: bool,
) -> dict[str, object]:
    """Record what the provider reported; on failure mark the contact and start the fallback."""

    def record(session: Session) -> tuple[str | None, deliveries.Outcome | None]:
        delivery = None
        if provider_id:
            delivery = deliveries.find_by_provider_id(session, provider, provider_id)
        if delivery is None and message_key:
            delivery = deliveries.find_by_key(session, message_key)
            if delivery is not None and delivery.provider != provider:
                delivery = None
        if delivery is None:
            return None, None
        outcome = deliveries.record_outcome(
            session, delivery, status, error, datetime.now(UTC), contact_invalid=contact_invalid
        )
        return delivery.message_key, outcome

    key, outcome = await ctx.inbound.in_transaction(record)
    if key is None or outcome is None:
        return {"ignored": True, "reason": "unknown message"}
    result: dict[str, object] = {
        "message": key,
        "status": status,
        "changed": outcome.changed,
        "contact_invalidated": outcome.contact_invalidated,
    }
    if outcome.fallback is not None:
        result["fallback"] = await start_fallback(ctx.client, ctx.settings, outcome.fallback, key)
    return result


def callback_url(settings: Settings, request: Request) -> str:
    """The URL Twilio signed: the public one (behind a proxy the app sees another host)."""
    url = f"{settings.public_base_url.rstrip('/')}{request.url.path}"
    return f"{url}?{request.url.query}" if request.url.query else url


@router.post("/webhooks/twilio/status")
async def twilio_status(request: Request) -> JSONResponse:
    sms = providers_for(request).sms
    if not isinstance(sms, TwilioSms):
        return not_configured("Twilio")
    ctx = context(request)
    form = await request.form()
    params = {k: str(v) for k, v in form.items()}
    if not sms.verify_callback(
        callback_url(ctx.settings, request),
        params,
        request.headers.get("X-Twilio-Signature"),
        request.headers.get("X-Twilio-Webhooks-Signature-Settings"),
    ):
        log.warning("twilio status callback rejected: signature does not match")
        return JSONResponse(status_code=403, content={"detail": "X-Twilio-Signature does not match this request"})
    sid, status = params.get("MessageSid", ""), params.get("MessageStatus", "")
    if not sid or not status:
        return JSONResponse(status_code=400, content={"detail": "MessageSid and MessageStatus are required"})
    event_id = f"{sid}:{status}"
    prior = await ctx.inbound.duplicate(TWILIO_SOURCE, event_id)
    if prior is not None:
        return JSONResponse({**prior, "duplicate": True})
    code = params.get("ErrorCode", "")
    if code and not re.fullmatch(r"[0-9]{1,9}", code):
        return bad_request(f"ErrorCode must be a number, got {code[:20]!r}")
    if status == "delivered":
        result = await delivery_outcome(
            ctx,
            TWILIO_SOURCE,
            provider_id=sid,
            message_key=None,
            status=DeliveryStatus.DELIVERED,
            error=None,
            contact_invalid=False,
        )
    elif status in FINAL_FAILURES:
        result = await delivery_outcome(
            ctx,
            TWILIO_SOURCE,
            provider_id=sid,
            message_key=None,
            status=DeliveryStatus.FAILED,
            error=f"{status}/{code}" if code else status,
            contact_invalid=bool(code) and int(code) in INVALID_NUMBER_CODES,
        )
    else:
        result = {"ignored": True, "status": status}  # queued, sending, sent: nothing to do
    await ctx.inbound.done(TWILIO_SOURCE, event_id, result)
    return JSONResponse(result)


@router.post("/webhooks/sendgrid")
async def sendgrid_events(request: Request) -> JSONResponse:
    email = providers_for(request).email
    if not isinstance(email, SendGridEmail):
        return not_configured("SendGrid")
    ctx = context(request)
    body = await request.body()
    timestamp = request.headers.get(SENDGRID_TIMESTAMP)
    if (why := malformed_sendgrid_timestamp(timestamp) or unreadable_json(body)) is not None:
        log.warning("sendgrid webhook rejected: %s", why)
        return bad_request(why)
    try:
        events = email.verify_events(body, request.headers.get(SENDGRID_SIGNATURE), timestamp, int(time.time()))
    except WebhookRejected as error:
        log.warning("sendgrid webhook rejected: %s", error)
        return bad_request(str(error))
    counts = {"processed": 0, "duplicates": 0, "ignored": 0}
    for event in events:
        event_id = event.get("sg_event_id")
        if not isinstance(event_id, str) or not event_id:
            counts["ignored"] += 1
            continue
        if await ctx.inbound.duplicate(SENDGRID_SOURCE, event_id) is not None:
            counts["duplicates"] += 1
            continue
        result = await sendgrid_event(ctx, event)
        await ctx.inbound.done(SENDGRID_SOURCE, event_id, result)
        counts["ignored" if result.get("ignored") else "processed"] += 1
    return JSONResponse(counts)


async def sendgrid_event(ctx: AppContext, event: dict[str, Any]) -> dict[str, object]:
    kind = str(event.get("event", ""))
    case_id, step = event.get("case_id"), event.get("step")
    key = f"{case_id}:{step}" if isinstance(case_id, str) and isinstance(step, str) else None
    sg_message_id = event.get("sg_message_id")
    provider_id = sg_message_id.split(".", 1)[0] if isinstance(sg_message_id, str) else None
    campaign = await campaign_event(ctx, event, kind, key)
    if kind == "delivered":
        status, invalid = DeliveryStatus.DELIVERED, False
    elif kind in SENDGRID_UNDELIVERABLE:
        status, invalid = DeliveryStatus.FAILED, True
    else:
        return {"event": kind[:40], "campaign": campaign} if campaign else {"ignored": True, "event": kind[:40]}
    result = await delivery_outcome(
        ctx,
        SENDGRID_SOURCE,
        provider_id=provider_id,
        message_key=key,
        status=status,
        error=None if status == DeliveryStatus.DELIVERED else kind,
        contact_invalid=invalid,
    )
    return {**result, "campaign": campaign} if campaign else result


def event_time(event: dict[str, Any]) -> datetime:
    """When SendGrid saw it (unix seconds); now if the event carries no usable time."""
    stamp = event.get("timestamp")
    if isinstance(stamp, int) and not isinstance(stamp, bool) and 0 < stamp < 10**11:
        return datetime.fromtimestamp(stamp, UTC)
    return datetime.now(UTC)


async def campaign_event(
    ctx: AppContext, event: dict[str, Any], kind: str, key: str | None
) -> dict[str, object] | None:
    """The event as the campaign step's event, if the mail is a campaign mail (None otherwise). A bounce,
    spam report or unsubscribe suppresses the person and ends their running sequences."""
    mapped = CAMPAIGN_EVENTS.get(kind)
    if mapped is None or key is None:
        return None
    now, event_id = datetime.now(UTC), str(event["sg_event_id"])
    try:
        item = EmailEventIn(event_id=event_id, email_key=key, event=mapped, occurred_at=event_time(event))
    except ValidationError:  # a time outside what the campaign accepts: the moment it arrived
        try:
            item = EmailEventIn(event_id=event_id, email_key=key, event=mapped, occurred_at=now)
        except ValidationError:
            return None  # ids no campaign mail has (too long): not ours
    result = await ctx.inbound.in_transaction(lambda session: record_email_events(session, [item], now))
    if isinstance(result, str):
        return None  # not a campaign mail (a dunning or agent mail)
    recorded, _, to_signal = result
    signalled = 0
    for reason, workflow_ids in to_signal:
        exit_signal = ExitSignal(kind=ExitKind(reason.value), occurred_at=item.occurred_at, detail="sendgrid")
        signalled += await signal_all(ctx.client, workflow_ids, exit_signal)
    return {"event": mapped, "recorded": recorded == 1, "signalled": signalled}
