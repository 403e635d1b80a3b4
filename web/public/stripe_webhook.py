"""`POST /webhooks/stripe` (public app): Stripe-Signature verified with the SDK, de-duplicated by event id.
A checkout that completed books the payment through ledger/inbound.py (once per reference, then the case is
signalled; a portal checkout for several contracts books each contract's share on that contract); refunds
and disputes are booked by ledger/card_reversals.py. An event id is recorded as processed only after its
work is done, so a provider's retry after a crash repeats harmlessly; a webhook that fails verification
changes nothing and gets 400."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session, select

from core.limits import MAX_LEDGER_CENTS
from ledger import card_reversals, portal_payments
from models.providers import ProviderCheckout
from providers.base import WebhookRejected
from providers.stripe_payments import StripePayments
from web.deps import AppContext, context
from web.public.provider_checks import (
    STRIPE_SOURCE,
    bad_request,
    malformed_stripe_header,
    not_configured,
    providers_for,
    unreadable_json,
)

log = logging.getLogger(__name__)
router = APIRouter()
# The currencies contracts book in (the plans': EUR, DKK on the Danish plan); a checkout must be in
# its contracts' own.
CURRENCIES = frozenset({"EUR", "DKK"})


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
    """A paid Checkout Session: book its amount once (reference = the PaymentIntent) and signal.

    A portal checkout paying several contracts carries its allocation in the metadata: each
    contract's share is booked on that contract (`<reference>:<contract number>`) and its case told.
    """
    metadata = session_obj.get("metadata") if isinstance(session_obj.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    contract_number = _text(metadata, "contract_number")
    currency = _text(session_obj, "currency")
    if currency.upper() not in CURRENCIES:
        raise BadEvent(f"currency must be one of {', '.join(sorted(CURRENCIES)).lower()}, got {currency!r}")
    amount = _cents(session_obj, "amount_total")
    if amount <= 0:
        raise BadEvent("amount_total must be positive")
    parts = [(contract_number, amount)]
    if "allocation" in metadata:
        try:
            parts = portal_payments.parse_allocation(_text(metadata, "allocation")[:500], amount)
        except ValueError as error:
            raise BadEvent(f"metadata.allocation: {error}") from None
    if len(parts) > 1:
        numbers = [n for n, _ in parts]
        unknown = await ctx.inbound.in_transaction(lambda s: portal_payments.unknown_contracts(s, numbers))
        if unknown:  # nothing is booked unless every share has its contract
            raise BadEvent(f"metadata.allocation names unknown contracts {', '.join(unknown)[:120]}")
    # The checkout was opened in its contracts' currency (issue #17): any other is not booked.
    booked_in = [n for n, _ in parts]
    wrong = await ctx.inbound.in_transaction(lambda s: portal_payments.wrong_currency(s, booked_in, currency))
    if wrong:
        raise BadEvent(f"currency {currency.lower()} is not the currency of contract {', '.join(wrong)[:120]}")
    intent = session_obj.get("payment_intent")
    reference = intent if isinstance(intent, str) and intent else _text(session_obj, "id")
    booked: list[dict[str, object]] = []
    for number, cents in parts:
        payment = await ctx.inbound.payment(
            contract_number=number,
            external_ref=portal_payments.share_ref(card_reversals.payment_ref(reference), number, len(parts)),
            amount_cents=cents,
            source=STRIPE_SOURCE,
        )
        booked.append(
            {"payment_ref": payment.payment_ref, "booked": payment.booked, "balance_cents": payment.balance_cents}
        )
    session_id = session_obj.get("id")
    if isinstance(session_id, str):
        await ctx.inbound.in_transaction(lambda s: record_payment_intent(s, session_id, reference))
    return booked[0] if len(booked) == 1 else {"payments": booked, "booked": any(b["booked"] for b in booked)}


def record_payment_intent(session: Session, session_id: str, reference: str) -> None:
    """The checkout's row learns what it was booked under (the portal's result page reads it)."""
    checkout = session.exec(select(ProviderCheckout).where(ProviderCheckout.session_id == session_id)).first()
    if checkout is not None and checkout.payment_intent != reference:
        checkout.payment_intent = reference
        session.add(checkout)


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
