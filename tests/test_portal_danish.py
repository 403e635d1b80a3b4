"""The customer portal in Danish and in the contract's currency (issue #17): a Danish customer on a DKK
contract reads the overview, the pay page, the transfer page and the pay-link page in Danish with
amounts in kroner; a Stripe checkout for a DKK contract is opened in DKK and its webhook booked, one in
another currency is not; euros and kroner are never one checkout. The cases are not started: the
pages say there is no case running, which is all these tests need from Temporal."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from core.references import payment_reference
from dev.fakes.server import FakeProviders, environment, stripe_signature
from infra.config import Settings
from ledger import portal_payments, service
from ledger.db import session_scope
from ledger.inbound import Inbound
from ledger.portal import dunning_contracts
from models.ledger import Contract, Customer, Payment
from tests.apps import BothApps
from tests.helpers import form_post
from tests.portal_support import make_pay_link, portal_client, portal_cookie, seed_portal_customer
from tests.providers_fakes import fake
from web.deps import AppContext
from web.deps import berlin_today as wall_today
from web.public.portal.i18n import money, t

__all__ = ["fake"]  # the fake Stripe, a fixture imported for pytest

DANISH, GERMAN = "K-200001", "K-200002"


def apps(time_env: WorkflowEnvironment, engine: Engine, settings: Settings) -> BothApps:
    return BothApps(
        AppContext(engine, time_env.client, settings, Inbound(engine, time_env.client, settings)), who="real"
    )


def stripe_settings(settings: Settings, fake: FakeProviders) -> Settings:
    values = {k.lower(): v for k, v in environment(fake.base_url).items() if k.startswith(("STRIPE", "PAYMENT"))}
    return settings.model_copy(update={**values, "public_base_url": "http://testserver"})


def set_currency(engine: Engine, contract_number: str, currency: str) -> None:
    with session_scope(engine) as session:
        contract = service.get_contract(session, contract_number)
        contract.currency = currency
        session.add(contract)


def danish_customer(engine: Engine, settings: Settings, cents: int = 45_000) -> tuple[int, str, str]:
    """A Danish-speaking customer with one DKK contract in dunning: (customer id, token, token id)."""
    due = wall_today() - timedelta(days=1)
    customer_id = seed_portal_customer(engine, DANISH, premiums=[("P-DK-1", due, cents)], language="da")
    set_currency(engine, DANISH, "DKK")
    token, token_id = make_pay_link(engine, settings, DANISH)
    return customer_id, token, token_id


def add_euro_contract(engine: Engine, settings: Settings, customer_id: int, cents: int) -> None:
    with session_scope(engine) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        service.upsert_contract(session, GERMAN, customer, agent_code="A-7", product="Kfz")
        due = wall_today() - timedelta(days=1)
        service.book_premium(
            session,
            external_id="P-DE-1",
            contract_number=GERMAN,
            period_start=due,
            period_end=due + timedelta(days=30),
            due_date=due,
            amount_cents=cents,
        )
    make_pay_link(engine, settings, GERMAN)


def text_of(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).replace("&nbsp;", " ")


def radios(page: str) -> dict[str, str]:
    """id → value of every radio input."""
    found: dict[str, str] = {}
    for tag in re.findall(r"<input[^>]*type=\"radio\"[^>]*>", page):
        ident, value = re.search(r'id="([^"]+)"', tag), re.search(r'value="([^"]*)"', tag)
        if ident and value:
            found[ident.group(1)] = value.group(1)
    return found


def payments(engine: Engine) -> list[tuple[str, int]]:
    with session_scope(engine) as session:
        numbers = {c.id: c.contract_number for c in session.exec(select(Contract)).all()}
        return [(numbers[p.contract_id], p.amount_cents) for p in session.exec(select(Payment)).all()]


async def test_a_danish_customer_reads_the_overview_in_danish_with_kroner(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings
) -> None:
    customer_id, _, token_id = danish_customer(engine, settings)
    async with portal_client(apps(time_env, engine, settings), portal_cookie(engine, customer_id, token_id, "da")) as c:
        page = await c.get("/portal")
    assert page.status_code == 200
    assert '<html lang="da"' in page.text
    shown = text_of(page.text)
    assert "Din oversigt" in shown and "Skyldigt i alt" in shown
    assert "450,00 kr." in shown and "€" not in shown
    assert 'value="da"' in page.text and "Dansk" in shown  # the language switch offers Danish
    assert "Vertrag" not in shown and "Übersicht" not in shown


async def test_the_pay_page_in_danish_offers_kroner_and_a_danish_transfer_without_girocode(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings
) -> None:
    customer_id, _, token_id = danish_customer(engine, settings)
    async with portal_client(apps(time_env, engine, settings), portal_cookie(engine, customer_id, token_id, "da")) as c:
        pay = await c.get("/portal/pay")
        shown = text_of(pay.text)
        assert pay.status_code == 200
        assert "Hvad vil du betale?" in shown and "Det hele på én gang: 450,00 kr." in shown
        transfer = await c.get("/portal/pay/transfer?pay=all")
    assert transfer.status_code == 200
    seen = text_of(transfer.text)
    assert "Betal med bankoverførsel" in seen and "450,00 kr." in seen
    assert "<img" not in transfer.text  # a GiroCode is a SEPA transfer in euros: none for kroner
    reference = payment_reference(DANISH)  # the reference is still there, as text
    assert reference and reference.replace(" ", "") in seen.replace(" ", "")


async def test_switching_to_danish_and_a_refused_language_names_the_three(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings
) -> None:
    customer_id, _, token_id = danish_customer(engine, settings)
    with session_scope(engine) as session:  # a German speaker who chooses Danish
        customer = session.get(Customer, customer_id)
        assert customer is not None
        customer.language = "de"
        session.add(customer)
    async with portal_client(apps(time_env, engine, settings), portal_cookie(engine, customer_id, token_id, "de")) as c:
        assert "Ihre Übersicht" in (await c.get("/portal")).text
        switched = await form_post(c, "/portal", "/portal/language", {"lang": "da", "next": "/portal"})
        assert switched.status_code == 303
        assert "Din oversigt" in (await c.get("/portal")).text
        refused = await form_post(c, "/portal", "/portal/language", {"lang": "sv", "next": "/portal"})
    assert refused.status_code == 422
    assert "vælg Deutsch, English eller Dansk" in text_of(refused.text)


async def test_the_pay_link_page_in_danish_asks_for_kroner(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings
) -> None:
    _, token, _ = danish_customer(engine, settings)
    async with portal_client(apps(time_env, engine, settings), {}) as c:
        page = await c.get(f"/pay/{token}")
        assert page.status_code == 200
        shown = text_of(page.text)
        assert "Betal din præmie" in shown and "Beløb (DKK)" in shown and "450,00 kr." in shown
        too_small = await form_post(c, f"/pay/{token}", f"/pay/{token}/checkout", {"amount": "0,00 kr."})
        too_much = await form_post(c, f"/pay/{token}", f"/pay/{token}/checkout", {"amount": "500,00 kr."})
        opened = await form_post(c, f"/pay/{token}", f"/pay/{token}/checkout", {"amount": "450,00 kr."})
        assert opened.status_code == 303 and "/testpay/checkout/" in opened.headers["location"]
        checkout = await c.get(opened.headers["location"])
    assert '<div class="amount" id="amount">450,00 DKK</div>' in checkout.text  # TestPay in the contract's currency
    assert too_small.status_code == 422 and "skriv mindst 0,01 kr." in text_of(too_small.text)
    assert too_much.status_code == 422 and "højere end det skyldige beløb på 450,00 kr." in text_of(too_much.text)


async def test_euros_and_kroner_are_never_one_checkout(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings
) -> None:
    customer_id, _, token_id = danish_customer(engine, settings)
    add_euro_contract(engine, settings, customer_id, 12_000)
    async with portal_client(apps(time_env, engine, settings), portal_cookie(engine, customer_id, token_id, "da")) as c:
        overview = text_of((await c.get("/portal")).text)
        pay = await c.get("/portal/pay")
        choices = radios(pay.text)
        refused = await form_post(c, "/portal/pay", "/portal/pay", {"choice": "all:57000", "method": "testpay"})
    assert "450,00 kr. + 120,00 €" in overview  # one total per currency, never added up
    assert "Betal det hele på én gang" not in overview  # nothing pays both at once
    values = set(choices.values())
    assert not any(v.startswith("all:") for v in values)  # no "everything at once" across currencies
    assert {"c1:45000", "c2:12000"} <= values
    shown = text_of(pay.text)
    assert "Kun police" in shown and "450,00 kr." in shown and "120,00 €" in shown
    assert refused.status_code == 422 and payments(engine) == []

    # The guard itself: an option mixing currencies is refused with its own reason.
    with session_scope(engine) as session:
        contracts = dunning_contracts(session, customer_id, wall_today())
    mixed = portal_payments.Option("all", "all", tuple((c, c.arrears.balance_cents) for c in contracts))
    with pytest.raises(portal_payments.ChoiceRefused) as problem:
        portal_payments.pick([mixed], mixed.value)
    assert problem.value.code == "currencies" and problem.value.params["currencies"] == "DKK / EUR"
    said = t("da", f"portal.pay.error.{problem.value.code}", **problem.value.params)  # as the pay page says it
    assert said == "Policer i DKK / EUR kan ikke betales med én betaling. Betal dem en ad gangen."


async def post_stripe(client: httpx.AsyncClient, event: dict[str, Any]) -> httpx.Response:
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json", "Stripe-Signature": stripe_signature(body)}
    return await client.post("/webhooks/stripe", content=body, headers=headers)


async def test_a_stripe_checkout_for_a_danish_contract_is_in_dkk_and_books_only_in_dkk(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings, fake: FakeProviders
) -> None:
    stripe = stripe_settings(settings, fake)
    customer_id, _, token_id = danish_customer(engine, stripe)
    async with portal_client(apps(time_env, engine, stripe), portal_cookie(engine, customer_id, token_id, "da")) as c:
        opened = await form_post(c, "/portal/pay", "/portal/pay", {"choice": "all:45000", "method": "card"})
        assert opened.status_code == 303, opened.text
        (session,) = fake.checkout_sessions.values()
        assert session["currency"] == "dkk" and session["amount_total"] == 45_000
        paid = {**session, "status": "complete", "payment_status": "paid", "payment_intent": "pi_dk_1"}

        in_euros = {**paid, "id": "cs_eur", "currency": "eur", "payment_intent": "pi_eur"}
        event = {"id": "evt_eur", "type": "checkout.session.completed", "data": {"object": in_euros}}
        wrong = await post_stripe(c, event)
        assert wrong.status_code == 400 and "not the currency of contract" in wrong.text
        assert payments(engine) == []

        booked = await post_stripe(c, {"id": "evt_dk", "type": "checkout.session.completed", "data": {"object": paid}})
        assert booked.status_code == 200, booked.text
        assert payments(engine) == [(DANISH, 45_000)]
        result = text_of((await c.get(f"/portal/pay/result?checkout={session['id']}")).text)
    assert "Betalt: 450,00 kr." in result and "Din betaling" in result
    assert money("da", 45_000, "DKK") == "450,00 kr."
