"""Behaviour of the web pages: the customer pay page, the built-in TestPay provider and its signed
webhook, and the staff pages (outbox, tasks, contracts).

Everything goes through the real FastAPI app on a migrated SQLite ledger. Temporal is replaced by
a recorder of signals. The provider's webhook normally travels over real HTTP; most tests hand the
app an in-process transport for it, and one test runs uvicorn on a free port to prove the real path.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
import uvicorn
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.client import Client

from core.tokens import PAY_LINK_SALT, sign
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from ledger.inbound import Inbound
from models import ledger as tables
from models.case import PaymentBooked
from models.ledger import AgentTask, ContractStatus, Message, PayLink, Payment
from tests.apps import BothApps
from tests.conftest import seed_contract
from tests.helpers import csrf_fields, form_post, hidden_fields
from web.deps import AppContext
from web.public.testpay import WEBHOOK_TRANSPORT_STATE
from web.public.testpay_signature import HEADER, SignatureError, header_value, verify

CONTRACT = "K-100001"
TODAY = datetime.now(ZoneInfo("Europe/Berlin")).date()
# Two overdue premiums: 120,00 € + 50,50 € = 170,50 € open.
PREMIUMS = [("P-1", TODAY - timedelta(days=40), 12_000), ("P-2", TODAY - timedelta(days=10), 5_050)]
PERSONAL_DATA = ["Erika", "Mustermann", "Heidestraße", "51147", "Köln", "erika@example.org", "+4915112345678", CONTRACT]


# --- a recorder standing in for the Temporal client ------------------------------------------


@dataclass
class Signalled:
    workflow_id: str
    signal: str
    arg: Any


@dataclass
class FakeHandle:
    workflow_id: str
    calls: list[Signalled]

    async def signal(self, signal: Any, arg: Any = None, **_: Any) -> None:
        self.calls.append(Signalled(self.workflow_id, getattr(signal, "__name__", str(signal)), arg))


@dataclass
class FakeTemporal:
    calls: list[Signalled] = field(default_factory=list)

    def get_workflow_handle(self, workflow_id: str, **_: Any) -> FakeHandle:
        return FakeHandle(workflow_id, self.calls)


# --- the app under test ----------------------------------------------------------------------


@dataclass
class Web:
    http: httpx.AsyncClient
    app: BothApps
    temporal: FakeTemporal
    engine: Engine
    settings: Settings


def make_app(engine: Engine, settings: Settings) -> tuple[BothApps, FakeTemporal]:
    temporal = FakeTemporal()
    client = cast(Client, temporal)
    app = BothApps(AppContext(engine, client, settings, Inbound(engine, client, settings)))
    return app, temporal


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"public_base_url": "http://testserver"})


@pytest_asyncio.fixture
async def web(engine: Engine, web_settings: Settings) -> AsyncIterator[Web]:
    seed_contract(engine, CONTRACT, premiums=PREMIUMS)
    app, temporal = make_app(engine, web_settings)
    transport = httpx.ASGITransport(app=app)
    # The provider's webhook goes to this same app in-process instead of over a socket.
    setattr(app.state, WEBHOOK_TRANSPORT_STATE, transport)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        yield Web(http, app, temporal, engine, web_settings)


def add_pay_link(
    engine: Engine, settings: Settings, token_id: str = "tok-reminder", *, expires_in: timedelta = timedelta(days=30)
) -> str:
    """A pay link of the contract's case, as the messaging activity makes one; returns the signed token."""
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        contract = service.get_contract(session, CONTRACT)
        session.add(
            PayLink(
                token_id=token_id,
                case_id=f"dunning-{CONTRACT}/20260101T000000",
                contract_id=contract.id or 0,
                step="reminder",
                created_at=now - timedelta(days=1),
                expires_at=now + expires_in,
            )
        )
    return sign(settings.link_secret, PAY_LINK_SALT, token_id)


def payments(engine: Engine) -> list[Payment]:
    with session_scope(engine) as session:
        return list(session.exec(select(Payment)))


def checkout_sessions(engine: Engine) -> list[tables.TestPaySession]:
    with session_scope(engine) as session:
        return list(session.exec(select(tables.TestPaySession)))


def signed(
    settings: Settings, event: dict[str, Any], *, at: int | None = None, secret: str | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    stamp = int(time.time()) if at is None else at
    header = header_value(secret or settings.testpay_webhook_secret, body, stamp)
    return body, {HEADER: header, "Content-Type": "application/json"}


def completed_event(
    session_id: str = "tps_direct", amount_cents: int = 2_000, event_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{session_id}",
        "type": "checkout.session.completed",
        "data": {"session_id": session_id, "amount_cents": amount_cents, "contract_number": CONTRACT, "case_id": "c"},
        "created": int(time.time()),
    }


async def start_checkout(web: Web, token: str, amount: str) -> str:
    response = await form_post(web.http, f"/pay/{token}", f"/pay/{token}/checkout", {"amount": amount})
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert re.fullmatch(r"/testpay/checkout/tps_[0-9a-f]{24}", location)
    return location.rsplit("/", 1)[1]


# --- customer pay page -----------------------------------------------------------------------


async def test_pay_page_shows_masked_contract_number_and_open_amount_but_no_personal_data(web: Web) -> None:
    token = add_pay_link(web.engine, web.settings)

    response = await web.http.get(f"/pay/{token}")

    assert response.status_code == 200
    page = response.text
    assert "•••••001" in page
    assert "170,50 €" in page
    assert 'value="170,50"' in page  # the form is prefilled with the whole balance
    for personal in PERSONAL_DATA:
        assert personal not in page, f"{personal!r} must not appear on the pay page"
    assert "DE02" not in page  # no IBAN
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_the_pay_page_speaks_the_customers_language_and_switches_on_request(web: Web) -> None:
    token = add_pay_link(web.engine, web.settings)
    with session_scope(web.engine) as session:
        customer = session.exec(select(tables.Customer)).one()
        customer.language = "en"
        session.add(customer)

    english = await web.http.get(f"/pay/{token}")
    assert '<html lang="en">' in english.text and "Pay your premium" in english.text and "€170.50" in english.text
    refused = await form_post(web.http, f"/pay/{token}", f"/pay/{token}/checkout", {"amount": "170.51"})
    assert refused.status_code == 422 and "is more than the open amount of €170.50" in refused.text

    switched = await form_post(web.http, f"/pay/{token}", "/portal/language", {"lang": "de", "next": f"/pay/{token}"})
    assert switched.status_code == 303 and switched.headers["location"] == f"/pay/{token}"
    german = await web.http.get(f"/pay/{token}")
    assert '<html lang="de">' in german.text and "Beitrag bezahlen" in german.text and "170,50 €" in german.text


async def test_pay_page_of_a_cleared_contract_says_nothing_is_open(web: Web) -> None:
    token = add_pay_link(web.engine, web.settings)
    with session_scope(web.engine) as session:
        service.book_payment(
            session,
            contract_number=CONTRACT,
            external_ref="bank:1",
            amount_cents=17_050,
            received_at=datetime.now(UTC),
            source="bank",
        )

    response = await web.http.get(f"/pay/{token}")

    assert response.status_code == 200
    assert "Nichts offen – vielen Dank" in response.text
    assert "/checkout" not in response.text  # no pay form: only the language switch is a form


@pytest.mark.parametrize(
    "token",
    ["not-a-token", sign("another-secret-of-16+chars", PAY_LINK_SALT, "tok-reminder"), "SIGNED-UNKNOWN-ID"],
)
async def test_a_pay_link_with_a_bad_signature_or_unknown_id_is_link_invalid_404(web: Web, token: str) -> None:
    add_pay_link(web.engine, web.settings)
    if token == "SIGNED-UNKNOWN-ID":
        token = sign(web.settings.link_secret, PAY_LINK_SALT, "tok-never-issued")

    response = await web.http.get(f"/pay/{token}")

    assert response.status_code == 404
    assert "Link ungültig" in response.text
    assert "170,50" not in response.text


async def test_an_expired_pay_link_is_link_expired_410_and_cannot_start_a_checkout(web: Web) -> None:
    token = add_pay_link(web.engine, web.settings, expires_in=timedelta(minutes=-1))

    page = await web.http.get(f"/pay/{token}")
    # Opened while the link was valid, sent after it ran out: the browser's CSRF token is fine.
    fresh = add_pay_link(web.engine, web.settings, "tok-fresh")
    form = await csrf_fields(web.http, f"/pay/{fresh}")
    checkout = await web.http.post(f"/pay/{token}/checkout", data={"amount": "10,00", **form})

    assert page.status_code == 410
    assert "Link abgelaufen" in page.text
    assert checkout.status_code == 410
    assert checkout_sessions(web.engine) == []


@pytest.mark.parametrize(
    ("typed", "cents"),
    [("70,50", 7_050), ("70.50", 7_050), ("170,50 €", 17_050), (" 50 ", 5_000), ("0,01", 1)],
)
async def test_checkout_accepts_german_and_english_decimal_amounts_up_to_the_balance(
    web: Web, typed: str, cents: int
) -> None:
    token = add_pay_link(web.engine, web.settings)

    session_id = await start_checkout(web, token, typed)

    [checkout] = checkout_sessions(web.engine)
    assert (checkout.session_id, checkout.amount_cents, checkout.status) == (session_id, cents, "open")
    assert checkout.pay_link_token_id == "tok-reminder"
    assert checkout.case_id == f"dunning-{CONTRACT}/20260101T000000"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("170,51", "höher als der offene Betrag von 170,50 €"),
        ("-5", "zu klein"),
        ("0", "zu klein"),
        ("abc", "„abc“ ist keine gültige Zahl"),
        ("1,234", "„1,234“ ist keine gültige Zahl"),
        ("1e999999999", "keine gültige Zahl"),
        ("", "Feld „Betrag“"),
    ],
)
async def test_checkout_rejects_a_bad_amount_with_422_a_german_message_and_writes_nothing(
    web: Web, typed: str, message: str
) -> None:
    token = add_pay_link(web.engine, web.settings)

    response = await form_post(web.http, f"/pay/{token}", f"/pay/{token}/checkout", {"amount": typed})

    assert response.status_code == 422
    assert message in response.text
    assert 'role="alert"' in response.text
    assert checkout_sessions(web.engine) == []


async def test_part_payment_through_checkout_and_webhook_is_booked_once_and_signals_the_case_once(web: Web) -> None:
    token = add_pay_link(web.engine, web.settings)
    session_id = await start_checkout(web, token, "70,50")

    provider_page = await web.http.get(f"/testpay/checkout/{session_id}")
    paid = await form_post(web.http, f"/testpay/checkout/{session_id}", f"/testpay/checkout/{session_id}/pay")

    assert provider_page.status_code == 200
    assert "TestPay" in provider_page.text and "70,50 €" in provider_page.text and "Pay now" in provider_page.text
    assert paid.status_code == 303
    assert paid.headers["location"] == f"/pay/{token}/done?session={session_id}"
    [payment] = payments(web.engine)
    assert (payment.external_ref, payment.amount_cents, payment.source) == (f"testpay:{session_id}", 7_050, "testpay")
    assert len(web.temporal.calls) == 1
    call = web.temporal.calls[0]
    assert (call.workflow_id, call.signal) == (f"dunning-{CONTRACT}", "payment_booked")
    assert call.arg.model_copy(update={"received_at": None}) == PaymentBooked(
        payment_ref=f"testpay:{session_id}", amount_cents=7_050
    )
    assert call.arg.received_at is not None  # cover returns from this moment (§38(2) VVG)

    done = await web.http.get(paid.headers["location"])

    assert done.status_code == 200
    assert "Zahlung eingegangen" in done.text
    assert "100,00 €" in done.text  # 170,50 € − 70,50 €, read live from the ledger


async def test_paying_the_same_checkout_twice_books_once_and_signals_once(web: Web) -> None:
    token = add_pay_link(web.engine, web.settings)
    session_id = await start_checkout(web, token, "20,00")

    form = hidden_fields(
        (await web.http.get(f"/testpay/checkout/{session_id}")).text, f"/testpay/checkout/{session_id}/pay"
    )
    first = await web.http.post(f"/testpay/checkout/{session_id}/pay", data=form)  # a double click
    second = await web.http.post(f"/testpay/checkout/{session_id}/pay", data=form)

    assert first.status_code == second.status_code == 303
    assert [p.amount_cents for p in payments(web.engine)] == [2_000]
    assert len(web.temporal.calls) == 1
    assert [s.status for s in checkout_sessions(web.engine)] == ["paid"]


async def test_a_full_payment_leaves_nothing_open_on_the_receipt_page(web: Web) -> None:
    token = add_pay_link(web.engine, web.settings)
    session_id = await start_checkout(web, token, "170,50")

    paid = await form_post(
        web.http, f"/testpay/checkout/{session_id}", f"/testpay/checkout/{session_id}/pay", follow_redirects=True
    )

    assert paid.status_code == 200
    assert "Zahlung eingegangen" in paid.text
    assert "Nichts offen – vielen Dank" in paid.text


async def test_unknown_checkout_session_is_404_and_pays_nothing(web: Web) -> None:
    form = await csrf_fields(web.http, f"/pay/{add_pay_link(web.engine, web.settings)}")
    response = await web.http.post("/testpay/checkout/tps_doesnotexist/pay", data=form)

    assert response.status_code == 404
    assert payments(web.engine) == []


# --- the engine's webhook endpoint -----------------------------------------------------------


async def test_webhook_with_a_forged_signature_is_rejected_400_and_books_nothing(web: Web) -> None:
    body, headers = signed(web.settings, completed_event(), secret="someone-elses-secret-123")

    response = await web.http.post("/webhooks/testpay", content=body, headers=headers)

    assert response.status_code == 400
    assert "signature does not match" in response.json()["detail"]
    assert payments(web.engine) == []
    assert web.temporal.calls == []


async def test_webhook_whose_body_was_altered_after_signing_is_rejected(web: Web) -> None:
    body, headers = signed(web.settings, completed_event(amount_cents=100))
    tampered = body.replace(b'"amount_cents": 100', b'"amount_cents": 999')

    response = await web.http.post("/webhooks/testpay", content=tampered, headers=headers)

    assert response.status_code == 400
    assert payments(web.engine) == []


async def test_webhook_without_signature_header_is_rejected_naming_the_header(web: Web) -> None:
    response = await web.http.post("/webhooks/testpay", content=json.dumps(completed_event()).encode())

    assert response.status_code == 400
    assert response.json()["detail"] == "TestPay-Signature header is missing"


# A future timestamp comes closer while the request travels: +330 s stays outside the five minutes even
# when a busy machine takes half a minute to verify it (+301 passed once under load).
@pytest.mark.parametrize(("offset", "word"), [(-301, "old"), (330, "future")])
async def test_webhook_with_a_timestamp_outside_five_minutes_is_rejected(web: Web, offset: int, word: str) -> None:
    body, headers = signed(web.settings, completed_event(), at=int(time.time()) + offset)

    response = await web.http.post("/webhooks/testpay", content=body, headers=headers)

    assert response.status_code == 400
    assert word in response.json()["detail"]
    assert payments(web.engine) == []


async def test_the_same_webhook_event_twice_books_once_and_signals_once(web: Web) -> None:
    body, headers = signed(web.settings, completed_event(amount_cents=3_000))

    first = await web.http.post("/webhooks/testpay", content=body, headers=headers)
    second = await web.http.post("/webhooks/testpay", content=body, headers=headers)

    assert first.status_code == second.status_code == 200
    assert first.json() == {"payment_ref": "testpay:tps_direct", "booked": True, "balance_cents": 14_050}
    assert second.json()["duplicate"] is True
    assert [p.amount_cents for p in payments(web.engine)] == [3_000]
    assert len(web.temporal.calls) == 1


async def test_unknown_event_types_are_acknowledged_and_ignored(web: Web) -> None:
    body, headers = signed(web.settings, {"id": "evt_x", "type": "checkout.session.expired", "data": {}, "created": 0})

    response = await web.http.post("/webhooks/testpay", content=body, headers=headers)

    assert response.status_code == 200
    assert response.json()["ignored"] is True
    assert payments(web.engine) == []
    assert web.temporal.calls == []


async def test_a_signed_event_with_a_bad_amount_is_rejected_naming_the_field(web: Web) -> None:
    body, headers = signed(web.settings, completed_event(amount_cents=-5))

    response = await web.http.post("/webhooks/testpay", content=body, headers=headers)

    assert response.status_code == 400
    assert response.json()["detail"] == "data.amount_cents must be a positive integer (cents), got -5"
    assert payments(web.engine) == []


def test_signature_verification_accepts_its_own_header_and_any_matching_v1() -> None:
    secret, body, now = "a-shared-secret-of-some-length", b'{"id":"evt_1"}', 1_800_000_000
    good = header_value(secret, body, now)

    assert verify(secret, body, good, now) == now
    assert verify(secret, body, f"t={now},v1=deadbeef,{good.split(',')[1]}", now + 299) == now
    with pytest.raises(SignatureError, match="no v1"):
        verify(secret, body, f"t={now}", now)
    with pytest.raises(SignatureError, match="unix seconds"):
        verify(secret, body, "t=yesterday,v1=00", now)


# --- the provider really talks HTTP ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_provider_sends_its_signed_webhook_over_real_http_to_the_public_base_url(
    engine: Engine, settings: Settings
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    real_settings = settings.model_copy(update={"public_base_url": base})
    seed_contract(engine, CONTRACT, premiums=PREMIUMS)
    token = add_pay_link(engine, real_settings)
    app, temporal = make_app(engine, real_settings)  # no transport injected: production path
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.025)
        assert server.started, "uvicorn did not start"
        async with httpx.AsyncClient(base_url=base) as http:
            checkout = await form_post(http, f"/pay/{token}", f"/pay/{token}/checkout", {"amount": "50,50"})
            session_id = checkout.headers["location"].rsplit("/", 1)[1]
            page, action = f"/testpay/checkout/{session_id}", f"/testpay/checkout/{session_id}/pay"
            done = await form_post(http, page, action, follow_redirects=True)
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 10)

    assert done.status_code == 200
    assert "Zahlung eingegangen" in done.text and "120,00 €" in done.text
    assert [(p.external_ref, p.amount_cents) for p in payments(engine)] == [(f"testpay:{session_id}", 5_050)]
    assert [c.arg.payment_ref for c in temporal.calls] == [f"testpay:{session_id}"]


# --- staff pages -----------------------------------------------------------------------------


def add_messages(engine: Engine, pay_url: str) -> tuple[int, int]:
    """An e-mail reminder with a pay link, then a letter with its PDF; returns their ids."""
    with session_scope(engine) as session:
        contract = service.get_contract(session, CONTRACT)
        base = datetime.now(UTC) - timedelta(hours=2)
        common: dict[str, Any] = {
            "case_id": f"dunning-{CONTRACT}/20260101T000000",
            "contract_id": contract.id,
            "status": "sent",
        }
        email, _ = service.add_message(
            session,
            Message(
                idempotency_key="m1",
                channel="email",
                kind="reminder",
                recipient="erika@example.org",
                subject="Erinnerung: Beitrag offen",
                body_text=f"Bitte zahlen Sie hier: {pay_url}.",
                body_html=f'<p>Bitte <a href="{pay_url}">jetzt bezahlen</a></p>',
                total_cents=17_050,
                created_at=base,
                **common,
            ),
        )
        letter, _ = service.add_message(
            session,
            Message(
                idempotency_key="m2",
                channel="letter",
                kind="qualified_notice",
                recipient="Erika Mustermann\nKöln",
                subject="Qualifizierte Mahnung",
                body_text="Mahnung",
                body_html="",  # a letter is its PDF and its text copy (Typst, issue #15)
                pdf=b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
                total_cents=17_200,
                created_at=base + timedelta(hours=1),
                **common,
            ),
        )
        return email.id or 0, letter.id or 0


async def test_outbox_lists_messages_newest_first_and_the_pay_link_in_a_message_is_clickable(web: Web) -> None:
    token = add_pay_link(web.engine, web.settings)
    pay_url = f"http://testserver/pay/{token}"
    email_id, letter_id = add_messages(web.engine, pay_url)

    listing = await web.http.get("/outbox")
    detail = await web.http.get(f"/outbox/{email_id}")

    assert listing.status_code == 200
    assert listing.text.index("Qualifizierte Mahnung") < listing.text.index("Erinnerung: Beitrag offen")
    assert f'href="/outbox/{email_id}"' in listing.text and f'href="/outbox/{letter_id}"' in listing.text
    assert "170,50 €" in listing.text
    assert detail.status_code == 200
    assert f'<a href="{pay_url}" target="_blank"' in detail.text
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in detail.text
    assert "srcdoc=" in detail.text
    paid_page = await web.http.get(pay_url.removeprefix("http://testserver"))
    assert "170,50 €" in paid_page.text  # the link a newcomer clicks opens the pay page


async def test_a_letter_downloads_as_a_pdf_and_an_email_has_no_pdf(web: Web) -> None:
    email_id, letter_id = add_messages(web.engine, "http://testserver/pay/x")

    letter_page = await web.http.get(f"/outbox/{letter_id}")
    pdf = await web.http.get(f"/outbox/{letter_id}/pdf")
    no_pdf = await web.http.get(f"/outbox/{email_id}/pdf")

    assert f'href="/outbox/{letter_id}/pdf"' in letter_page.text
    assert "srcdoc=" not in letter_page.text and "Mahnung" in letter_page.text  # no HTML preview: its text
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert no_pdf.status_code == 404


async def test_an_unknown_message_is_a_404_page(web: Web) -> None:
    response = await web.http.get("/outbox/99999")

    assert response.status_code == 404
    assert "not in the outbox" in response.text


async def test_contract_page_shows_status_history_premiums_payments_case_link_and_newest_pay_link(web: Web) -> None:
    add_pay_link(web.engine, web.settings, "tok-old")
    with session_scope(web.engine) as session:
        now = datetime.now(UTC)
        session.add(
            PayLink(
                token_id="tok-newest",
                case_id="c",
                contract_id=service.get_contract(session, CONTRACT).id or 0,
                step="sms",
                created_at=now,
                expires_at=now + timedelta(days=30),
            )
        )
        service.set_contract_status(
            session,
            contract_number=CONTRACT,
            to_status=ContractStatus.SUSPENDED,
            key="s1",
            case_id="case-1",
            reason="Notice deadline passed with arrears (§38(2) VVG)",
            at=now - timedelta(days=2),
        )
        service.book_payment(
            session,
            contract_number=CONTRACT,
            external_ref="bank:77",
            amount_cents=1_000,
            received_at=now,
            source="bank",
        )

    response = await web.http.get(f"/contracts/{CONTRACT}")

    assert response.status_code == 200
    page = response.text
    assert "Notice deadline passed with arrears (§38(2) VVG)" in page
    assert re.search(r'id="status">suspended<', page)
    assert "P-1" in page and "P-2" in page and "bank:77" in page
    assert "160,50 €" in page  # open amount after the 10,00 € payment
    assert "http://127.0.0.1:8233/namespaces/default/workflows/dunning-K-100001" in page
    newest = sign(web.settings.link_secret, PAY_LINK_SALT, "tok-newest")
    assert f"http://testserver/pay/{newest}" in page
    assert sign(web.settings.link_secret, PAY_LINK_SALT, "tok-old") not in page


async def test_an_unknown_contract_is_a_404_page(web: Web) -> None:
    response = await web.http.get("/contracts/K-404")

    assert response.status_code == 404
    assert "K-404" in response.text


async def test_index_links_the_temporal_ui_and_lists_contracts_with_open_amounts(web: Web) -> None:
    response = await web.http.get("/")

    assert response.status_code == 200
    assert 'href="http://127.0.0.1:8233/namespaces/default/workflows"' in response.text
    assert 'href="/contracts/K-100001"' in response.text
    assert "170,50 €" in response.text
    assert 'href="/outbox"' in response.text and 'href="/tasks"' in response.text


async def test_tasks_list_and_task_page_show_the_agent_handover(web: Web) -> None:
    with session_scope(web.engine) as session:
        contract = service.get_contract(session, CONTRACT)
        now = datetime.now(UTC)
        task, _ = service.add_agent_task(
            session,
            AgentTask(
                idempotency_key="h1",
                case_id="dunning-K-100001/20260101T000000",
                contract_id=contract.id or 0,
                agent_code="A-7",
                open_cents=17_050,
                created_at=now,
                due_at=now + timedelta(hours=24),
            ),
        )
        task_id = task.id

    listing = await web.http.get("/tasks")
    detail = await web.http.get(f"/tasks/{task_id}")

    assert listing.status_code == 200 and f'href="/tasks/{task_id}"' in listing.text
    assert detail.status_code == 200
    for expected in ["dunning-K-100001/20260101T000000", "K-100001", "A-7", "Max Agent", "170,50 €", "open"]:
        assert expected in detail.text
    assert (await web.http.get("/tasks/99999")).status_code == 404
