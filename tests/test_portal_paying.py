"""Paying in the customer portal (issue #14): everything at once over several contracts, one
contract, or the instalment due; by TestPay, by Stripe Checkout (card or SEPA debit, against the
local fake) or by bank transfer with the RF reference and a GiroCode; and a result page that says
only what the ledger shows. Time-skipping server with the real worker: the cases hear of payments."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest_asyncio
import segno
import segno.helpers
from sqlalchemy import Engine, func
from sqlmodel import select
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from channels.render import epc_fields, girocode_data_uri
from core.references import mask_contract_number, payment_reference
from dev.fakes.server import FakeProviders, environment, stripe_signature
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.case import CaseStage, CaseStatus, CustomerArrangement
from models.ledger import Contract, Customer, Payment, TestPaySession
from models.providers import ProviderCheckout
from tests.apps import BothApps
from tests.helpers import advance_until, berlin_today, contract_status, csrf_fields, form_post, open_case, status
from tests.portal_support import make_pay_link, portal_client, portal_cookie, seed_portal_customer
from tests.providers_fakes import PERSONAL_DATA, fake
from web.deps import AppContext
from web.deps import berlin_today as wall_today
from web.public.portal import case as portal_case
from web.public.portal.i18n import money
from web.public.portal.paying import transfer_context
from web.public.testpay import WEBHOOK_TRANSPORT_STATE
from workflows.dunning import DunningCase

__all__ = ["fake"]  # the fake Stripe, a fixture imported for pytest

FIRST, SECOND = "K-100001", "K-100002"


@dataclass
class Portal:
    apps: BothApps
    engine: Engine
    settings: Settings
    env: WorkflowEnvironment
    task_queue: str


def make_portal(time_env: WorkflowEnvironment, engine: Engine, settings: Settings, task_queue: str) -> Portal:
    apps = BothApps(
        AppContext(engine, time_env.client, settings, Inbound(engine, time_env.client, settings)), who="real"
    )
    # TestPay's "Pay now" posts its signed webhook to this same app in-process, not over a socket.
    setattr(apps.state, WEBHOOK_TRANSPORT_STATE, httpx.ASGITransport(app=apps))
    return Portal(apps, engine, settings, time_env, task_queue)


@pytest_asyncio.fixture
async def portal(time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings) -> Portal:
    return make_portal(time_env, engine, settings, worker.task_queue)


def add_contract(engine: Engine, customer_id: int, contract_number: str, premium: tuple[str, date, int]) -> None:
    """A second contract of the same customer, with one premium."""
    with session_scope(engine) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        service.upsert_contract(session, contract_number, customer, agent_code="A-7", product="Kfz")
        premium_id, due, cents = premium
        service.book_premium(
            session,
            external_id=premium_id,
            contract_number=contract_number,
            period_start=due,
            period_end=due + timedelta(days=30),
            due_date=due,
            amount_cents=cents,
        )


def balance(engine: Engine, contract_number: str) -> int:
    """Open now, as the portal reads it (the ledger's date is the wall clock's)."""
    with session_scope(engine) as session:
        return service.arrears(session, contract_number, wall_today()).balance_cents


def overdue_day() -> date:
    """Yesterday by the wall clock: overdue for the portal (the ledger's date) and for every case,
    whose clock the time-skipping server may have moved ahead in an earlier test of this module."""
    return wall_today() - timedelta(days=1)


def payments(engine: Engine) -> list[tuple[str, str, int]]:
    """(contract number, reference, cents) of every payment in the ledger."""
    with session_scope(engine) as session:
        rows = session.exec(select(Payment).order_by(Payment.id)).all()  # type: ignore[arg-type]
        numbers = {c.id: c.contract_number for c in session.exec(select(Contract)).all()}
        return [(numbers[p.contract_id], p.external_ref, p.amount_cents) for p in rows]


def written(engine: Engine) -> int:
    """Checkouts and payments in the ledger: what a refused request must leave unchanged."""
    with session_scope(engine) as session:
        counts = [
            session.exec(select(func.count()).select_from(table)).one()
            for table in (TestPaySession, ProviderCheckout, Payment)
        ]
    return sum(int(c) for c in counts)


class _Choices(HTMLParser):
    """The radio values and labels of the pay form, and every <img> (src, alt)."""

    def __init__(self) -> None:
        super().__init__()
        self.radios: dict[str, str] = {}  # id → value
        self.images: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "input" and values.get("type") == "radio":
            self.radios[values["id"]] = values["value"]
        if tag == "img":
            self.images.append((values.get("src", ""), values.get("alt", "")))


def parsed(page: str) -> _Choices:
    parser = _Choices()
    parser.feed(page)
    return parser


def text_of(page: str) -> str:
    """The page's visible text in one line (tags dropped, whitespace collapsed)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


async def case_handle(portal: Portal, contract_number: str, premium_id: str) -> WorkflowHandle[DunningCase, CaseStatus]:
    return await open_case(portal.env, portal.task_queue, contract_number, premium_id)


@pytest_asyncio.fixture
async def two_contracts(portal: Portal) -> AsyncIterator[tuple[httpx.AsyncClient, int]]:
    """A customer with two contracts in dunning (pay links for both) and a portal session."""
    due = overdue_day()
    customer_id = seed_portal_customer(portal.engine, FIRST, premiums=[("P-1", due, 12_000)])
    add_contract(portal.engine, customer_id, SECOND, ("P-2", due, 5_050))
    _, token_id = make_pay_link(portal.engine, portal.settings, FIRST)
    make_pay_link(portal.engine, portal.settings, SECOND)
    async with portal_client(portal.apps, portal_cookie(portal.engine, customer_id, token_id)) as client:
        yield client, customer_id


# --- TestPay: everything at once ----------------------------------------------------------------------


async def test_paying_everything_at_once_books_each_contracts_share_on_its_own_contract_and_restores_cover(
    portal: Portal, two_contracts: tuple[httpx.AsyncClient, int]
) -> None:
    client, _ = two_contracts
    first = await case_handle(portal, FIRST, "P-1")
    await advance_until(portal.env, first, lambda s: s.stage == CaseStage.SUSPENDED)
    assert contract_status(portal.engine, FIRST) == "suspended"
    second = await case_handle(portal, SECOND, "P-2")  # later: its cover has not lapsed
    assert contract_status(portal.engine, SECOND) == "active"
    owed = {FIRST: balance(portal.engine, FIRST), SECOND: balance(portal.engine, SECOND)}
    assert owed[FIRST] >= 12_000 and owed[SECOND] == 5_050

    page = await client.get("/portal/pay")
    assert page.status_code == 200
    radios = parsed(page.text).radios
    total = owed[FIRST] + owed[SECOND]
    assert radios["choice-all"] == f"all:{total}"
    assert radios["choice-c1"] == f"c1:{owed[FIRST]}" and radios["choice-c2"] == f"c2:{owed[SECOND]}"
    assert set(radios) >= {"method-testpay", "method-transfer"} and "method-card" not in radios
    assert text_of(money("de", total)) in text_of(page.text)

    opened = await form_post(client, "/portal/pay", "/portal/pay", {"choice": f"all:{total}", "method": "testpay"})
    assert opened.status_code == 303, opened.text
    checkout = opened.headers["location"]
    assert re.fullmatch(r"/testpay/checkout/tps_[0-9a-f]{24}", checkout)
    shown = await client.get(checkout)
    assert shown.status_code == 200 and 'href="/portal/pay"' in shown.text  # "Cancel" leads back to the portal
    paid = await form_post(client, checkout, f"{checkout}/pay")
    session_id = checkout.rsplit("/", 1)[1]
    assert paid.status_code == 303 and paid.headers["location"] == f"/portal/pay/result?checkout={session_id}"

    # One payment per contract, each on its own contract, for exactly its share.
    assert payments(portal.engine) == [
        (FIRST, f"testpay:{session_id}:{FIRST}", owed[FIRST]),
        (SECOND, f"testpay:{session_id}:{SECOND}", owed[SECOND]),
    ]
    # Both cases heard of it: both close paid, the suspended contract is active again.
    assert (await first.result()).stage == CaseStage.PAID
    assert (await second.result()).stage == CaseStage.PAID
    assert contract_status(portal.engine, FIRST) == "active"
    assert contract_status(portal.engine, SECOND) == "active"

    result = await client.get(paid.headers["location"])
    assert result.status_code == 200
    words = text_of(result.text)
    first_part, second_part = words.split(mask_contract_number(SECOND))
    assert "Ihr Versicherungsschutz ist wiederhergestellt" in first_part
    assert f"Bezahlt: {text_of(money('de', owed[FIRST]))}" in first_part
    assert "Ihr Versicherungsschutz war nie unterbrochen" in second_part
    assert "wiederhergestellt" not in second_part  # never "cover restored" to one whose cover never lapsed
    assert f"Bezahlt: {text_of(money('de', owed[SECOND]))}" in second_part
    assert words.count("Auf diesem Vertrag ist nichts mehr offen") == 2

    # "Pay now" again re-delivers the same signed event: recognised, nothing booked twice.
    again = await client.post(f"{checkout}/pay", data=await csrf_fields(client, "/portal/pay"))
    assert again.status_code == 303
    assert len(payments(portal.engine)) == 2
    assert (await client.get("/portal/pay")).text.count('type="radio" id="choice-') == 0


async def test_the_pay_link_done_page_says_cover_is_restored_the_moment_it_shows(portal: Portal) -> None:
    """Issue #15 P2: the customer who pays everything through the SMS's pay link is told on the very
    next page that cover is back — the page waits for the case's answer instead of saying "being
    restored" — and the ledger agrees at that moment; a part payment is told cover stays suspended."""
    seed_portal_customer(portal.engine, FIRST, premiums=[("P-1", overdue_day(), 12_000)])
    token, _ = make_pay_link(portal.engine, portal.settings, FIRST)
    handle = await case_handle(portal, FIRST, "P-1")
    await advance_until(portal.env, handle, lambda s: s.stage == CaseStage.SUSPENDED)
    owed = balance(portal.engine, FIRST)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=portal.apps), base_url="http://test") as client:

        async def pay_by_link(amount: str) -> httpx.Response:
            opened = await form_post(client, f"/pay/{token}", f"/pay/{token}/checkout", {"amount": amount})
            assert opened.status_code == 303, opened.text
            checkout = opened.headers["location"]
            paid = await form_post(client, checkout, f"{checkout}/pay")
            assert paid.status_code == 303 and paid.headers["location"].startswith(f"/pay/{token}/done?session=")
            return await client.get(paid.headers["location"])

        part = await pay_by_link("20,00")
        assert part.status_code == 200
        assert "Ihr Versicherungsschutz ruht, bis der noch offene Betrag bezahlt ist" in text_of(part.text)
        assert contract_status(portal.engine, FIRST) == "suspended"

        rest = owed - 2_000
        done = await pay_by_link(f"{rest // 100},{rest % 100:02d}")
        assert done.status_code == 200
        assert contract_status(portal.engine, FIRST) == "active"  # when the page was shown
        words = text_of(done.text)
        assert "Ihr Versicherungsschutz ist wiederhergestellt" in words
        assert "wird gerade wiederhergestellt" not in words
    assert (await handle.result()).stage == CaseStage.PAID


async def test_paying_one_contract_leaves_the_other_open_and_says_so(
    portal: Portal, two_contracts: tuple[httpx.AsyncClient, int]
) -> None:
    client, _ = two_contracts
    # Only the paid contract's case runs: a case left busy when the worker stops could hold the
    # time-skipping server's clock for the next test of this module.
    second = await case_handle(portal, SECOND, "P-2")
    owed_first = balance(portal.engine, FIRST)
    opened = await form_post(client, "/portal/pay", "/portal/pay", {"choice": "c2:5050", "method": "testpay"})
    assert opened.status_code == 303, opened.text
    checkout = opened.headers["location"]
    paid = await form_post(client, checkout, f"{checkout}/pay")
    session_id = checkout.rsplit("/", 1)[1]
    assert payments(portal.engine) == [(SECOND, f"testpay:{session_id}", 5_050)]
    assert (await second.result()).stage == CaseStage.PAID
    result = text_of((await client.get(paid.headers["location"])).text)
    assert "Bezahlt: 50,50 €" in result and "Ihr Versicherungsschutz war nie unterbrochen" in result
    assert mask_contract_number(FIRST) not in result  # only what this payment paid
    page = await client.get("/portal/pay")
    assert parsed(page.text).radios["choice-all"] == f"all:{owed_first}"


# --- TestPay: the instalment due ----------------------------------------------------------------------


async def test_the_instalment_due_now_can_be_paid_alone(portal: Portal) -> None:
    today = berlin_today(await portal.env.get_current_time())
    customer_id = seed_portal_customer(portal.engine, FIRST, premiums=[("P-1", overdue_day(), 60_000)])
    _, token_id = make_pay_link(portal.engine, portal.settings, FIRST)
    handle = await case_handle(portal, FIRST, "P-1")
    await advance_until(portal.env, handle, lambda s: s.balance_cents > 0, step=timedelta(minutes=1))
    ctx = AppContext(
        portal.engine, portal.env.client, portal.settings, Inbound(portal.engine, portal.env.client, portal.settings)
    )
    agreed = await portal_case.arrange(
        ctx, FIRST, CustomerArrangement(kind="instalments", instalments=3, first_due=today + timedelta(days=10))
    )
    assert isinstance(agreed, CaseStatus) and agreed.hold is not None, agreed
    first_rate = agreed.hold.schedule[0]
    assert agreed.hold.balance_at_promise_cents == balance(portal.engine, FIRST)

    async with portal_client(portal.apps, portal_cookie(portal.engine, customer_id, token_id, "en")) as client:
        page = await client.get("/portal/pay")
        radios = parsed(page.text).radios
        assert radios["choice-i1"] == f"i1:{first_rate.amount_cents}"
        assert "Instalment 1 of 3" in text_of(page.text)

        opened = await form_post(
            client, "/portal/pay", "/portal/pay", {"choice": radios["choice-i1"], "method": "testpay"}
        )
        assert opened.status_code == 303, opened.text
        checkout = opened.headers["location"]
        paid = await form_post(client, checkout, f"{checkout}/pay")
        assert [p[2] for p in payments(portal.engine)] == [first_rate.amount_cents]
        await advance_until(
            portal.env,
            handle,
            lambda s: s.balance_cents == agreed.balance_cents - first_rate.amount_cents,
            step=timedelta(minutes=1),
        )
        result = text_of((await client.get(paid.headers["location"])).text)
        remaining = balance(portal.engine, FIRST)
        assert remaining == agreed.balance_cents - first_rate.amount_cents
        assert f"Paid: {text_of(money('en', first_rate.amount_cents))}" in result
        assert f"Still open on this contract: {text_of(money('en', remaining))}" in result
        assert "Your cover was never interrupted" in result

        # The first instalment is paid: nothing is due now until the second.
        after = parsed((await client.get("/portal/pay")).text).radios
        assert "choice-i1" not in after and after["choice-all"] == f"all:{remaining}"
    assert (await status(handle)).hold is not None


# --- bank transfer ------------------------------------------------------------------------------------


async def test_the_transfer_page_shows_the_rf_reference_and_a_girocode_carrying_it(
    portal: Portal, two_contracts: tuple[httpx.AsyncClient, int]
) -> None:
    client, _ = two_contracts
    chosen = await form_post(client, "/portal/pay", "/portal/pay", {"choice": "c1:12000", "method": "transfer"})
    assert chosen.status_code == 303 and chosen.headers["location"] == "/portal/pay/transfer?pay=c1"
    page = await client.get("/portal/pay/transfer")  # everything: one transfer (and code) per contract
    assert page.status_code == 200
    words = text_of(page.text)
    assert "DE02 1203 0000 0000 2020 51" in words and portal.settings.creditor_bic in words
    assert portal.settings.creditor_name in words
    images = parsed(page.text).images
    assert len(images) == 2
    for (src, alt), (number, cents) in zip(images, [(FIRST, 12_000), (SECOND, 5_050)], strict=True):
        reference = payment_reference(number)
        assert reference.startswith("RF") and reference in words and text_of(money("de", cents)) in words
        assert reference in alt and "GiroCode" in alt
        context = transfer_context(portal.settings, number, "case", cents)
        fields = epc_fields(context)
        assert fields is not None
        payload = segno.helpers._make_epc_qr_data(**fields)  # type: ignore[attr-defined]  # what the GiroCode encodes
        text = payload.decode() if isinstance(payload, bytes) else str(payload)
        lines = text.split("\n")
        assert lines[:2] == ["BCD", "002"] and lines[2] in ("1", "2") and lines[3] == "SCT"  # 1 UTF-8, 2 Latin-1
        assert lines[4:8] == [
            portal.settings.creditor_bic,
            portal.settings.creditor_name,
            portal.settings.creditor_iban,
            "EUR" + f"{Decimal(cents) / 100:.2f}".rstrip("0").rstrip("."),  # EUR120, EUR50.5
        ]
        assert reference in lines
        # The image on the page is exactly that payload, drawn as the letters draw it.
        assert src == girocode_data_uri(context)
        assert src == segno.make_qr(payload, error="m", boost_error=False).svg_data_uri(scale=4, border=0)


# --- bad input ----------------------------------------------------------------------------------------


async def test_bad_choices_and_methods_are_refused_and_nothing_is_written(
    portal: Portal, two_contracts: tuple[httpx.AsyncClient, int]
) -> None:
    client, customer_id = two_contracts
    before = written(portal.engine)
    cases = [
        ({"choice": "c9:100", "method": "testpay"}, "Diese Auswahl gibt es nicht"),
        ({"choice": "all:1", "method": "testpay"}, "passt nicht zum jetzt offenen Betrag von 170,50 €"),
        ({"choice": "c1:5050", "method": "testpay"}, "passt nicht zum jetzt offenen Betrag von 120,00 €"),
        ({"choice": "all:17050", "method": "bitcoin"}, "eine der angebotenen Zahlungsarten"),
        ({"choice": "all:17050", "method": "card"}, "eine der angebotenen Zahlungsarten"),  # not without Stripe
        ({"choice": "", "method": "testpay"}, "Bitte wählen Sie, was Sie bezahlen möchten"),
    ]
    for data, message in cases:
        refused = await form_post(client, "/portal/pay", "/portal/pay", data)
        assert refused.status_code == 422, (data, refused.text)
        assert message in text_of(refused.text) and 'role="alert"' in refused.text, data
    assert written(portal.engine) == before
    assert (await client.get("/portal/pay/transfer?pay=x7")).status_code == 422

    # Another customer's checkout is as unknown as a made-up one.
    other = seed_portal_customer(portal.engine, "K-200001", premiums=[("P-9", date(2026, 1, 1), 1_000)])
    opened = await form_post(client, "/portal/pay", "/portal/pay", {"choice": "all:17050", "method": "testpay"})
    session_id = opened.headers["location"].rsplit("/", 1)[1]
    _, other_token = make_pay_link(portal.engine, portal.settings, "K-200001")
    async with portal_client(portal.apps, portal_cookie(portal.engine, other, other_token)) as stranger:
        assert (await stranger.get(f"/portal/pay/result?checkout={session_id}")).status_code == 404
    assert (await client.get("/portal/pay/result?checkout=tps_nothing")).status_code == 404
    # Not paid yet: the page says so and claims nothing.
    unpaid = text_of((await client.get(f"/portal/pay/result?checkout={session_id}")).text)
    assert "nicht ausgeführt" in unpaid and "Bezahlt" not in unpaid
    assert customer_id != other


# --- Stripe Checkout ----------------------------------------------------------------------------------


def stripe_settings(settings: Settings, fake: FakeProviders) -> Settings:
    values = {k.lower(): v for k, v in environment(fake.base_url).items() if k.startswith(("STRIPE", "PAYMENT"))}
    return settings.model_copy(update={**values, "public_base_url": "http://testserver"})


async def post_stripe(client: httpx.AsyncClient, event: dict[str, Any]) -> httpx.Response:
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json", "Stripe-Signature": stripe_signature(body)}
    return await client.post("/webhooks/stripe", content=body, headers=headers)


async def test_sepa_debit_through_stripe_books_each_contract_once_when_the_debit_succeeds(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, fake: FakeProviders
) -> None:
    portal = make_portal(time_env, engine, stripe_settings(settings, fake), worker.task_queue)
    customer_id = seed_portal_customer(engine, FIRST, premiums=[("P-1", overdue_day(), 12_000)])
    add_contract(engine, customer_id, SECOND, ("P-2", overdue_day(), 5_050))
    _, token_id = make_pay_link(engine, portal.settings, FIRST)
    make_pay_link(engine, portal.settings, SECOND)
    first = await case_handle(portal, FIRST, "P-1")
    second = await case_handle(portal, SECOND, "P-2")

    async with portal_client(portal.apps, portal_cookie(engine, customer_id, token_id)) as client:
        radios = parsed((await client.get("/portal/pay")).text).radios
        assert {"method-card", "method-sepa_debit", "method-transfer"} <= set(radios)
        assert "method-testpay" not in radios  # TestPay only in the embedded default
        opened = await form_post(client, "/portal/pay", "/portal/pay", {"choice": "all:17050", "method": "sepa_debit"})
        assert opened.status_code == 303, opened.text
        (session,) = fake.checkout_sessions.values()
        assert opened.headers["location"] == session["url"]
        assert session["payment_method_types"] == ["sepa_debit"]
        assert [line["amount_total"] for line in session["line_items"]["data"]] == [12_000, 5_050]
        assert [line["metadata"]["contract_number"] for line in session["line_items"]["data"]] == [FIRST, SECOND]
        assert session["amount_total"] == 17_050
        assert session["metadata"]["allocation"] == f"{FIRST}:12000,{SECOND}:5050"
        sent = json.dumps(session)
        assert not [p for p in PERSONAL_DATA if p in sent]
        result_url = f"/portal/pay/result?checkout={session['id']}"
        assert session["success_url"] == "http://testserver/portal/pay/result?checkout={CHECKOUT_SESSION_ID}"

        # The debit is submitted, not yet paid: nothing booked, the result page says "being booked".
        obj = {**session, "status": "complete", "payment_status": "unpaid", "payment_intent": "pi_sepa_1"}
        pending = await post_stripe(
            client, {"id": "evt_1", "type": "checkout.session.completed", "data": {"object": obj}}
        )
        assert pending.status_code == 200 and pending.json()["booked"] is False
        assert payments(engine) == []
        waiting = text_of((await client.get(result_url)).text)
        assert "Zahlung eingegangen, sie wird gebucht" in waiting and "Die Zahlung ist gebucht" not in waiting
        assert "wiederhergestellt" not in waiting and "nie unterbrochen" not in waiting

        # The debit succeeded: one payment per contract; the same event again, or another event for
        # the same session, books nothing more.
        succeeded = {
            "id": "evt_2",
            "type": "checkout.session.async_payment_succeeded",
            "data": {"object": {**obj, "payment_status": "paid"}},
        }
        assert (await post_stripe(client, succeeded)).status_code == 200
        expected = [(FIRST, f"stripe:pi_sepa_1:{FIRST}", 12_000), (SECOND, f"stripe:pi_sepa_1:{SECOND}", 5_050)]
        assert payments(engine) == expected
        repeat = await post_stripe(client, succeeded)
        assert repeat.status_code == 200 and repeat.json()["duplicate"] is True
        other_event = await post_stripe(client, {**succeeded, "id": "evt_3"})
        assert other_event.status_code == 200 and other_event.json()["booked"] is False
        assert payments(engine) == expected

        assert (await first.result()).stage == CaseStage.PAID
        assert (await second.result()).stage == CaseStage.PAID
        done = text_of((await client.get(result_url)).text)
        assert done.count("Die Zahlung ist gebucht") == 2 and done.count("nie unterbrochen") == 2
        assert "Bezahlt: 120,00 €" in done and "Bezahlt: 50,50 €" in done

        # A tampered allocation (signed, but not adding up) books nothing.
        bad = {
            "id": "evt_4",
            "type": "checkout.session.completed",
            "data": {
                "object": {
                    **obj,
                    "id": "cs_other",
                    "payment_status": "paid",
                    "payment_intent": "pi_2",
                    "metadata": {**obj["metadata"], "allocation": f"{FIRST}:100,{SECOND}:100"},
                }
            },
        }
        refused = await post_stripe(client, bad)
        assert refused.status_code == 400 and "allocation" in refused.text
        assert payments(engine) == expected
