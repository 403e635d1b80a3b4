"""The stable pay link (public app): `/p/{token_id}` and `/pay/{token}`. With `PAYMENT_PROVIDER=stripe` the link
opens a Stripe Checkout Session for the balance open *now* (so a link sent weeks ago charges the right amount);
with the default TestPay it shows the engine's own pay page (web/public/pay.py), unchanged. With Stripe on,
TestPay's routes (checkout, "Pay now", `/webhooks/testpay`) answer 404."""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlmodel import select

from core.references import mask_contract_number
from core.tokens import pay_link_url
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from ledger.portal import customer_of_link
from models.ledger import Contract
from models.providers import ProviderCheckout
from providers.base import CheckoutRequest, ProviderError
from providers.stripe_payments import StripePayments
from web.deps import berlin_today, context
from web.public import pay, testpay
from web.public.pay import INVALID_LINK, LinkRejected, link_message, link_rejected_page, pay_page, resolve_link
from web.public.portal.i18n import texts
from web.public.provider_checks import bad_request, providers_for, unreadable_json
from web.render import CUSTOMER_HEADERS

log = logging.getLogger(__name__)
router = APIRouter()


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


@router.get("/p/{token_id}", response_model=None)
def short_pay_link(request: Request, token_id: str) -> Response:
    """The short form SMS carry (activities/messaging.sms_pay_url): on to the signed stable link."""
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        link = service.find_pay_link(session, token_id[:64])
    if link is None:
        return link_rejected_page(request, INVALID_LINK)
    target = pay_link_url(ctx.settings.public_base_url, ctx.settings.link_secret, link.token_id)
    return RedirectResponse(target, status_code=303, headers=CUSTOMER_HEADERS)


@router.get("/pay/{token}", response_model=None)
def pay_link(request: Request, token: str) -> Response:
    """The customer's stable link: Stripe Checkout for today's balance, or the embedded pay page."""
    payments = providers_for(request).payments
    if not isinstance(payments, StripePayments):
        return pay_page(request, token)
    ctx = context(request)
    settings = ctx.settings
    try:
        with session_scope(ctx.engine) as session:
            link = resolve_link(session, settings, token)
            contract = session.get(Contract, link.contract_id)
            assert contract is not None  # foreign key
            balance = service.arrears(session, contract.contract_number, berlin_today()).balance_cents
            language = customer_of_link(session, link).language
    except LinkRejected as rejected:
        return link_rejected_page(request, rejected)
    if balance <= 0:
        return link_message(request, 200, "link.nothing_open", language)
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
        return link_message(request, 503 if error.retryable else 502, "link.provider_down", language)
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
    return RedirectResponse(checkout.url, status_code=303, headers=CUSTOMER_HEADERS)


# With Stripe on, the built-in TestPay must not take payments: its webhook secret has a development
# default, and a second way to book money is one too many. The routes answer 404; with TestPay
# configured they are served by web/public/pay.py and web/public/testpay.py.


def testpay_disabled(request: Request) -> bool:
    return isinstance(providers_for(request).payments, StripePayments)


TESTPAY_OFF = {"detail": "TestPay is switched off (PAYMENT_PROVIDER=stripe)"}


@router.post("/pay/{token}/checkout", response_model=None)
def pay_checkout(request: Request, token: str, amount: Annotated[str, Form()] = "") -> Response:
    if testpay_disabled(request):
        return JSONResponse(status_code=404, content=TESTPAY_OFF)
    return pay.pay_checkout(request, token, amount)


@router.post("/testpay/checkout/{session_id}/pay", response_model=None)
async def testpay_pay(request: Request, session_id: str) -> Response:
    if testpay_disabled(request):
        return JSONResponse(status_code=404, content=TESTPAY_OFF)
    return await testpay.testpay_pay(request, session_id)


@router.post("/webhooks/testpay", response_model=None)
async def testpay_webhook(request: Request) -> Response:
    if testpay_disabled(request):
        return JSONResponse(status_code=404, content=TESTPAY_OFF)
    if (why := unreadable_json(await request.body())) is not None:
        return bad_request(why)  # the body is read once and cached: testpay reads it again
    return await testpay.testpay_webhook(request)


@router.get("/pay/{token}/stripe/done", response_model=None)
def stripe_done(request: Request, token: str) -> Response:
    try:
        with session_scope(context(request).engine) as session:
            link = resolve_link(session, context(request).settings, token, allow_expired=True)
            language = customer_of_link(session, link).language
    except LinkRejected as rejected:
        return link_rejected_page(request, rejected)
    return link_message(request, 200, "link.stripe_done", language)


@router.get("/pay/{token}/stripe/cancelled", response_model=None)
def stripe_cancelled(request: Request, token: str) -> Response:
    """Shown without reading the link (as before): the page's or the browser's language."""
    return link_message(request, 200, "link.stripe_cancelled")


texts(
    {
        # The stable pay link's notices with Stripe (link_error.html), in the customer's language.
        "link.nothing_open.title": ("Nichts offen", "Nothing open", "Intet udestående"),
        "link.nothing_open.text": (
            "Auf diesem Vertrag ist nichts mehr offen. Vielen Dank!",
            "Nothing is open on this contract any more. Thank you!",
            "Der er ikke længere noget skyldigt på denne police. Mange tak!",
        ),
        "link.provider_down.title": (
            "Zahlung gerade nicht möglich",
            "Payment not possible right now",
            "Betaling er ikke mulig lige nu",
        ),
        "link.provider_down.text": (
            "Der Zahlungsdienst ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten erneut; "
            "Sie können auch per Überweisung mit der Referenz aus Ihrem Schreiben zahlen.",
            "The payment service cannot be reached right now. Please try again in a few minutes; you can also "
            "pay by bank transfer with the reference from your letter.",
            "Betalingstjenesten kan ikke nås lige nu. Prøv igen om nogle minutter; du kan også betale via "
            "bankoverførsel med referencen fra dit brev.",
        ),
        "link.stripe_done.title": ("Vielen Dank", "Thank you", "Mange tak"),
        "link.stripe_done.text": (
            "Ihre Zahlung ist bei uns eingegangen und wird verbucht. Sie erhalten eine Bestätigung, sobald sie "
            "gutgeschrieben ist (bei Lastschrift kann das einige Tage dauern).",
            "We have received your payment and are booking it. You will get a confirmation as soon as it is "
            "credited (for a direct debit this can take a few days).",
            "Vi har modtaget din betaling, og den bliver bogført. Du får en bekræftelse, så snart den er "
            "krediteret (ved direkte debitering kan det tage nogle dage).",
        ),
        "link.stripe_cancelled.title": ("Zahlung abgebrochen", "Payment cancelled", "Betalingen blev afbrudt"),
        "link.stripe_cancelled.text": (
            "Es wurde nichts abgebucht. Sie können den Link aus Ihrer Nachricht jederzeit erneut öffnen.",
            "Nothing has been charged. You can open the link from your message again at any time.",
            "Der er ikke trukket noget. Du kan altid åbne linket fra din besked igen.",
        ),
    }
)
