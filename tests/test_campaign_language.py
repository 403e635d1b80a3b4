"""Campaign mails in the quote's language (issue #17): the calculator may send `language` (de, en, da)
with an abandoned quote, else its visitor's `country` decides (core/languages.py), else German; the
quote stores it (migration 0019) and the confirmation, the reminders and — for a signed contract —
the onboarding mails are written in it. Bad values are refused with 422 and nothing is written."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import select

from activities.campaign import CampaignActivities
from infra.config import Settings
from ledger import service
from ledger.campaign import register_quote
from ledger.db import session_scope
from models.campaign import CampaignQuote, SendCampaignMail, SendConfirmation
from models.campaign_requests import QuoteAbandonedIn
from models.ledger import Customer, Message
from tests.conftest import seed_contract
from tests.test_bad_input import Web, refused, web_for

QUOTES = "/api/campaign/quotes/abandoned"
EMAIL = "kunde@example.org"
GERMAN_WORDS = ("Ihr ", "Sie ", "Angebot", "Vertrag", "bestätigen")


@pytest_asyncio.fixture
async def web(engine: Engine, settings: Settings) -> AsyncIterator[Web]:
    async for w in web_for(engine, settings.model_copy(update={"rate_limit_campaign": "10000/minute"})):
        yield w


def stored_language(engine: Engine, quote_id: str) -> str:
    with session_scope(engine) as session:
        return session.exec(select(CampaignQuote).where(CampaignQuote.quote_id == quote_id)).one().language


async def test_the_quote_language_comes_from_the_calculator_else_the_country_else_german(web: Web) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"language": "da"}, "da"),
        ({"language": "en", "country": "DE"}, "en"),  # a language sent wins over the country
        ({"country": "DK"}, "da"),
        ({"country": "at"}, "de"),
        ({"country": "FR"}, "en"),  # any other country: English
        ({}, "de"),
    ]
    for n, (extra, expected) in enumerate(cases):
        body = {"quote_id": f"Q-LANG-{n}", "ip": f"203.0.113.{n + 1}"} | extra
        response = await web.http.post(QUOTES, json=body)
        assert response.status_code == 200, response.text
        assert response.json()["language"] == expected, extra
        assert stored_language(web.engine, f"Q-LANG-{n}") == expected, extra
    again = await web.http.post(QUOTES, json={"quote_id": "Q-LANG-0", "language": "en", "ip": "203.0.113.1"})
    assert again.status_code == 200 and again.json()["language"] == "da"  # a repeat joins the first report


@pytest.mark.parametrize(
    ("field", "value"),
    [("language", "sv"), ("language", "DA"), ("language", 1), ("country", "DNK"), ("country", "D1"), ("country", "")],
)
async def test_a_language_or_country_that_is_not_one_is_refused_and_nothing_written(
    web: Web, field: str, value: Any
) -> None:
    body = {"quote_id": "Q-LANG-BAD", "ip": "203.0.113.50", field: value}
    await refused(web, "POST", QUOTES, 422, field, json=body)


def register(engine: Engine, settings: Settings, quote_id: str, **extra: Any) -> tuple[str, datetime]:
    """An abandoned quote with a confirmed-to-be opt-in: (person key, abandoned at)."""
    abandoned_at = datetime.now(UTC) - timedelta(hours=1)
    body = QuoteAbandonedIn(
        quote_id=quote_id,
        email=EMAIL,
        opt_in=True,
        consent_text_version="dsgvo-2026-11",
        source_page="https://www.example-versicherung.de/kfz/rechner",
        abandoned_at=abandoned_at,
        **extra,
    )
    with session_scope(engine) as session:
        registered = register_quote(session, settings, body, abandoned_at)
    assert registered.input.person_key is not None
    return registered.input.person_key, abandoned_at


def mail(engine: Engine, key: str) -> Message:
    with session_scope(engine) as session:
        return session.exec(select(Message).where(Message.idempotency_key == key)).one()


def campaign_mail(
    quote_id: str | None, person_key: str, since: datetime, kind: str, step: str, **extra: Any
) -> SendCampaignMail:
    now = datetime.now(UTC)
    workflow = f"quote-{quote_id}" if quote_id else "onboarding-K-300001"
    return SendCampaignMail(
        key=f"{workflow}:{step}",
        workflow_id=workflow,
        step=step,
        kind=kind,
        person_key=person_key,
        quote_id=quote_id,
        since=since,
        reminder_number=1,
        due_at=now,
        now=now,
        **extra,
    )


def german_left(text: str) -> list[str]:
    return [word for word in GERMAN_WORDS if word in text]


def test_a_danish_quotes_confirmation_and_reminder_are_danish(engine: Engine, settings: Settings) -> None:
    person_key, since = register(engine, settings, "Q-DA-1", language="da")
    activities = CampaignActivities(engine, settings)
    now = datetime.now(UTC)
    confirm = SendConfirmation(quote_id="Q-DA-1", key="quote-Q-DA-1:confirm", now=now, retention_days=30)
    activities.send_confirmation(confirm)
    confirmation = mail(engine, "quote-Q-DA-1:confirm")
    assert confirmation.subject == "Bekræft venligst din e-mailadresse"
    assert german_left(confirmation.body_text) == []

    request = campaign_mail("Q-DA-1", person_key, since, "quote_reminder", "reminder-1")
    assert activities.send_campaign_mail(request).sent
    reminder = mail(engine, "quote-Q-DA-1:reminder-1")
    assert reminder.subject == "Dit tilbud på bilforsikring er gemt"
    assert "linket gælder til" in reminder.body_text
    valid_until = re.search(r"linket gælder til (\S+)\)", reminder.body_text)
    assert valid_until and re.fullmatch(r"\d{2}\.\d{2}\.\d{4}", valid_until.group(1))
    assert german_left(reminder.body_text) == [] and german_left(reminder.body_html or "") == []


def test_an_english_quote_writes_english_with_english_dates(engine: Engine, settings: Settings) -> None:
    person_key, since = register(engine, settings, "Q-EN-1", country="IE")
    activities = CampaignActivities(engine, settings)
    request = campaign_mail("Q-EN-1", person_key, since, "quote_reminder", "reminder-1")
    assert activities.send_campaign_mail(request).sent
    reminder = mail(engine, "quote-Q-EN-1:reminder-1")
    assert reminder.subject == "Your car insurance quote is saved"
    valid_until = re.search(r"link valid until ([^)]+)\)", reminder.body_text)
    assert valid_until and re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}", valid_until.group(1))  # 8 Dec 2026
    assert german_left(reminder.body_text) == []


def test_a_quote_without_language_or_country_stays_german(engine: Engine, settings: Settings) -> None:
    person_key, since = register(engine, settings, "Q-DE-1")
    activities = CampaignActivities(engine, settings)
    request = campaign_mail("Q-DE-1", person_key, since, "quote_reminder", "reminder-1")
    assert activities.send_campaign_mail(request).sent
    reminder = mail(engine, "quote-Q-DE-1:reminder-1")
    assert reminder.subject == "Ihr Angebot für die Kfz-Versicherung ist gespeichert"
    valid_until = re.search(r"gültig bis (\S+)\)", reminder.body_text)
    assert valid_until and re.fullmatch(r"\d{2}\.\d{2}\.\d{4}", valid_until.group(1))


def test_a_signed_contracts_onboarding_speaks_its_customers_language(engine: Engine, settings: Settings) -> None:
    person_key, since = register(engine, settings, "Q-SIGNED-1")  # the quote was German
    seed_contract(engine, "K-300001")
    with session_scope(engine) as session:
        contract = service.get_contract(session, "K-300001")
        customer = session.get(Customer, contract.customer_id)
        assert customer is not None
        customer.language = "da"
        session.add(customer)
    activities = CampaignActivities(engine, settings)
    onboarding = campaign_mail(
        None,
        person_key,
        since,
        "quote_onboarding",
        "onboarding-1",
        contract_number="K-300001",
        stop_on_touchpoint=False,
    )
    assert activities.send_campaign_mail(onboarding).sent
    sent = mail(engine, "onboarding-K-300001:onboarding-1")
    assert sent.subject == "Velkommen! Din police K-300001"
    assert german_left(sent.body_text) == []
