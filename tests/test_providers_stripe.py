"""Stripe through the real SDK against the local fake: the stable pay link opens a Checkout Session
for today's balance (deterministic idempotency key, no personal data), and the webhook — signed
with the SDK's own scheme — books, ignores, rejects, de-duplicates, refunds and disputes."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.client import Client

from core.tokens import derive_token_id, pay_link_url
from dev.fakes.server import STRIPE_WEBHOOK_SECRET, FakeProviders, stripe_signature
from infra.config import Settings
from ledger import audit, service
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.ledger import PayLink, Payment, Premium
from models.providers import ProviderCheckout
from tests.apps import BothApps
from tests.conftest import seed_contract
from tests.helpers import csrf_cookie
from tests.providers_fakes import (
    CASE_ID,
    CONTRACT,
    PERSONAL_DATA,
    PREMIUMS,
    FakeTemporal,
    engine,
    fake,
    migrated_ledger,
    provider_settings,
)
from web.deps import AppContext
from web.public.testpay_signature import HEADER as TESTPAY_HEADER
from web.public.testpay_signature import header_value as sign_testpay

__all__ = ["engine", "fake", "migrated_ledger"]  # fixtures, imported for pytest
STEP_KEY = f"{CASE_ID}:pay_link_sms"


@dataclass
class Web:
    http: httpx.AsyncClient
    app: BothApps
    temporal: FakeTemporal
    engine: Engine
    settings: Settings
    fake: FakeProviders
    pay_url: str


@pytest_asyncio.fixture
async def web(engine: Engine, settings: Settings, fake: FakeProviders) -> AsyncIterator[Web]:
    seed_contract(engine, CONTRACT, premiums=PREMIUMS)
    settings = provider_settings(settings, fake)
    token_id = derive_token_id(settings.link_secret, CASE_ID, STEP_KEY)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        contract = service.get_contract(session, CONTRACT)
        session.add(
            PayLink(
                token_id=token_id,
                case_id=CASE_ID,
                contract_id=contract.id or 0,
                step=STEP_KEY,
                created_at=now,
                expires_at=now + timedelta(days=30),
            )
        )
    temporal = FakeTemporal()
    client = cast(Client, temporal)
    app = BothApps(AppContext(engine, client, settings, Inbound(engine, client, settings)))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        yield Web(
            http,
            app,
            temporal,
            engine,
            settings,
            fake,
            pay_link_url("http://testserver", settings.link_secret, token_id),
        )


def payments(engine: Engine) -> list[Payment]:
    with session_scope(engine) as session:
        return list(session.exec(select(Payment).order_by(Payment.id)))  # type: ignore[arg-type]


def balance(engine: Engine) -> int:
    with session_scope(engine) as session:
        return service.arrears(session, CONTRACT, datetime.now(UTC).date()).balance_cents


def open_premiums(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return sorted(p.external_id for p in session.exec(select(Premium).where(Premium.status == "open")))


async def post_event(
    web: Web, event: dict[str, Any], *, secret: str = STRIPE_WEBHOOK_SECRET, timestamp: int | None = None
) -> httpx.Response:
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json", "Stripe-Signature": stripe_signature(body, secret, timestamp)}
    return await web.http.post("/webhooks/stripe", content=body, headers=headers)


def session_event(
    event_id: str, kind: str, *, amount: int = 17_050, status: str = "paid", intent: str = "pi_1"
) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "data": {
            "object": {
                "id": "cs_test_1",
                "object": "checkout.session",
                "amount_total": amount,
                "currency": "eur",
                "payment_status": status,
                "payment_intent": intent,
                "metadata": {"case_id": CASE_ID, "contract_number": CONTRACT},
            }
        },
    }


def charge_event(event_id: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": event_id, "object": "event", "type": kind, "data": {"object": obj}}


# --- the stable pay link -----------------------------------------------------------------------


async def test_the_pay_link_opens_a_checkout_session_for_todays_balance(web: Web) -> None:
    response = await web.http.get(web.pay_url)

    assert response.status_code == 303
    (session,) = web.fake.checkout_sessions.values()
    assert response.headers["location"] == session["url"]
    assert session["amount_total"] == 17_050 and session["currency"] == "eur"
    assert session["metadata"] == {"case_id": CASE_ID, "contract_number": CONTRACT}
    assert session["client_reference_id"] == CASE_ID
    # Deterministic key from the case step, amount and time window — never the SDK's random one.
    assert session["idempotency_key"].startswith(f"{STEP_KEY}:checkout:17050:")
    assert 0 < session["expires_at"] - time.time() <= 24 * 3600
    sent = [r for r in web.fake.requests if r[1] == "/v1/checkout/sessions"]
    assert not any(value in json.dumps(sent) + json.dumps(session) for value in PERSONAL_DATA)
    with session_scope(web.engine) as db:
        assert db.exec(select(ProviderCheckout)).one().amount_cents == 17_050


async def test_clicking_again_reuses_the_session_until_the_balance_changes(web: Web) -> None:
    first = await web.http.get(web.pay_url)
    again = await web.http.get(web.pay_url)
    assert first.headers["location"] == again.headers["location"]
    assert len(web.fake.checkout_sessions) == 1

    with session_scope(web.engine) as session:  # the customer paid 50,50 € by bank transfer meanwhile
        service.book_payment(
            session,
            contract_number=CONTRACT,
            external_ref="bank-1",
            amount_cents=5_050,
            received_at=datetime.now(UTC),
            source="bank",
        )
    later = await web.http.get(web.pay_url)

    assert later.headers["location"] != first.headers["location"]
    assert sorted(s["amount_total"] for s in web.fake.checkout_sessions.values()) == [12_000, 17_050]


async def test_a_stripe_5xx_is_retried_by_the_sdk_with_the_same_key(web: Web) -> None:
    web.fake.fail_next("stripe", 500, after_work=True)

    response = await web.http.get(web.pay_url)

    assert response.status_code == 303
    assert len(web.fake.checkout_sessions) == 1  # the retry replayed the first answer
    keys = [r[2].get("idempotency-key") for r in web.fake.requests if r[1] == "/v1/checkout/sessions"]
    assert len(keys) == 2 and keys[0] == keys[1]


async def test_a_stripe_4xx_shows_a_clear_page_and_creates_nothing(web: Web) -> None:
    web.fake.fail_next("stripe", 400, message="Invalid currency")

    response = await web.http.get(web.pay_url)

    assert response.status_code == 502
    assert "Zahlung gerade nicht möglich" in response.text
    assert web.fake.checkout_sessions == {}
    with session_scope(web.engine) as db:
        assert db.exec(select(ProviderCheckout)).first() is None


async def test_a_forged_pay_link_opens_nothing(web: Web) -> None:
    response = await web.http.get(web.pay_url[:-3] + "xyz")
    assert response.status_code == 404
    assert (await web.http.get("/p/0123456789abcdef0123456789abcdef")).status_code == 404
    assert web.fake.checkout_sessions == {}


async def test_the_short_sms_link_leads_to_the_same_checkout(web: Web) -> None:
    token_id = derive_token_id(web.settings.link_secret, CASE_ID, STEP_KEY)

    short = await web.http.get(f"/p/{token_id}")

    assert short.status_code == 303 and short.headers["location"] == web.pay_url
    assert (await web.http.get(short.headers["location"])).status_code == 303
    assert len(web.fake.checkout_sessions) == 1


async def test_the_fake_hosted_checkout_marks_the_session_paid_and_its_event_books(web: Web) -> None:
    """The fake's page (used by `make run`): Pay → session paid; its completed event books it."""
    response = await web.http.get(web.pay_url)
    session_id = response.headers["location"].rsplit("/", 1)[1]
    async with httpx.AsyncClient() as browser:
        paid = await browser.post(f"{web.fake.base_url}/checkout/{session_id}/pay")
    assert paid.status_code == 303
    event = {
        "id": f"evt_{session_id}",
        "object": "event",
        "type": "checkout.session.completed",
        "data": {"object": web.fake.checkout_sessions[session_id]},
    }

    assert (await post_event(web, event)).json()["booked"] is True
    assert balance(web.engine) == 0


# --- the webhook ---------------------------------------------------------------------------------


async def test_a_paid_checkout_is_booked_once_and_the_case_is_signalled(web: Web) -> None:
    event = session_event("evt_1", "checkout.session.completed")

    first = await post_event(web, event)
    again = await post_event(web, event)

    assert first.status_code == 200 and first.json()["booked"] is True
    assert again.json()["duplicate"] is True
    assert [(p.external_ref, p.amount_cents, p.source) for p in payments(web.engine)] == [
        ("stripe:pi_1", 17_050, "stripe")
    ]
    assert balance(web.engine) == 0
    assert [(wid, name) for wid, name, _ in web.temporal.signals] == [(f"dunning-{CONTRACT}", "payment_booked")]


async def test_an_unpaid_completed_session_books_nothing_until_the_debit_succeeds(web: Web) -> None:
    pending = await post_event(web, session_event("evt_1", "checkout.session.completed", status="unpaid"))
    assert pending.json() == {"booked": False, "payment_status": "unpaid"}
    assert payments(web.engine) == []

    failed = await post_event(web, session_event("evt_2", "checkout.session.async_payment_failed", status="unpaid"))
    assert failed.json()["failed"] is True and payments(web.engine) == []

    succeeded = await post_event(web, session_event("evt_3", "checkout.session.async_payment_succeeded", intent="pi_2"))
    assert succeeded.json()["booked"] is True
    assert [p.external_ref for p in payments(web.engine)] == ["stripe:pi_2"]


async def test_a_failed_payment_intent_books_nothing(web: Web) -> None:
    event = charge_event("evt_1", "payment_intent.payment_failed", {"id": "pi_9", "object": "payment_intent"})
    assert (await post_event(web, event)).json()["failed"] is True
    assert payments(web.engine) == [] and balance(web.engine) == 17_050


@pytest.mark.parametrize(
    "tamper",
    ["wrong secret", "altered body", "no header", "stale", "future"],
)
async def test_forged_or_stale_webhooks_are_rejected_and_book_nothing(web: Web, tamper: str) -> None:
    event = session_event("evt_1", "checkout.session.completed")
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json", "Stripe-Signature": stripe_signature(body)}
    if tamper == "wrong secret":
        headers["Stripe-Signature"] = stripe_signature(body, "whsec_someone_else")
    elif tamper == "altered body":
        body = body.replace(b"17050", b"99999")
    elif tamper == "no header":
        del headers["Stripe-Signature"]
    elif tamper == "stale":
        headers["Stripe-Signature"] = stripe_signature(body, timestamp=int(time.time()) - 301)
    else:
        headers["Stripe-Signature"] = stripe_signature(body, timestamp=int(time.time()) + 3600)

    response = await web.http.post("/webhooks/stripe", content=body, headers=headers)

    assert response.status_code == 400
    assert "Stripe-Signature" in response.json()["detail"]
    assert payments(web.engine) == [] and web.temporal.signals == []
    assert (await post_event(web, event)).json()["booked"] is True  # the genuine event was not marked seen


async def test_a_full_refund_reopens_the_paid_case_and_resumes_dunning(web: Web) -> None:
    await post_event(web, session_event("evt_1", "checkout.session.completed"))
    assert open_premiums(web.engine) == []
    refund = charge_event(
        "evt_2",
        "charge.refunded",
        {"id": "ch_1", "payment_intent": "pi_1", "amount": 17_050, "amount_refunded": 17_050},
    )

    result = (await post_event(web, refund)).json()
    again = (await post_event(web, refund)).json()

    assert result["changed"] is True and sorted(result["reopened"]) == ["P-1", "P-2"]
    assert again["duplicate"] is True
    assert balance(web.engine) == 17_050 and open_premiums(web.engine) == ["P-1", "P-2"]
    (payment,) = payments(web.engine)
    assert payment.returned and payment.return_reason == "refund"
    assert [s.id for s in web.temporal.started] == [f"dunning-{CONTRACT}"] * 2
    assert all(s.kwargs["start_signal"] == "premium_overdue" for s in web.temporal.started)
    with session_scope(web.engine) as session:  # Stripe's refund is in the contract's audit trail
        trail = [(e.actor_kind, e.actor, e.action) for e in audit.for_contract(session, CONTRACT)]
    assert trail == [("provider", "stripe", "POST /webhooks/stripe")] * 2  # the payment and its refund


async def test_a_partial_refund_reopens_only_the_refunded_part(web: Web) -> None:
    await post_event(web, session_event("evt_1", "checkout.session.completed"))
    refund = {"id": "ch_1", "payment_intent": "pi_1", "amount": 17_050, "amount_refunded": 5_050}

    await post_event(web, charge_event("evt_2", "charge.refunded", refund))

    assert balance(web.engine) == 5_050
    assert [(p.external_ref, p.amount_cents, p.returned) for p in payments(web.engine)] == [
        ("stripe:pi_1", 17_050, True),
        ("stripe:pi_1:kept:5050", 12_000, False),
    ]
    # The rest refunded later: everything open again; the older event redelivered changes nothing.
    await post_event(web, charge_event("evt_3", "charge.refunded", {**refund, "amount_refunded": 17_050}))
    assert balance(web.engine) == 17_050
    await post_event(web, charge_event("evt_2b", "charge.refunded", refund))
    assert balance(web.engine) == 17_050 and len(payments(web.engine)) == 2


async def test_a_dispute_reopens_the_amount(web: Web) -> None:
    await post_event(web, session_event("evt_1", "checkout.session.completed"))
    dispute = {"id": "dp_1", "object": "dispute", "charge": "ch_1", "payment_intent": "pi_1", "amount": 17_050}

    result = (await post_event(web, charge_event("evt_2", "charge.dispute.created", dispute))).json()

    assert result["changed"] is True
    assert balance(web.engine) == 17_050
    assert payments(web.engine)[0].return_reason == "dispute"
    assert len(web.temporal.started) == 2  # dunning resumes for both premiums


async def test_other_events_are_acknowledged_and_ignored(web: Web) -> None:
    response = await post_event(web, charge_event("evt_1", "customer.created", {"id": "cus_1"}))
    assert response.json() == {"ignored": True, "type": "customer.created"}
    foreign = {"id": "ch_9", "payment_intent": None, "amount": 500, "amount_refunded": 500}
    assert (await post_event(web, charge_event("evt_2", "charge.refunded", foreign))).json()["ignored"] is True
    assert payments(web.engine) == []


async def test_a_refund_of_a_payment_the_ledger_does_not_know_is_retried_later(web: Web) -> None:
    refund = {"id": "ch_1", "payment_intent": "pi_unknown", "amount": 17_050, "amount_refunded": 17_050}
    event = charge_event("evt_1", "charge.refunded", refund)

    assert (await post_event(web, event)).status_code == 404  # Stripe redelivers; not recorded as seen
    await post_event(web, session_event("evt_0", "checkout.session.completed", intent="pi_unknown"))
    assert (await post_event(web, event)).json()["changed"] is True
    assert balance(web.engine) == 17_050


async def test_testpay_takes_no_payments_while_stripe_is_configured(web: Web) -> None:
    event = {
        "id": "evt_tp",
        "type": "checkout.session.completed",
        "data": {"session_id": "tps_1", "amount_cents": 17_050, "contract_number": CONTRACT},
    }
    body = json.dumps(event).encode()
    signature = sign_testpay(web.settings.testpay_webhook_secret, body, int(time.time()))

    webhook = await web.http.post("/webhooks/testpay", content=body, headers={TESTPAY_HEADER: signature})
    form = csrf_cookie(web.http, web.settings.csrf_secret)  # a browser that has seen a form of the app
    checkout = await web.http.post(
        f"{web.pay_url.removeprefix('http://testserver')}/checkout", data={"amount": "10", **form}
    )

    assert webhook.status_code == 404 and checkout.status_code == 404
    assert payments(web.engine) == []
