"""TestPay, the built-in stand-in for Stripe (embedded default, public app): a checkout page, and a
"Pay now" button that sends a signed webhook over real HTTP to the engine's own `/webhooks/testpay`,
exactly as a real provider would. The engine books the payment from the webhook, never from the button.
A checkout opened in the customer portal may pay several contracts: the event carries the allocation and
each contract's share is booked on that contract."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import update
from sqlmodel import Session, col, select

from core.tokens import PAY_LINK_SALT, sign
from infra.config import Settings
from ledger import portal_payments
from ledger.audit import touched_contract
from ledger.db import session_scope
from models.ledger import Contract, TestPaySession
from web.deps import context
from web.public.portal.i18n import money
from web.public.testpay_signature import HEADER as SIGNATURE_HEADER
from web.public.testpay_signature import SignatureError, header_value, verify
from web.render import CUSTOMER_HEADERS, in_thread, page

log = logging.getLogger(__name__)
router = APIRouter()


PAYMENT_SOURCE = "testpay"
EVENT_COMPLETED = "checkout.session.completed"


# app.state attribute tests may set to an httpx transport for the webhook; unset in production,
# where the provider page posts over real HTTP to settings.public_base_url.
WEBHOOK_TRANSPORT_STATE = "testpay_webhook_transport"


# --- TestPay: the built-in payment provider ---------------------------------------------------


@dataclass(frozen=True)
class CheckoutSnapshot:
    session_id: str
    status: str
    amount_cents: int
    contract_number: str
    case_id: str
    pay_link_token_id: str
    # A portal checkout (issue #14): the customer's, possibly for several contracts, each share booked
    # on its own contract; None for a pay link's checkout.
    customer_id: int | None = None
    allocation: tuple[tuple[str, int], ...] = ()
    currency: str = "EUR"  # the contract's (one currency per checkout: the portal refuses a mix)

    @property
    def amount_text(self) -> str:
        """The amount as the checkout page shows it: 1.234,56 € / 1.234,56 DKK."""
        return money("de", self.amount_cents, self.currency)

    def urls(self, settings: Settings) -> tuple[str, str]:
        """Where "Cancel" and "Back to the merchant" lead: the portal, or the pay link's pages."""
        if self.customer_id is not None:
            return "/portal/pay", f"/portal/pay/result?checkout={self.session_id}"
        token = sign(settings.link_secret, PAY_LINK_SALT, self.pay_link_token_id)
        return f"/pay/{token}", f"/pay/{token}/done?session={self.session_id}"


def load_checkout(session: Session, session_id: str) -> CheckoutSnapshot | None:
    row = session.exec(select(TestPaySession).where(TestPaySession.session_id == session_id)).first()
    if row is None:
        return None
    contract = session.get(Contract, row.contract_id)
    assert contract is not None
    return CheckoutSnapshot(
        session_id=row.session_id,
        status=row.status,
        amount_cents=row.amount_cents,
        contract_number=contract.contract_number,
        case_id=row.case_id,
        pay_link_token_id=row.pay_link_token_id,
        customer_id=row.customer_id,
        allocation=tuple(
            (str(share["contract_number"]), int(str(share["amount_cents"]))) for share in row.allocation or []
        ),
        currency=contract.currency,
    )


def mark_paid(session: Session, session_id: str) -> tuple[CheckoutSnapshot | None, bool]:
    """Open → paid, atomically (a double click or two tabs pay once). Returns (checkout, newly paid)."""
    result = session.connection().execute(
        update(TestPaySession)
        .where(col(TestPaySession.session_id) == session_id, col(TestPaySession.status) == "open")
        .values(status="paid")
    )
    session.expire_all()
    return load_checkout(session, session_id), result.rowcount == 1


def completed_event(checkout: CheckoutSnapshot, created: int) -> dict[str, object]:
    """The provider's event; its id is fixed per checkout, so a redelivery is recognised. A portal
    checkout for several contracts carries its allocation (contract numbers and cents)."""
    data: dict[str, object] = {
        "session_id": checkout.session_id,
        "amount_cents": checkout.amount_cents,
        "contract_number": checkout.contract_number,
        "case_id": checkout.case_id,
    }
    if len(checkout.allocation) > 1:
        data["allocation"] = [{"contract_number": n, "amount_cents": cents} for n, cents in checkout.allocation]
    return {"id": f"evt_{checkout.session_id}", "type": EVENT_COMPLETED, "data": data, "created": created}


async def deliver_webhook(
    settings: Settings, event: dict[str, object], transport: httpx.AsyncBaseTransport | None = None
) -> httpx.Response:
    """POST the signed event to the engine's webhook endpoint (real HTTP unless a transport is given)."""
    body = json.dumps(event, separators=(",", ":")).encode()
    now = int(time.time())
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: header_value(settings.testpay_webhook_secret, body, now),
    }
    url = f"{settings.public_base_url.rstrip('/')}/webhooks/testpay"
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(15.0)) as client:
        return await client.post(url, content=body, headers=headers)


def unknown_checkout_page(request: Request) -> Response:
    return page(request, "testpay.html", 404, checkout=None, cancel_url=None, error="Unknown checkout session.")


@router.get("/testpay/checkout/{session_id}", response_class=HTMLResponse)
def testpay_checkout(request: Request, session_id: str) -> Response:
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        checkout = load_checkout(session, session_id)
    if checkout is None:
        return unknown_checkout_page(request)
    cancel_url, done_url = checkout.urls(ctx.settings)
    return page(
        request,
        "testpay.html",
        checkout=checkout,
        cancel_url=cancel_url,
        done_url=done_url,
        error=None,
        headers=CUSTOMER_HEADERS,
    )


async def testpay_pay(request: Request, session_id: str) -> Response:
    """Capture the payment, then notify the merchant by signed webhook.

    A second click on a paid checkout captures nothing; it delivers the same event again (same
    event id), like a provider's webhook retry, so a notification that failed the first time
    is not lost and one that arrived is recognised as a duplicate.
    """
    ctx = context(request)
    checkout, newly_paid = await in_thread(ctx.engine, lambda s: mark_paid(s, session_id))
    if checkout is None:
        return unknown_checkout_page(request)
    touched_contract(checkout.contract_number)
    cancel_url, done_url = checkout.urls(ctx.settings)
    transport: httpx.AsyncBaseTransport | None = getattr(request.app.state, WEBHOOK_TRANSPORT_STATE, None)
    problem: str | None = None
    try:
        response = await deliver_webhook(ctx.settings, completed_event(checkout, int(time.time())), transport)
        if response.status_code >= 300:
            problem = f"the merchant answered HTTP {response.status_code}"
    except httpx.HTTPError as error:
        problem = f"the merchant could not be reached ({type(error).__name__})"
    if problem is not None:
        log.warning("testpay webhook for %s not delivered: %s", session_id, problem)
        return page(
            request,
            "testpay.html",
            502,
            checkout=checkout,
            cancel_url=cancel_url,
            done_url=None,
            error=f"Payment captured, but {problem}. Press “Pay now” again to resend the notification.",
            headers=CUSTOMER_HEADERS,
        )
    log.info("testpay checkout %s %s", session_id, "paid" if newly_paid else "already paid; event redelivered")
    return RedirectResponse(done_url, status_code=303)


# --- the engine's webhook endpoint ------------------------------------------------------------


class BadEvent(ValueError):
    pass


@dataclass(frozen=True)
class CompletedCheckout:
    session_id: str
    amount_cents: int
    contract_number: str
    allocation: tuple[tuple[str, int], ...] = ()  # several contracts: (contract number, cents) each


def _text_field(data: dict[str, Any], name: str, prefix: str = "") -> str:
    value = data.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= 200:
        raise BadEvent(f"{prefix}{name} must be a string of 1..200 characters, got {value!r:.60}")
    return value


def parse_completed(event: dict[str, Any]) -> CompletedCheckout:
    data = event.get("data")
    if not isinstance(data, dict):
        raise BadEvent(f"data must be an object, got {data!r:.60}")
    amount = data.get("amount_cents")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise BadEvent(f"data.amount_cents must be a positive integer (cents), got {amount!r:.60}")
    return CompletedCheckout(
        session_id=_text_field(data, "session_id", "data."),
        amount_cents=amount,
        contract_number=_text_field(data, "contract_number", "data."),
        allocation=parse_allocation(data.get("allocation"), amount),
    )


def parse_allocation(value: object, amount_cents: int) -> tuple[tuple[str, int], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not 2 <= len(value) <= 50:
        raise BadEvent(f"data.allocation must be a list of 2..50 shares, got {value!r:.60}")
    shares: list[tuple[str, int]] = []
    for index, share in enumerate(value):
        if not isinstance(share, dict):
            raise BadEvent(f"data.allocation[{index}] must be an object, got {share!r:.60}")
        cents = share.get("amount_cents")
        if isinstance(cents, bool) or not isinstance(cents, int) or cents <= 0:
            raise BadEvent(f"data.allocation[{index}].amount_cents must be a positive integer, got {cents!r:.60}")
        shares.append((_text_field(share, "contract_number", f"data.allocation[{index}]."), cents))
    if len({n for n, _ in shares}) != len(shares):
        raise BadEvent("data.allocation names a contract twice")
    if sum(c for _, c in shares) != amount_cents:
        raise BadEvent(f"data.allocation adds up to {sum(c for _, c in shares)} cents, amount_cents is {amount_cents}")
    return tuple(shares)


def bad_request(detail: str) -> JSONResponse:
    return JSONResponse(status_code=400, content={"detail": detail})


async def testpay_webhook(request: Request) -> JSONResponse:
    """Verified, de-duplicated by event id; the payment is booked once per checkout session."""
    ctx = context(request)
    body = await request.body()
    try:
        verify(ctx.settings.testpay_webhook_secret, body, request.headers.get(SIGNATURE_HEADER), int(time.time()))
    except SignatureError as error:
        log.warning("testpay webhook rejected: %s", error)
        return bad_request(str(error))
    try:
        event = json.loads(body)
        if not isinstance(event, dict):
            raise BadEvent(f"body must be a JSON object, got {type(event).__name__}")
        event_id = _text_field(event, "id")
        event_type = _text_field(event, "type")
    except json.JSONDecodeError:
        return bad_request("body is not valid JSON")
    except BadEvent as error:
        return bad_request(str(error))

    prior = await ctx.inbound.duplicate(PAYMENT_SOURCE, event_id)
    if prior is not None:
        return JSONResponse({**prior, "duplicate": True})
    if event_type != EVENT_COMPLETED:
        ignored: dict[str, object] = {"ignored": True, "type": event_type}
        await ctx.inbound.done(PAYMENT_SOURCE, event_id, ignored)
        return JSONResponse(ignored)
    try:
        completed = parse_completed(event)
    except BadEvent as error:
        return bad_request(str(error))
    parts = completed.allocation or ((completed.contract_number, completed.amount_cents),)
    if len(parts) > 1:
        numbers = [n for n, _ in parts]
        unknown = await ctx.inbound.in_transaction(lambda s: portal_payments.unknown_contracts(s, numbers))
        if unknown:  # nothing is booked unless every share has its contract
            return bad_request(f"data.allocation names unknown contracts {', '.join(unknown)[:120]}")
    booked: list[dict[str, object]] = []
    for contract_number, cents in parts:  # each share on its own contract, once per reference
        payment = await ctx.inbound.payment(
            contract_number=contract_number,
            external_ref=portal_payments.share_ref(f"testpay:{completed.session_id}", contract_number, len(parts)),
            amount_cents=cents,
            source=PAYMENT_SOURCE,
        )
        booked.append(
            {"payment_ref": payment.payment_ref, "booked": payment.booked, "balance_cents": payment.balance_cents}
        )
        log.info("testpay event %s: payment %s booked=%s", event_id, payment.payment_ref, payment.booked)
    result = booked[0] if len(booked) == 1 else {"payments": booked, "booked": any(b["booked"] for b in booked)}
    await ctx.inbound.done(PAYMENT_SOURCE, event_id, result)
    return JSONResponse(result)
