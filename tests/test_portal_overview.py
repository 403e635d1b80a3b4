"""The portal's overview (issue #14): per contract the open items exactly as the ledger holds them, two
contracts of one customer in one view with one total, the case in plain words read from the case
itself (suspended cover, the next step), letters as the very PDF bytes whose hash is the recorded
evidence, payments with what each paid, the agent's card. Time-skipping server and the real worker
where a case is needed."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.config import Settings
from ledger import evidence, portal, service
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.case import CaseStage, CaseStatus, Hold, HoldKind, Instalment
from models.ledger import Customer, Message
from tests.apps import BothApps
from tests.helpers import advance_until, berlin_today, messages, open_case
from tests.portal_support import AGENT_PHONE, make_pay_link, portal_client, portal_cookie, seed_portal_customer
from web.deps import AppContext
from web.public.portal.i18n import Words, day, money
from web.public.portal.overview import case_words

CONTRACT = "K-100001"
SECOND = "K-100002"


@pytest_asyncio.fixture
async def apps(time_env: WorkflowEnvironment, engine: Engine, settings: Settings) -> AsyncIterator[BothApps]:
    yield BothApps(
        AppContext(engine, time_env.client, settings, Inbound(engine, time_env.client, settings)), who="real"
    )


def second_contract(engine: Engine, customer_id: int, premiums: list[tuple[str, int]]) -> None:
    """Another contract of the same customer, with premiums due today."""
    today = berlin_today(datetime.now(UTC))
    with session_scope(engine) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        service.upsert_contract(session, SECOND, customer, agent_code="A-7", product="Kfz")
        for premium_id, cents in premiums:
            service.book_premium(
                session,
                external_id=premium_id,
                contract_number=SECOND,
                period_start=today,
                period_end=today + timedelta(days=30),
                due_date=today,
                amount_cents=cents,
            )


async def test_two_contracts_of_one_customer_show_their_items_to_the_cent_in_one_view(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings, apps: BothApps
) -> None:
    today = berlin_today(datetime.now(UTC))
    earlier = today - timedelta(days=31)
    customer_id = seed_portal_customer(engine, CONTRACT, premiums=[("P-1", earlier, 12_345), ("P-2", today, 6_789)])
    second_contract(engine, customer_id, [("Q-1", 4_001)])
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        service.book_fee(
            session,
            key="fee-1",
            contract_number=CONTRACT,
            case_id="case-K-100001",
            label="Mahnkosten qualifizierte Mahnung",
            amount_cents=150,
            at=now,
        )
        service.book_payment(
            session,
            contract_number=SECOND,
            external_ref="bank-1",
            amount_cents=1_000,
            received_at=now,
            source="bank",
        )
        p1 = service.period_label(service.get_premium(session, "P-1"))
        q1 = service.period_label(service.get_premium(session, "Q-1"))
    _, token_id = make_pay_link(engine, settings, CONTRACT)
    make_pay_link(engine, settings, SECOND)

    async with portal_client(apps, portal_cookie(engine, customer_id, token_id)) as client:
        page = await client.get("/portal")
    assert page.status_code == 200, page.text
    text = page.text
    assert "K-100001" not in text.replace('value="K-100001"', "")  # masked on the page (the form posts it)
    assert "Hausrat" in text and "Kfz" in text
    assert f"Beitrag {p1}" in text and money("de", 12_345) in text and day("de", earlier) in text
    assert money("de", 6_789) in text
    assert "<td>Mahnkosten qualifizierte Mahnung</td>" in text and money("de", 150) in text
    assert money("de", 12_345 + 6_789 + 150) in text  # the first contract's total
    assert money("de", 3_001) in text  # the second contract: 40.01 less the 10.00 paid
    assert money("de", 12_345 + 6_789 + 150 + 3_001) in text and "über 2 Verträge" in text
    assert 'href="/portal/pay"' in text and "Alles auf einmal bezahlen" in text
    assert f"Beitrag {q1}: {money('de', 1_000)}" in text  # what the payment paid
    assert "Max Agent" in text and 'href="mailto:max.agent@example.org"' in text
    assert f'href="tel:{AGENT_PHONE}"' in text  # click to call
    assert 'href="/portal/messages#callback"' in text  # the callback form is on the messages page
    assert text.count("Max Agent</dd>") == 1  # one agent card for both contracts
    assert "kein Mahnverfahren" in text  # no case is running (no workflow)
    assert text.count("<h1") == 1


async def test_suspended_cover_in_plain_words_and_the_notice_as_the_recorded_pdf(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, apps: BothApps
) -> None:
    today = berlin_today(await time_env.get_current_time())
    customer_id = seed_portal_customer(engine, CONTRACT, premiums=[("P-1", today, 10_000)])
    handle = await open_case(time_env, worker.task_queue, CONTRACT, "P-1")
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.SUSPENDED)
    _, token_id = make_pay_link(engine, settings, CONTRACT)
    with session_scope(engine) as session:
        proofs = evidence.notices(session, CONTRACT)
        [change] = [c for c in service.status_history(session, CONTRACT) if c.to_status == "suspended"]
    letters = {m.id: m for m in messages(engine, CONTRACT) if m.pdf is not None}
    [proof] = [p for p in proofs if p.message_id in letters]  # the notice sent with its PDF
    notice = letters[proof.message_id]

    # Another customer's letter: never served to this customer.
    seed_portal_customer(engine, "K-200001")
    with session_scope(engine) as session:
        other = service.get_contract(session, "K-200001")
        stranger = Message(
            idempotency_key="other-letter",
            case_id="case-K-200001",
            contract_id=other.id,
            channel="letter",
            kind="reminder",
            recipient="somewhere",
            body_text="x",
            pdf=b"%PDF-1.4 someone else",
            created_at=datetime.now(UTC),
            status="sent",
        )
        session.add(stranger)
        session.flush()
        stranger_id = stranger.id

    async with portal_client(apps, portal_cookie(engine, customer_id, token_id, language="en")) as client:
        page = await client.get("/portal")
        download = await client.get(f"/portal/documents/{proof.message_id}")
        foreign = await client.get(f"/portal/documents/{stranger_id}")
        missing = await client.get("/portal/documents/999999")
    assert page.status_code == 200, page.text
    assert f"Your cover is suspended since {day('en', change.effective_at)}" in page.text
    assert "it returns the moment the balance is paid" in page.text
    assert '<html lang="en">' in page.text
    assert f'href="/portal/documents/{proof.message_id}"' in page.text and "formal notice" in page.text
    assert f"/portal/documents/{stranger_id}" not in page.text
    assert download.status_code == 200 and download.content == notice.pdf
    assert hashlib.sha256(download.content).hexdigest() == proof.content_sha256
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["cache-control"] == "no-store"
    assert foreign.status_code == 404 and missing.status_code == 404


async def test_the_next_step_is_named_with_its_date(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, apps: BothApps
) -> None:
    today = berlin_today(await time_env.get_current_time())
    customer_id = seed_portal_customer(engine, CONTRACT, premiums=[("P-1", today, 10_000)])
    handle = await open_case(time_env, worker.task_queue, CONTRACT, "P-1")
    case = await advance_until(time_env, handle, lambda s: s.next_step_at is not None and not s.closed)
    _, token_id = make_pay_link(engine, settings, CONTRACT)
    async with portal_client(apps, portal_cookie(engine, customer_id, token_id)) as client:
        page = await client.get("/portal")
    assert case.next_step_at is not None
    assert f"Nächster Schritt am {day('de', case.next_step_at.date())}" in page.text
    assert "Ihr Versicherungsschutz besteht." in page.text


async def test_the_overview_needs_a_portal_session(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings, apps: BothApps
) -> None:
    seed_portal_customer(engine, CONTRACT)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=apps), base_url="http://test") as client:
        page = await client.get("/portal")
        document = await client.get("/portal/documents/1")
    assert page.status_code == 303 and page.headers["location"] == "/portal/ended"
    assert document.status_code == 303 and document.headers["location"] == "/portal/ended"
    with session_scope(engine) as session:
        assert session.exec(select(Message)).all() == []


def a_case(**fields: object) -> CaseStatus:
    base: dict[str, object] = {
        "case_id": "case-K-100001",
        "contract_number": CONTRACT,
        "plan_id": "de-follow-up",
        "plan_version": 1,
        "stage": CaseStage.SUSPENDED,
        "closed": False,
        "hold": None,
        "balance_cents": 30_000,
        "credit_cents": 0,
        "items": [],
        "deadline": None,
        "next_step": None,
        "next_step_at": None,
        "steps_done": [],
        "journal": [],
    }
    return CaseStatus.model_validate({**base, **fields})


def test_the_case_in_plain_words_an_instalment_plan_a_deferral_a_dispute() -> None:
    words = Words("en")
    schedule = [Instalment(due=date(2026, 1, 1) + timedelta(days=31 * n), amount_cents=10_000) for n in range(3)]
    plan = Hold(kind=HoldKind.INSTALMENTS, reason="customer portal", schedule=schedule, instalment=1)
    lines, rows = case_words(words, a_case(hold=plan), answered=True)
    assert "agreed an instalment plan" in lines[0]
    assert [(r.number, r.due, r.amount_cents, r.state) for r in rows] == [
        (1, schedule[0].due, 10_000, "paid"),
        (2, schedule[1].due, 10_000, "next"),
        (3, schedule[2].due, 10_000, "later"),
    ]
    until = datetime(2026, 3, 14, 12, tzinfo=UTC)
    deferral = Hold(kind=HoldKind.PROMISE, reason="customer portal", until=until, promised_cents=30_000)
    lines, rows = case_words(words, a_case(hold=deferral), answered=True)
    assert lines == [
        "Payment deferred until 14 March 2026. Collection is paused until then.",
        "Amount promised: €300.00.",
    ]
    assert rows == []
    dispute = Hold(kind=HoldKind.DISPUTE, reason="customer portal")
    assert case_words(words, a_case(hold=dispute), answered=True)[0] == [words("portal.case.dispute")]
    assert case_words(words, a_case(closed=True), answered=True)[0] == ["The collection case is closed."]
    assert case_words(words, None, answered=True)[0] == [words("portal.case.none")]
    assert case_words(words, None, answered=False)[0] == [words("portal.case.unavailable")]


def test_a_deadline_in_the_past_is_said_to_have_ended() -> None:
    words = Words("de")
    past = datetime(2026, 3, 16, 23, 0, tzinfo=UTC)
    assert case_words(words, a_case(deadline=past), answered=True)[0] == [
        "Die Zahlungsfrist der Mahnung ist mit dem 16. März 2026 abgelaufen."
    ]
    future = datetime.now(UTC) + timedelta(days=5)
    [line] = case_words(words, a_case(deadline=future), answered=True)[0]
    assert line.startswith("Zahlungsfrist: bis ")


def test_mails_to_agents_and_codes_are_never_among_the_customers_documents(engine: Engine) -> None:
    seed_portal_customer(engine, premiums=[("P-1", date(2026, 11, 2), 12_000)])
    with session_scope(engine) as session:
        contract = service.get_contract(session, CONTRACT)
        for number, kind in enumerate(["agent_handover", "agent_portal_request", "agent_escalation", "portal_code"]):
            session.add(
                Message(
                    idempotency_key=f"hidden-{number}",
                    contract_id=contract.id,
                    channel="email",
                    kind=kind,
                    recipient="max.agent@example.org",
                    body_text="internal",
                    created_at=datetime.now(UTC),
                )
            )
        session.add(
            Message(
                idempotency_key="shown",
                contract_id=contract.id,
                channel="email",
                kind="reminder",
                recipient="erika@example.org",
                body_text="Zahlungserinnerung",
                created_at=datetime.now(UTC),
            )
        )
        session.flush()
        assert [d.kind for d in portal.documents(session, contract.id or 0)] == ["reminder"]
