"""Real providers on the web side (issue #5): the Stripe checkout behind the stable pay link and
the verified webhooks of Stripe, Twilio and SendGrid.

- `GET /pay/{token}`: with `PAYMENT_PROVIDER=stripe` the stable link opens a Stripe Checkout
  Session for the balance open *now* (so a link sent weeks ago charges the right amount). With
  the default TestPay it shows the engine's own pay page (web/pages.py), unchanged. This router is
  included before the pages router, so it answers the link first and delegates.
- With Stripe on, TestPay's routes (checkout, "Pay now", `/webhooks/testpay`) answer 404.
- `POST /webhooks/stripe`: Stripe-Signature verified with the SDK, de-duplicated by event id.
- `POST /webhooks/twilio/status`: X-Twilio-Signature verified with the SDK's RequestValidator.
- `POST /webhooks/sendgrid`: ECDSA signature verified with the SDK, timestamp within the replay
  window, each event de-duplicated by `sg_event_id`.

A webhook that fails verification changes nothing and gets 400/403; so does one whose signature
header or body is malformed (not UTF-8, not JSON, non-ASCII or absurd signature values, amounts
beyond the ledger's ceiling) — never a 500. Money moves only through
`web/inbound.py` (book once per reference, then signal the case); an event id is recorded as
processed only after its work is done, so a provider's retry after a crash repeats harmlessly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from core.limits import MAX_LEDGER_CENTS
from core.references import mask_contract_number
from core.tokens import pay_link_url
from infra.config import Settings
from ledger import card_reversals, service
from ledger.db import session_scope
from models.activities import SendMessage
from models.ledger import Contract
from models.providers import DeliveryStatus, ProviderCheckout
from providers import deliveries
from providers.base import CheckoutRequest, ProviderError, WebhookRejected
from providers.registry import Providers, build_providers
from providers.sendgrid_email import SIGNATURE_HEADER as SENDGRID_SIGNATURE
from providers.sendgrid_email import TIMESTAMP_HEADER as SENDGRID_TIMESTAMP
from providers.sendgrid_email import SendGridEmail
from providers.stripe_payments import StripePayments
from providers.twilio_sms import FINAL_FAILURES, INVALID_NUMBER_CODES, TwilioSms
from web import pages
from web.deps import AppContext, berlin_today, context
from workflows.fallback import ChannelFallback, fallback_workflow_id

log = logging.getLogger(__name__)
router = APIRouter()

PROVIDERS_STATE = "providers"  # app.state attribute: built once from the settings (tests may set it)
STRIPE_SOURCE = card_reversals.SOURCE
TWILIO_SOURCE = "twilio"
SENDGRID_SOURCE = "sendgrid"
# SendGrid events that mean the address must not be used again, and those that only report success.
SENDGRID_UNDELIVERABLE = {"bounce", "dropped", "spamreport"}


# --- malformed input, refused before any provider SDK sees it --------------------------------------

MAX_SIGNATURE_HEADER = 1000
UNIX_SECONDS = re.compile(r"[0-9]{1,12}")  # ASCII digits; "²" passes str.isdigit but not int()
# Stripe-Signature: comma-separated key=value pairs of printable ASCII, exactly one t=<unix seconds>.
STRIPE_PAIR = re.compile(r"[a-z0-9]{1,8}=[\x21-\x2b\x2d-\x7e]{1,200}")


def bad_request(detail: str) -> JSONResponse:
    return JSONResponse(status_code=400, content={"detail": detail})


def unreadable_json(body: bytes) -> str | None:
    """Why a webhook body is not a readable JSON document (UTF-8), or None if it is."""
    try:
        json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        return "body is not UTF-8 text"
    except (ValueError, RecursionError):
        return "body is not valid JSON"
    return None


def malformed_stripe_header(header: str | None) -> str | None:
    """Why a Stripe-Signature header is malformed, or None (a missing one the SDK names itself)."""
    if not header:
        return None
    if len(header) > MAX_SIGNATURE_HEADER:
        return f"Stripe-Signature is longer than {MAX_SIGNATURE_HEADER} characters"
    pairs = header.split(",")
    if not all(STRIPE_PAIR.fullmatch(p.strip()) for p in pairs):
        return "Stripe-Signature must be comma-separated key=value pairs of printable ASCII"
    timestamps = [p.strip()[2:] for p in pairs if p.strip().startswith("t=")]
    if len(timestamps) != 1 or not UNIX_SECONDS.fullmatch(timestamps[0]):
        return "Stripe-Signature must hold exactly one timestamp t=<unix seconds>"
    return None


def malformed_sendgrid_timestamp(timestamp: str | None) -> str | None:
    if timestamp and not UNIX_SECONDS.fullmatch(timestamp):
        return f"{SENDGRID_TIMESTAMP} must be unix seconds (at most 12 ASCII digits), got {timestamp[:20]!r}"
    return None


def providers_for(request: Request) -> Providers:
    found: Providers | None = getattr(request.app.state, PROVIDERS_STATE, None)
    if found is None:
        found = build_providers(context(request).settings)
        setattr(request.app.state, PROVIDERS_STATE, found)
    return found


def not_configured(provider: str) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": f"{provider} is not the configured provider"})


# --- the stable pay link ----------------------------------------------------------------------


def checkout_window_seconds(settings: Settings) -> int:
    """Clicks within one window reuse one Checkout Session (same idempotency key and parameters).

    A quarter of the session lifetime: a reused session still has at least ¾ of it left.
    """
    return settings.stripe_session_hours * 3600 // 4


def checkout_idempotency_key(step_key: str, balance_cents: int, window: int) -> str:
    """Deterministic: the pay link's case step, the amount and the time window (never random)."""
    raw = f"{step_key}:checkout:{balance_cents}:{window}"
    if len(raw) <= 200:
        return raw
    return f"{raw[:150]}:{hashlib.sha256(raw.encode()).hexdigest()[:40]}"


def customer_message(request: Request, status_code: int, title: str, text: str) -> Response:
    return pages.customer_page(request, "link_error.html", status_code, title=title, text=text)


@router.get("/p/{token_id}", response_model=None)
def short_pay_link(request: Request, token_id: str) -> Response:
    """The short form SMS carry (activities/messaging.sms_pay_url): on to the signed stable link."""
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        link = service.find_pay_link(session, token_id[:64])
    if link is None:
        return pages.link_rejected_page(request, pages.INVALID_LINK)
    target = pay_link_url(ctx.settings.public_base_url, ctx.settings.link_secret, link.token_id)
    return RedirectResponse(target, status_code=303, headers=pages.CUSTOMER_HEADERS)


@router.get("/pay/{token}", response_model=None)
def pay_link(request: Request, token: str) -> Response:
    """The customer's stable link: Stripe Checkout for today's balance, or the embedded pay page."""
    payments = providers_for(request).payments
    if not isinstance(payments, StripePayments):
        return pages.pay_page(request, token)
    ctx = context(request)
    settings = ctx.settings
    try:
        with session_scope(ctx.engine) as session:
            link = pages.resolve_link(session, settings, token)
            contract = session.get(Contract, link.contract_id)
            assert contract is not None  # foreign key
            balance = service.arrears(session, contract.contract_number, berlin_today()).balance_cents
    except pages.LinkRejected as rejected:
        return pages.link_rejected_page(request, rejected)
    if balance <= 0:
        return customer_message(request, 200, "Nichts offen", "Auf diesem Vertrag ist nichts mehr offen. Vielen Dank!")
    now = int(time.time())
    window = checkout_window_seconds(settings)
    bucket = now // window
    base = settings.public_base_url.rstrip("/")
    checkout_request = CheckoutRequest(
        amount_cents=balance,
        currency=contract.currency.lower(),
        case_id=link.case_id,
        contract_number=contract.contract_number,
        description=f"Offener Beitrag, Vertrag {mask_contract_number(contract.contract_number)}",
        success_url=f"{base}/pay/{token}/stripe/done?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{base}/pay/{token}/stripe/cancelled",
        idempotency_key=checkout_idempotency_key(link.step, balance, bucket),
        expires_at=bucket * window + settings.stripe_session_hours * 3600,
    )
    try:
        checkout = payments.create_checkout(checkout_request)
    except ProviderError as error:
        log.warning("stripe checkout for case %s failed: %s", link.case_id, error)
        return customer_message(
            request,
            503 if error.retryable else 502,
            "Zahlung gerade nicht möglich",
            "Der Zahlungsdienst ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten erneut; "
            "Sie können auch per Überweisung mit der Referenz aus Ihrem Schreiben zahlen.",
        )
    with session_scope(ctx.engine) as session:
        known = session.exec(select(ProviderCheckout).where(ProviderCheckout.session_id == checkout.session_id))
        if known.first() is None:
            session.add(
                ProviderCheckout(
                    session_id=checkout.session_id,
                    pay_link_token_id=link.token_id,
                    contract_id=link.contract_id,
                    case_id=link.case_id,
                    amount_cents=checkout.amount_cents,
                    idempotency_key=checkout_request.idempotency_key,
                    created_at=datetime.now(UTC),
                    expires_at=datetime.fromtimestamp(checkout.expires_at, UTC),
                )
            )
    log.info("stripe checkout %s opened for case %s, %d cents", checkout.session_id, link.case_id, balance)
    return RedirectResponse(checkout.url, status_code=303, headers=pages.CUSTOMER_HEADERS)


# With Stripe on, the built-in TestPay must not take payments: its webhook secret has a development
# default, and a second way to book money is one too many. The routes answer 404; with TestPay
# configured they are served by web/pages.py as before.


def testpay_disabled(request: Request) -> bool:
    return isinstance(providers_for(request).payments, StripePayments)


TESTPAY_OFF = {"detail": "TestPay is switched off (PAYMENT_PROVIDER=stripe)"}


@router.post("/pay/{token}/checkout", response_model=None)
def pay_checkout(request: Request, token: str, amount: Annotated[str, Form()] = "") -> Response:
    if testpay_disabled(request):
        return JSONResponse(status_code=404, content=TESTPAY_OFF)
    return pages.pay_checkout(request, token, amount)


@router.post("/testpay/checkout/{session_id}/pay", response_model=None)
async def testpay_pay(request: Request, session_id: str) -> Response:
    if testpay_disabled(request):
        return JSONResponse(status_code=404, content=TESTPAY_OFF)
    return await pages.testpay_pay(request, session_id)


@router.post("/webhooks/testpay", response_model=None)
async def testpay_webhook(request: Request) -> Response:
    if testpay_disabled(request):
        return JSONResponse(status_code=404, content=TESTPAY_OFF)
    if (why := unreadable_json(await request.body())) is not None:
        return bad_request(why)  # the body is read once and cached: pages reads it again
    return await pages.testpay_webhook(request)


@router.get("/pay/{token}/stripe/done", response_model=None)
def stripe_done(request: Request, token: str) -> Response:
    try:
        with session_scope(context(request).engine) as session:
            pages.resolve_link(session, context(request).settings, token, allow_expired=True)
    except pages.LinkRejected as rejected:
        return pages.link_rejected_page(request, rejected)
    return customer_message(
        request,
        200,
        "Vielen Dank",
        "Ihre Zahlung ist bei uns eingegangen und wird verbucht. Sie erhalten eine Bestätigung, sobald sie "
        "gutgeschrieben ist (bei Lastschrift kann das einige Tage dauern).",
    )


@router.get("/pay/{token}/stripe/cancelled", response_model=None)
def stripe_cancelled(request: Request, token: str) -> Response:
    return customer_message(
        request,
        200,
        "Zahlung abgebrochen",
        "Es wurde nichts abgebucht. Sie können den Link aus Ihrer Nachricht jederzeit erneut öffnen.",
    )


# --- Stripe webhook ---------------------------------------------------------------------------


class BadEvent(ValueError):
    pass


def _object(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise BadEvent("data.object must be an object")
    return obj


def _text(obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= 200:
        raise BadEvent(f"{name} must be a string of 1..200 characters, got {value!r:.60}")
    return value


def _cents(obj: dict[str, Any], name: str) -> int:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LEDGER_CENTS:
        raise BadEvent(f"{name} must be an integer (cents) in 0..{MAX_LEDGER_CENTS}, got {value!r:.60}")
    return value


async def book_checkout(ctx: AppContext, session_obj: dict[str, Any]) -> dict[str, object]:
    """A paid Checkout Session: book its amount once (reference = the PaymentIntent) and signal."""
    metadata = session_obj.get("metadata") if isinstance(session_obj.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    contract_number = _text(metadata, "contract_number")
    currency = _text(session_obj, "currency")
    if currency.lower() != "eur":
        raise BadEvent(f"currency must be eur, got {currency!r}")
    amount = _cents(session_obj, "amount_total")
    if amount <= 0:
        raise BadEvent("amount_total must be positive")
    intent = session_obj.get("payment_intent")
    ref = card_reversals.payment_ref(intent if isinstance(intent, str) and intent else _text(session_obj, "id"))
    payment = await ctx.inbound.payment(
        contract_number=contract_number, external_ref=ref, amount_cents=amount, source=STRIPE_SOURCE
    )
    return {"payment_ref": payment.payment_ref, "booked": payment.booked, "balance_cents": payment.balance_cents}


async def handle_stripe_event(ctx: AppContext, event: dict[str, Any]) -> dict[str, object]:
    kind = str(event["type"])
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        obj = _object(event)
        status = obj.get("payment_status")
        if status != "paid":  # e.g. SEPA debit still processing: async_payment_succeeded follows
            return {"booked": False, "payment_status": str(status)}
        return await book_checkout(ctx, obj)
    if kind in ("checkout.session.async_payment_failed", "payment_intent.payment_failed"):
        # Nothing was booked for it, so nothing to undo: the case keeps dunning as planned.
        obj = _object(event)
        return {"failed": True, "object": str(obj.get("id", ""))[:60]}
    if kind == "charge.refunded":
        charge = _object(event)
        amount = _cents(charge, "amount")
        refunded = _cents(charge, "amount_refunded")
        if refunded <= 0 or refunded > amount:
            raise BadEvent(f"amount_refunded must be in 1..{amount}, got {refunded}")
        if not charge.get("payment_intent"):
            return {"ignored": True, "reason": "charge without a payment intent (not from a pay link)"}
        return await ctx.inbound.card_payment_reversed(
            payment_intent=_text(charge, "payment_intent"),
            amount_cents=amount,
            kept_cents=amount - refunded,
            reason="refund",
        )
    if kind == "charge.dispute.created":
        dispute = _object(event)
        if not dispute.get("payment_intent"):
            return {"ignored": True, "reason": "dispute without a payment intent (not from a pay link)"}
        intent = _text(dispute, "payment_intent")
        # A dispute withdraws the whole charge until it is decided: re-open all of it.
        return await ctx.inbound.card_payment_reversed(
            payment_intent=intent, amount_cents=0, kept_cents=0, reason="dispute"
        )
    return {"ignored": True, "type": kind}


@router.post("/webhooks/stripe")
async def stripe_webhook(request: Request) -> JSONResponse:
    payments = providers_for(request).payments
    if not isinstance(payments, StripePayments):
        return not_configured("Stripe")
    ctx = context(request)
    body = await request.body()
    header = request.headers.get("Stripe-Signature")
    if (why := malformed_stripe_header(header) or unreadable_json(body)) is not None:
        log.warning("stripe webhook rejected: %s", why)
        return bad_request(why)
    try:
        event = payments.verify_event(body, header, int(time.time()))
    except WebhookRejected as error:
        log.warning("stripe webhook rejected: %s", error)
        return bad_request(str(error))
    event_id = str(event["id"])
    prior = await ctx.inbound.duplicate(STRIPE_SOURCE, event_id)
    if prior is not None:
        return JSONResponse({**prior, "duplicate": True})
    try:
        result = await handle_stripe_event(ctx, event)
    except BadEvent as error:
        return JSONResponse(status_code=400, content={"detail": f"{event['type']}: {error}"})
    await ctx.inbound.done(STRIPE_SOURCE, event_id, result)
    log.info("stripe event %s (%s) processed", event_id, event["type"])
    return JSONResponse(result)


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
    if kind == "delivered":
        status, invalid = DeliveryStatus.DELIVERED, False
    elif kind in SENDGRID_UNDELIVERABLE:
        status, invalid = DeliveryStatus.FAILED, True
    else:
        return {"ignored": True, "event": kind[:40]}
    return await delivery_outcome(
        ctx,
        SENDGRID_SOURCE,
        provider_id=provider_id,
        message_key=key,
        status=status,
        error=None if status == DeliveryStatus.DELIVERED else kind,
        contact_invalid=invalid,
    )
