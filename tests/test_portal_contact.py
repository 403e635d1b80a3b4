"""The portal's contact details, messages and callbacks (issue #14) on the time-skipping server with the
real worker: a new e-mail address changes only with the code sent to it; bad input names its field and
changes nothing; a message goes to the agent (24 hours) or, about a payment, to finance (4 working
days), the agent hears of it by e-mail without the customer's contact data, and the thread shows it."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, timedelta

import httpx
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.calendar import add_working_days, local_date, start_of_day
from core.timezone import BUSINESS_TIMEZONE
from infra.config import Settings
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.agency import CustomerNote
from models.ledger import Customer, Message
from models.portal import PortalChallenge, RequestKind, RequestQueue, RequestStatus, ServiceRequest
from tests.apps import BothApps
from tests.helpers import berlin_today, csrf_fields, form_post, open_case, status
from tests.portal_support import make_pay_link, portal_client, portal_cookie, seed_portal_customer
from web.deps import AppContext
from web.public.portal.codes import CODE_KIND

CONTRACT = "K-100001"
NEW_EMAIL = "erika.neu@example.org"


@pytest_asyncio.fixture
async def customer(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, int]]:
    """A customer in dunning with a running case, signed in to the portal (German)."""
    today = berlin_today(await time_env.get_current_time())
    customer_id = seed_portal_customer(engine, premiums=[("P-1", today, 12_000)])
    handle = await open_case(time_env, worker.task_queue, CONTRACT, "P-1")
    await status(handle)  # the case has read its arrears
    _, token_id = make_pay_link(engine, settings, CONTRACT)
    apps = BothApps(
        AppContext(engine, time_env.client, settings, Inbound(engine, time_env.client, settings)), who="real"
    )
    async with portal_client(apps, portal_cookie(engine, customer_id, token_id)) as client:
        yield client, customer_id


def the_customer(engine: Engine, customer_id: int) -> Customer:
    with session_scope(engine) as session:
        row = session.get(Customer, customer_id)
        assert row is not None
        return row


def requests_of(engine: Engine, kind: RequestKind) -> list[ServiceRequest]:
    with session_scope(engine) as session:
        return list(session.exec(select(ServiceRequest).where(ServiceRequest.kind == kind)))


async def confirm(client: httpx.AsyncClient, challenge_id: int | None, code: str) -> httpx.Response:
    """Enter a code as the confirm form does (the form is on the page only while the code lives)."""
    token = await csrf_fields(client, "/portal/contact")
    return await client.post("/portal/contact/confirm", data={**token, "challenge": str(challenge_id), "code": code})


def code_messages(engine: Engine) -> list[Message]:
    with session_scope(engine) as session:
        return list(session.exec(select(Message).where(Message.kind == CODE_KIND).order_by(col(Message.id))))


async def test_a_new_email_address_changes_only_with_the_code_sent_to_it(
    customer: tuple[httpx.AsyncClient, int], engine: Engine, settings: Settings
) -> None:
    client, customer_id = customer
    with session_scope(engine) as session:  # a bounced address: the confirmed new one is usable again
        row = session.get(Customer, customer_id)
        assert row is not None
        row.email_valid = False
        session.add(row)

    asked = await form_post(client, "/portal/contact", "/portal/contact", {"what": "email", "email": NEW_EMAIL})
    assert asked.status_code == 200, asked.text
    assert 'action="/portal/contact/confirm"' in asked.text and NEW_EMAIL in asked.text
    [mail] = code_messages(engine)
    assert mail.recipient == NEW_EMAIL and mail.channel == "email" and mail.status == "sent"
    code = re.search(r"\b([0-9]{6})\b", mail.body_text)
    assert code is not None
    with session_scope(engine) as session:  # only the hash is kept
        [challenge] = session.exec(select(PortalChallenge)).all()
    assert challenge.code_hash == hashlib.sha256(code.group(1).encode()).hexdigest()
    assert challenge.destination == NEW_EMAIL and challenge.purpose == "new_email"
    assert the_customer(engine, customer_id).email == "erika@example.org"  # not before the code

    wrong = "000000" if code.group(1) != "000000" else "111111"
    refused = await confirm(client, challenge.id, wrong)
    assert refused.status_code == 422
    assert "Der Code stimmt nicht. Sie haben noch 4 Versuch(e)." in refused.text
    with session_scope(engine) as session:
        counted = session.get(PortalChallenge, challenge.id)
        assert counted is not None and counted.attempts == 1 and counted.used_at is None
    assert the_customer(engine, customer_id).email == "erika@example.org"
    assert requests_of(engine, RequestKind.CONTACT_CHANGE) == []

    # The confirm form sits on the page that answered the wrong code (with its CSRF token).
    confirmed = await confirm(client, challenge.id, code.group(1))
    assert confirmed.status_code == 303, confirmed.text
    assert confirmed.headers["location"] == "/portal/contact?done=email"
    changed = the_customer(engine, customer_id)
    assert (changed.email, changed.email_valid) == (NEW_EMAIL, True)
    [recorded] = requests_of(engine, RequestKind.CONTACT_CHANGE)
    assert (recorded.queue, recorded.status) == (RequestQueue.CLERK, RequestStatus.OPEN)
    assert recorded.details == {"change": "email", "email": NEW_EMAIL} and NEW_EMAIL not in recorded.summary
    shown = await client.get("/portal/contact?done=email")
    assert "Ihre neue E-Mail-Adresse ist bestätigt und gespeichert." in shown.text

    again = await confirm(client, challenge.id, code.group(1))
    assert again.status_code == 410 and "Dieser Code gilt nicht mehr" in again.text
    assert len(requests_of(engine, RequestKind.CONTACT_CHANGE)) == 1


async def test_a_code_entered_wrongly_too_often_dies_and_changes_nothing(
    customer: tuple[httpx.AsyncClient, int], engine: Engine, settings: Settings
) -> None:
    client, customer_id = customer
    await form_post(client, "/portal/contact", "/portal/contact", {"what": "phone", "phone": "+49 170 1234567"})
    [sms] = code_messages(engine)
    assert (sms.recipient, sms.channel) == ("+491701234567", "sms")
    code = re.search(r"\b([0-9]{6})\b", sms.body_text)
    assert code is not None
    with session_scope(engine) as session:
        [challenge] = session.exec(select(PortalChallenge)).all()
    wrong = "000000" if code.group(1) != "000000" else "111111"
    for _ in range(settings.portal_code_attempts):
        answer = await confirm(client, challenge.id, wrong)
        assert answer.status_code == 422
    assert "Dieser Code gilt nicht mehr" in answer.text
    late = await confirm(client, challenge.id, code.group(1))
    assert late.status_code == 410
    assert the_customer(engine, customer_id).phone == "+4915112345678"
    assert requests_of(engine, RequestKind.CONTACT_CHANGE) == []


async def test_an_invalid_email_or_phone_is_refused_naming_the_field(
    customer: tuple[httpx.AsyncClient, int], engine: Engine
) -> None:
    client, customer_id = customer
    bad_mail = await form_post(client, "/portal/contact", "/portal/contact", {"what": "email", "email": "erika@"})
    assert bad_mail.status_code == 422
    assert "Die E-Mail-Adresse ist ungültig" in bad_mail.text
    assert 'id="email-error" role="alert"' in bad_mail.text and 'aria-describedby="email-error"' in bad_mail.text
    bad_phone = await form_post(client, "/portal/contact", "/portal/contact", {"what": "phone", "phone": "0151 123"})
    assert bad_phone.status_code == 422
    assert "Die Mobilnummer ist ungültig" in bad_phone.text and 'id="phone-error"' in bad_phone.text
    same = await form_post(
        client, "/portal/contact", "/portal/contact", {"what": "email", "email": "Erika@example.org"}
    )
    assert same.status_code == 422 and "schon bei uns hinterlegt" in same.text
    assert code_messages(engine) == []
    with session_scope(engine) as session:
        assert session.exec(select(PortalChallenge)).all() == []
    unchanged = the_customer(engine, customer_id)
    assert (unchanged.email, unchanged.phone) == ("erika@example.org", "+4915112345678")


async def test_a_new_postal_address_goes_to_a_clerk_and_the_master_data_waits(
    customer: tuple[httpx.AsyncClient, int], engine: Engine
) -> None:
    client, customer_id = customer
    new = {"what": "address", "street": "Ringstraße 5", "postal_code": "50667", "city": "Köln"}
    sent = await form_post(client, "/portal/contact", "/portal/contact", new)
    assert sent.status_code == 303 and sent.headers["location"] == "/portal/contact?done=address"
    [request] = requests_of(engine, RequestKind.CONTACT_CHANGE)
    assert (request.queue, request.status) == (RequestQueue.CLERK, RequestStatus.OPEN)
    assert request.details["street"] == "Ringstraße 5" and "Ringstraße" not in request.summary
    assert the_customer(engine, customer_id).street == "Heidestraße 17"
    bad = await form_post(client, "/portal/contact", "/portal/contact", {**new, "postal_code": "?"})
    assert bad.status_code == 422 and 'id="postal_code-error"' in bad.text
    assert len(requests_of(engine, RequestKind.CONTACT_CHANGE)) == 1


async def test_a_message_goes_to_the_agent_who_is_mailed_without_the_customers_contact_data(
    customer: tuple[httpx.AsyncClient, int], engine: Engine
) -> None:
    client, _ = customer
    words = "Ich war im Krankenhaus und zahle nächste Woche."
    sent = await form_post(client, "/portal/messages", "/portal/messages", {"topic": "other", "text": words})
    assert sent.status_code == 303, sent.text
    [request] = requests_of(engine, RequestKind.MESSAGE)
    assert sent.headers["location"] == f"/portal/messages?sent={request.id}"
    assert (request.queue, request.agent_code, request.status) == (RequestQueue.AGENT, "A-7", RequestStatus.OPEN)
    assert request.due_at is not None  # 24 hours from when the case accepted it (moments after it was written)
    assert timedelta(hours=24) <= request.due_at - request.created_at < timedelta(hours=24, minutes=5)
    with session_scope(engine) as session:
        [mail] = session.exec(select(Message).where(Message.recipient == "max.agent@example.org")).all()
        [note] = session.exec(select(CustomerNote).where(CustomerNote.author == "customer")).all()
    assert note.kind == "message" and note.text == words
    for personal in ("erika@example.org", "+4915112345678", "Erika", "Mustermann", "Heidestraße", words):
        assert personal not in mail.body_text and personal not in mail.body_html and personal not in mail.subject
    thread = await client.get(f"/portal/messages?sent={request.id}")
    assert words in thread.text and "Ihr Vermittler meldet sich" in thread.text
    empty = await form_post(client, "/portal/messages", "/portal/messages", {"topic": "other", "text": "  "})
    assert empty.status_code == 422 and 'id="text-error" role="alert"' in empty.text
    assert len(requests_of(engine, RequestKind.MESSAGE)) == 1


async def test_a_payment_question_goes_to_finance_due_in_four_working_days(
    customer: tuple[httpx.AsyncClient, int], engine: Engine
) -> None:
    client, _ = customer
    sent = await form_post(
        client, "/portal/messages", "/portal/messages", {"topic": "payment", "text": "Ist meine Zahlung angekommen?"}
    )
    assert sent.status_code == 303, sent.text
    [request] = requests_of(engine, RequestKind.MESSAGE)
    assert (request.queue, request.agent_code, request.status) == (RequestQueue.FINANCE, None, RequestStatus.OPEN)
    assert request.due_at is not None
    asked_on = local_date(request.created_at.replace(tzinfo=UTC), BUSINESS_TIMEZONE)
    fourth_working_day = add_working_days(asked_on, 4)  # the end of the fourth working day after asking
    due = request.due_at.replace(tzinfo=UTC)
    assert due == start_of_day(fourth_working_day + timedelta(days=1), BUSINESS_TIMEZONE)
    assert (fourth_working_day - asked_on).days >= 4


async def test_a_callback_on_the_number_on_file_goes_to_the_agent(
    customer: tuple[httpx.AsyncClient, int], engine: Engine
) -> None:
    client, _ = customer
    bad = await form_post(
        client, "/portal/messages", "/portal/callback", {"window": "morning", "number": "other", "phone": "12"}
    )
    assert bad.status_code == 422 and "Die Mobilnummer ist ungültig" in bad.text
    assert requests_of(engine, RequestKind.CALLBACK) == []
    sent = await form_post(client, "/portal/messages", "/portal/callback", {"window": "morning", "number": "on_file"})
    assert sent.status_code == 303, sent.text
    [request] = requests_of(engine, RequestKind.CALLBACK)
    assert (request.queue, request.agent_code, request.status) == (RequestQueue.AGENT, "A-7", RequestStatus.OPEN)
    assert request.details["phone"] == "+4915112345678" and request.details["window"] == "morning"
