"""The portal's step-up (issue #14): from a pay link to a portal session by a one-time code (e-mail or
SMS, read from the outbox row that is the delivery in the embedded default) or by postcode and date of
birth. Nothing personal is shown before step-up; a wrong answer says only that it did not match; too
many wrong answers lock the link for the hour; the per-IP limit answers 429. Sessions end absolutely,
when idle and on sign-out; the language switches between German and English."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from infra.config import Settings
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.auth import AuditEvent
from models.ledger import Message
from models.portal import PortalChallenge, PortalSession
from tests.apps import BothApps
from tests.helpers import form_post, hidden_fields
from tests.portal_support import BIRTH_DATE, POSTCODE, make_pay_link, seed_portal_customer
from web.deps import AppContext
from web.public.portal.session import COOKIE

CONTRACT = "K-100001"
PERSONAL = ["Erika", "Mustermann", "erika@example.org", "+4915112345678", "5678", POSTCODE, "Heidestra", "Köln"]
NO_MATCH = "Das hat nicht gepasst"


def loose(settings: Settings, **update: object) -> Settings:
    """The per-IP step-up limit out of the way (its own test sets it), other settings as given."""
    return settings.model_copy(update={"rate_limit_step_up": "1000/minute", **update})


def make_apps(time_env: WorkflowEnvironment, engine: Engine, settings: Settings) -> BothApps:
    return BothApps(
        AppContext(engine, time_env.client, settings, Inbound(engine, time_env.client, settings)), who="real"
    )


def browser(apps: BothApps) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=apps), base_url="http://test")


@pytest_asyncio.fixture
async def customer(engine: Engine, settings: Settings) -> AsyncIterator[tuple[int, str, str]]:
    """(customer id, signed token, token id) of a customer in dunning with a pay link."""
    customer_id = seed_portal_customer(engine, CONTRACT)
    token, token_id = make_pay_link(engine, settings, CONTRACT)
    yield customer_id, token, token_id


def code_messages(engine: Engine) -> list[Message]:
    with session_scope(engine) as session:
        return list(session.exec(select(Message).where(Message.kind == "portal_code").order_by(col(Message.id))))


def code_in(message: Message) -> str:
    found = re.search(r"\b(\d{6})\b", message.body_text)
    assert found is not None, message.body_text
    return found.group(1)


def assert_nothing_personal(text: str) -> None:
    for value in PERSONAL:
        assert value not in text, f"{value!r} shown before step-up"
    assert BIRTH_DATE.isoformat() not in text


def sessions(engine: Engine) -> list[PortalSession]:
    with session_scope(engine) as session:
        return list(session.exec(select(PortalSession)))


async def ask_code(client: httpx.AsyncClient, token: str, channel: str) -> httpx.Response:
    return await form_post(client, f"/verify/{token}", f"/verify/{token}/code", {"channel": channel})


async def enter_code(client: httpx.AsyncClient, token: str, code: str) -> httpx.Response:
    return await form_post(client, f"/verify/{token}", f"/verify/{token}", {"method": "code", "code": code})


async def enter_known(client: httpx.AsyncClient, token: str, postcode: str, birth: str) -> httpx.Response:
    data = {"method": "postcode_birth_date", "postcode": postcode, "birth_date": birth}
    return await client.post(f"/verify/{token}", data={**await csrf(client, token), **data})


async def csrf(client: httpx.AsyncClient, token: str) -> dict[str, str]:
    page = await client.get(f"/verify/{token}")
    fields = hidden_fields(page.text, f"/verify/{token}")
    fields.pop("method", None)
    return fields


async def test_the_step_up_page_offers_the_ways_without_showing_anything_personal(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings, customer: tuple[int, str, str]
) -> None:
    _, token, _ = customer
    async with browser(make_apps(time_env, engine, loose(settings))) as client:
        page = await client.get(f"/verify/{token}")
        pay = await client.get(f"/pay/{token}")
    assert page.status_code == 200
    assert '<html lang="de">' in page.text
    assert "hinterlegte E-Mail-Adresse" in page.text and "hinterlegte Mobilnummer" in page.text
    assert 'name="birth_date"' in page.text and 'for="birth_date"' in page.text
    assert_nothing_personal(page.text)
    assert page.headers["cache-control"] == "no-store"
    assert f'href="/verify/{token}"' in pay.text and "Details, Dokumente und Möglichkeiten" in pay.text


async def test_only_the_ways_that_exist_are_offered(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings
) -> None:
    seed_portal_customer(engine, CONTRACT, email=None)
    token, _ = make_pay_link(engine, settings, CONTRACT)
    async with browser(make_apps(time_env, engine, loose(settings))) as client:
        page = await client.get(f"/verify/{token}")
        forged = await ask_code(client, token, "email")
    assert 'value="email"' not in page.text and 'value="sms"' in page.text
    assert forged.status_code == 422 and "wohin wir den Code senden" in forged.text
    assert code_messages(engine) == []


async def test_step_up_by_an_e_mail_code_opens_the_portal(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings, customer: tuple[int, str, str]
) -> None:
    customer_id, token, token_id = customer
    async with browser(make_apps(time_env, engine, loose(settings))) as client:
        asked = await ask_code(client, token, "email")
        assert asked.status_code == 303 and asked.headers["location"] == f"/verify/{token}"
        [message] = code_messages(engine)
        assert (message.channel, message.recipient, message.status) == ("email", "erika@example.org", "sent")
        code = code_in(message)
        with session_scope(engine) as session:
            [challenge] = session.exec(select(PortalChallenge)).all()
        assert challenge.code_hash == hashlib.sha256(code.encode()).hexdigest() and code not in challenge.code_hash
        assert challenge.purpose == "step_up" and challenge.pay_link_token_id == token_id
        waiting = await client.get(f"/verify/{token}")
        assert "per E-Mail geschickt" in waiting.text and 'autocomplete="one-time-code"' in waiting.text
        passed = await enter_code(client, token, f" {code[:3]} {code[3:]} ")
        assert passed.status_code == 303 and passed.headers["location"] == "/portal"
        assert COOKIE in client.cookies
        assert (await client.get(f"/verify/{token}")).headers["location"] == "/portal"  # already stepped up
    async with browser(make_apps(time_env, engine, loose(settings))) as other:
        again = await enter_code(other, token, code)  # used once: a second use does not match
    [row] = sessions(engine)
    assert (row.customer_id, row.method, row.pay_link_token_id) == (customer_id, "email_code", token_id)
    assert NO_MATCH in again.text
    with session_scope(engine) as session:
        trail = session.exec(select(AuditEvent).where(AuditEvent.action == "POST /verify/{token}")).all()
    assert [e.detail.get("portal_action") for e in trail] == ["step_up"]
    assert code not in str(trail[0].detail) and token not in str(trail[0].detail)


async def test_step_up_by_an_sms_code(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings, customer: tuple[int, str, str]
) -> None:
    _, token, _ = customer
    async with browser(make_apps(time_env, engine, loose(settings))) as client:
        await ask_code(client, token, "email")
        await ask_code(client, token, "sms")  # replaces the e-mail code
        first, second = code_messages(engine)
        assert (second.channel, second.recipient) == ("sms", "+4915112345678")
        stale = await enter_code(client, token, code_in(first))
        assert stale.status_code == 422 and NO_MATCH in stale.text
        passed = await enter_code(client, token, code_in(second))
    assert passed.status_code == 303
    assert [s.method for s in sessions(engine)] == ["sms_code"]


async def test_step_up_by_postcode_and_birth_date(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings, customer: tuple[int, str, str]
) -> None:
    _, token, _ = customer
    async with browser(make_apps(time_env, engine, loose(settings))) as client:
        passed = await enter_known(client, token, " 511 47 ", BIRTH_DATE.isoformat())
        overview_page = await client.get("/portal", follow_redirects=False)
    assert passed.status_code == 303 and passed.headers["location"] == "/portal"
    assert [s.method for s in sessions(engine)] == ["postcode_birth_date"]
    assert overview_page.status_code == 200 and "Ihre Übersicht" in overview_page.text
    with session_scope(engine) as session:
        trail = session.exec(select(AuditEvent)).all()
    assert all(BIRTH_DATE.isoformat() not in str(e.detail) and POSTCODE not in str(e.detail) for e in trail)


async def test_a_wrong_code_and_a_wrong_birth_date_get_the_same_neutral_answer(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings, customer: tuple[int, str, str]
) -> None:
    _, token, _ = customer
    async with browser(make_apps(time_env, engine, loose(settings))) as client:
        await ask_code(client, token, "sms")
        code = code_in(code_messages(engine)[0])
        wrong = "000000" if code != "000000" else "111111"
        by_code = await enter_code(client, token, wrong)
        by_birth = await enter_known(client, token, POSTCODE, "1999-01-01")
        by_postcode = await enter_known(client, token, "99999", BIRTH_DATE.isoformat())
    for answer in (by_code, by_birth, by_postcode):
        assert answer.status_code == 422
        assert answer.text.count(NO_MATCH) == 1 and 'role="alert"' in answer.text
        assert "Postleitzahl falsch" not in answer.text and "Geburtsdatum falsch" not in answer.text
        assert_nothing_personal(answer.text)
        assert COOKIE not in answer.cookies
    assert sessions(engine) == []


async def test_too_many_wrong_answers_lock_the_link_for_the_hour(
    time_env: WorkflowEnvironment,
    engine: Engine,
    settings: Settings,
    customer: tuple[int, str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, token, _ = customer
    apps = make_apps(time_env, engine, loose(settings, portal_step_up_failures=3))
    async with browser(apps) as client:
        fields = await csrf(client, token)  # the form's token, kept: the locked page has no form
        known = {**fields, "method": "postcode_birth_date", "postcode": POSTCODE}
        answers = [
            await client.post(f"/verify/{token}", data={**known, "birth_date": f"1990-01-0{n}"}) for n in (1, 2, 3)
        ]
        assert [a.status_code for a in answers] == [422, 422, 429]
        right = await client.post(f"/verify/{token}", data={**known, "birth_date": BIRTH_DATE.isoformat()})
        page = await client.get(f"/verify/{token}")
        code = await client.post(f"/verify/{token}/code", data={**fields, "channel": "email"})
    assert right.status_code == 429 and "Zu viele Versuche" in right.text  # even the right answer, for the hour
    assert page.status_code == 429 and "Zu viele Versuche" in page.text and 'name="birth_date"' not in page.text
    assert code.status_code == 429
    assert sessions(engine) == [] and code_messages(engine) == []
    assert_nothing_personal(page.text)
    failed = [r.getMessage() for r in caplog.records if "portal step-up failed" in r.getMessage()]
    assert len(failed) == 3 and "link locked for the hour" in failed[-1]  # logged for monitoring ...
    for line in failed:  # ... without the answers or anything personal
        assert "1990-01-0" not in line and POSTCODE not in line and token not in line


async def test_a_code_expires_and_dies_after_its_attempts(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings, customer: tuple[int, str, str]
) -> None:
    _, token, _ = customer
    apps = make_apps(time_env, engine, loose(settings, portal_code_attempts=2))
    async with browser(apps) as client:
        await ask_code(client, token, "email")
        code = code_in(code_messages(engine)[-1])
        with session_scope(engine) as session:
            challenge = session.exec(select(PortalChallenge)).one()
            challenge.expires_at = datetime.now(UTC) - timedelta(seconds=1)
            session.add(challenge)
        expired = await enter_code(client, token, code)
        assert expired.status_code == 422 and NO_MATCH in expired.text

        await ask_code(client, token, "email")
        code = code_in(code_messages(engine)[-1])
        wrong = "000000" if code != "000000" else "111111"
        assert (await enter_code(client, token, wrong)).status_code == 422
        assert (await enter_code(client, token, wrong)).status_code == 422
        dead = await enter_code(client, token, code)  # the right code after the attempts: dead
    assert dead.status_code == 422 and NO_MATCH in dead.text
    assert sessions(engine) == []


async def test_the_step_up_is_rate_limited_per_ip(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings, customer: tuple[int, str, str]
) -> None:
    _, token, _ = customer
    apps = make_apps(time_env, engine, settings.model_copy(update={"rate_limit_step_up": "2/minute"}))
    async with browser(apps) as client:
        fields = await csrf(client, token)
        answers = [
            await client.post(f"/verify/{token}", data={**fields, "method": "code", "code": "123456"}) for _ in range(3)
        ]
    assert [a.status_code for a in answers] == [422, 422, 429]
    assert "retry-after" in answers[2].headers


async def test_no_personal_data_in_the_urls(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings, customer: tuple[int, str, str]
) -> None:
    _, token, _ = customer
    visited: list[str] = []

    async def record(request: httpx.Request) -> None:
        visited.append(str(request.url))

    apps = make_apps(time_env, engine, loose(settings))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=apps), base_url="http://test", event_hooks={"request": [record]}
    ) as client:
        await ask_code(client, token, "email")
        code = code_in(code_messages(engine)[-1])
        await form_post(
            client, f"/verify/{token}", f"/verify/{token}", {"method": "code", "code": code}, follow_redirects=True
        )
        page = await client.get("/portal")
    links = re.findall(r'(?:href|action)="([^"]+)"', page.text)
    assert visited and links
    for url in visited + links:
        for value in [*PERSONAL, BIRTH_DATE.isoformat(), CONTRACT, code]:
            assert value not in url, f"{value!r} in {url}"


async def test_a_session_ends_absolutely_when_idle_and_on_sign_out(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings, customer: tuple[int, str, str]
) -> None:
    _, token, _ = customer
    apps = make_apps(time_env, engine, loose(settings))

    async def signed_in(client: httpx.AsyncClient) -> PortalSession:
        passed = await enter_known(client, token, POSTCODE, BIRTH_DATE.isoformat())
        assert passed.status_code == 303
        with session_scope(engine) as session:
            return session.exec(select(PortalSession).order_by(col(PortalSession.created_at).desc())).first()  # type: ignore[return-value]

    def move(row: PortalSession, **times: datetime) -> None:
        with session_scope(engine) as session:
            stored = session.get(PortalSession, row.id_hash)
            assert stored is not None
            for name, value in times.items():
                setattr(stored, name, value)
            session.add(stored)

    now = datetime.now(UTC)
    async with browser(apps) as client:
        row = await signed_in(client)
        assert (await client.get("/portal")).status_code == 200
        move(row, expires_at=now - timedelta(seconds=1))  # the absolute end passed
        gone = await client.get("/portal")
        assert gone.status_code == 303 and gone.headers["location"] == "/portal/ended"

    async with browser(apps) as client:
        row = await signed_in(client)
        move(row, last_seen_at=now - timedelta(minutes=settings.portal_idle_minutes, seconds=1))
        gone = await client.get("/portal")
        assert gone.status_code == 303 and gone.headers["location"] == "/portal/ended"
        move(row, last_seen_at=now)  # an idle-ended session stays ended
        assert (await client.get("/portal")).headers.get("location") == "/portal/ended"

    async with browser(apps) as client:
        row = await signed_in(client)
        out = await form_post(client, "/portal", "/portal/sign-out")
        assert out.status_code == 303 and out.headers["location"] == "/portal/ended"
        ended = await client.get("/portal/ended")
        assert "Sitzung" in ended.text and "Link aus Ihrer Nachricht" in ended.text
        again = await client.get("/portal")
        assert again.headers.get("location") == "/portal/ended"
    with session_scope(engine) as session:
        stored = session.get(PortalSession, row.id_hash)
        assert stored is not None and stored.revoked_at is not None


async def test_the_language_switches_from_german_to_english(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings, customer: tuple[int, str, str]
) -> None:
    _, token, _ = customer
    async with browser(make_apps(time_env, engine, loose(settings))) as client:
        switched = await form_post(
            client, f"/verify/{token}", "/portal/language", {"lang": "en", "next": f"/verify/{token}"}
        )
        assert switched.status_code == 303 and switched.headers["location"] == f"/verify/{token}"
        page = await client.get(f"/verify/{token}")
        assert '<html lang="en">' in page.text and "Confirm it is you" in page.text
        assert "Bestätigen Sie" not in page.text
        wrong = await enter_known(client, token, POSTCODE, "1999-01-01")
        assert "That did not match" in wrong.text

        elsewhere = await form_post(
            client, f"/verify/{token}", "/portal/language", {"lang": "de", "next": "https://evil.example/"}
        )
        assert elsewhere.status_code == 422 and "location" not in elsewhere.headers
        slashes = await form_post(client, f"/verify/{token}", "/portal/language", {"lang": "de", "next": "//evil"})
        assert slashes.status_code == 422
        unknown = await form_post(client, f"/verify/{token}", "/portal/language", {"lang": "fr", "next": "/portal"})
        assert unknown.status_code == 422 and "fr" in unknown.text

        passed = await enter_known(client, token, POSTCODE, BIRTH_DATE.isoformat())
        assert passed.status_code == 303
        assert [s.language for s in sessions(engine)] == ["en"]  # the choice carries into the session
        back = await form_post(client, "/portal", "/portal/language", {"lang": "de", "next": "/portal"})
        assert back.status_code == 303
        overview_page = await client.get("/portal")
    assert [s.language for s in sessions(engine)] == ["de"]
    assert '<html lang="de">' in overview_page.text


async def test_the_step_up_speaks_the_customers_language(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings
) -> None:
    seed_portal_customer(engine, CONTRACT, language="en")
    token, _ = make_pay_link(engine, settings, CONTRACT)
    async with browser(make_apps(time_env, engine, loose(settings))) as client:
        page = await client.get(f"/verify/{token}")
    assert '<html lang="en">' in page.text and "the address we have on file" in page.text
