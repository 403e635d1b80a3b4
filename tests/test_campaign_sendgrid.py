"""Campaign and agent mails take the same send path as dunning mail (issue #17): the real sendgrid SDK
against the local fake (dev/fakes/server.py). A marketing mail carries the RFC 8058 one-click headers
and ids only in `custom_args`; SendGrid's signed events become the campaign step's events, once each,
and an unsubscribe or spam report suppresses the person and signals their workflows to end."""

from __future__ import annotations

import json
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
from temporalio.exceptions import ApplicationError

from activities.agency import AgencyActivities
from activities.campaign import CampaignActivities
from activities.messaging import Outbox
from dev.fakes.server import FakeProviders, sendgrid_event, sendgrid_webhook
from infra.config import Settings
from ledger.campaign import register_quote, suppress
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.agency import Escalate
from models.campaign import (
    EmailEvent,
    ExitKind,
    ExitSignal,
    SendCampaignMail,
    SendConfirmation,
    Suppression,
    SuppressionReason,
)
from models.campaign_requests import QuoteAbandonedIn
from models.ledger import Message
from models.providers import ProviderDelivery
from tests.apps import BothApps
from tests.conftest import seed_contract
from tests.providers_fakes import (
    CASE_ID,
    CONTRACT,
    PREMIUMS,
    FakeTemporal,
    engine,
    fake,
    migrated_ledger,
    provider_settings,
)
from web.deps import AppContext

__all__ = ["engine", "fake", "migrated_ledger"]  # fixtures, imported for pytest
EMAIL = "lena.kunde@example.org"
QUOTE = "Q-SG-1"
WORKFLOW = f"quote-{QUOTE}"


@dataclass
class Campaign:
    activities: CampaignActivities
    engine: Engine
    settings: Settings
    fake: FakeProviders
    person_key: str
    abandoned_at: datetime


@pytest.fixture
def campaign(engine: Engine, settings: Settings, fake: FakeProviders) -> Campaign:
    settings = provider_settings(settings, fake)
    abandoned_at = datetime.now(UTC) - timedelta(hours=1)
    body = QuoteAbandonedIn(
        quote_id=QUOTE,
        vehicle_age_years=6,
        yearly_mileage_km=12_000,
        email=EMAIL,
        opt_in=True,
        consent_text_version="dsgvo-2026-11",
        source_page="https://www.example-versicherung.de/kfz/rechner",
        abandoned_at=abandoned_at,
    )
    with session_scope(engine) as session:
        registered = register_quote(session, settings, body, abandoned_at)
    assert registered.input.person_key is not None
    return Campaign(
        CampaignActivities(engine, settings), engine, settings, fake, registered.input.person_key, abandoned_at
    )


def reminder(c: Campaign, step: str = "reminder-1") -> SendCampaignMail:
    now = datetime.now(UTC)
    return SendCampaignMail(
        key=f"{WORKFLOW}:{step}",
        workflow_id=WORKFLOW,
        step=step,
        kind="quote_reminder",
        person_key=c.person_key,
        quote_id=QUOTE,
        since=c.abandoned_at,
        reminder_number=1,
        due_at=now,
        now=now,
    )


def message(engine: Engine, key: str) -> Message:
    with session_scope(engine) as session:
        return session.exec(select(Message).where(Message.idempotency_key == key)).one()


def suppressions(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return sorted(s.reason for s in session.exec(select(Suppression)))


def test_a_reminder_reaches_sendgrid_with_rfc_8058_headers_tracking_and_ids_only(campaign: Campaign) -> None:
    result = campaign.activities.send_campaign_mail(reminder(campaign))

    assert result.sent
    (mail,) = campaign.fake.emails
    assert mail["personalizations"][0]["to"] == [{"email": EMAIL}]
    assert mail["custom_args"] == {"case_id": WORKFLOW, "step": "reminder-1"}  # ids only, no address
    unsubscribe = mail["headers"]["List-Unsubscribe"]
    assert unsubscribe.startswith("<http://testserver/campaign/unsubscribe/") and unsubscribe.endswith(">")
    assert mail["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe[1:-1] in mail["content"][0]["value"]  # the same link in the text
    # Opens and clicks feed the step's events; SendGrid's own unsubscribe footer stays off.
    assert mail["tracking_settings"] == {
        "click_tracking": {"enable": True, "enable_text": True},
        "open_tracking": {"enable": True},
        "subscription_tracking": {"enable": False},
    }
    stored = message(campaign.engine, f"{WORKFLOW}:reminder-1")
    assert (stored.status, stored.kind, stored.id) == ("sent", "quote_reminder", result.message_id)
    with session_scope(campaign.engine) as session:
        delivery = session.exec(select(ProviderDelivery)).one()
    assert (delivery.provider, delivery.status, delivery.contract_id) == ("sendgrid", "accepted", None)
    assert delivery.provider_message_id == mail["msg_id"]

    again = campaign.activities.send_campaign_mail(reminder(campaign))  # a late duplicate attempt

    assert again.sent and len(campaign.fake.emails) == 1


def test_the_confirmation_mail_has_no_tracking_and_no_unsubscribe_header(campaign: Campaign) -> None:
    request = SendConfirmation(quote_id=QUOTE, key=f"{WORKFLOW}:confirmation", now=datetime.now(UTC), retention_days=7)

    message_id = campaign.activities.send_confirmation(request)

    (mail,) = campaign.fake.emails
    assert mail["custom_args"] == {"case_id": WORKFLOW, "step": "confirmation"}
    assert "headers" not in mail  # not advertising: no list headers
    assert mail["tracking_settings"]["open_tracking"] == {"enable": False}
    assert mail["tracking_settings"]["click_tracking"] == {"enable": False, "enable_text": False}
    assert message(campaign.engine, f"{WORKFLOW}:confirmation").id == message_id


def test_a_retry_after_sendgrid_accepted_but_the_answer_was_lost_sends_once(campaign: Campaign) -> None:
    campaign.fake.fail_next("sendgrid", 502, after_work=True)

    with pytest.raises(ApplicationError) as first:
        campaign.activities.send_campaign_mail(reminder(campaign))
    assert not first.value.non_retryable
    assert message(campaign.engine, f"{WORKFLOW}:reminder-1").status == "queued"

    assert campaign.activities.send_campaign_mail(reminder(campaign)).sent  # Temporal's retry

    assert len(campaign.fake.emails) == 1
    assert message(campaign.engine, f"{WORKFLOW}:reminder-1").status == "sent"


def test_a_mail_not_yet_handed_over_is_withheld_when_the_person_unsubscribed_meanwhile(campaign: Campaign) -> None:
    campaign.fake.fail_next("sendgrid", 503)
    with pytest.raises(ApplicationError):
        campaign.activities.send_campaign_mail(reminder(campaign))
    with session_scope(campaign.engine) as session:
        suppress(session, campaign.person_key, SuppressionReason.UNSUBSCRIBE, datetime.now(UTC))

    result = campaign.activities.send_campaign_mail(reminder(campaign))

    assert not result.sent and result.blocked_by is not None and result.blocked_by.kind == ExitKind.UNSUBSCRIBE
    assert campaign.fake.emails == []
    assert message(campaign.engine, f"{WORKFLOW}:reminder-1").status == "withheld"


def test_an_address_sendgrid_refuses_ends_the_sequence_like_a_bounce(campaign: Campaign) -> None:
    campaign.fake.fail_next(
        "sendgrid", 400, message="Does not contain a valid address.", field_name="personalizations.0.to.0.email"
    )

    result = campaign.activities.send_campaign_mail(reminder(campaign))

    assert not result.sent and result.blocked_by is not None and result.blocked_by.kind == ExitKind.BOUNCE
    assert suppressions(campaign.engine) == ["bounce"]
    assert message(campaign.engine, f"{WORKFLOW}:reminder-1").status == "failed"


def test_the_embedded_default_keeps_campaign_mail_in_the_outbox(engine: Engine, settings: Settings) -> None:
    abandoned_at = datetime.now(UTC) - timedelta(hours=1)
    body = QuoteAbandonedIn(
        quote_id=QUOTE,
        email=EMAIL,
        opt_in=True,
        consent_text_version="v1",
        source_page="https://www.example-versicherung.de/kfz/rechner",
        abandoned_at=abandoned_at,
    )
    with session_scope(engine) as session:
        person_key = register_quote(session, settings, body, abandoned_at).input.person_key
    assert person_key is not None
    activities = CampaignActivities(engine, settings)
    c = Campaign(activities, engine, settings, FakeProviders(), person_key, abandoned_at)

    assert activities.send_campaign_mail(reminder(c)).sent

    stored = message(engine, f"{WORKFLOW}:reminder-1")
    assert stored.status == "sent" and stored.sent_at is not None
    with session_scope(engine) as session:
        assert session.exec(select(ProviderDelivery)).first() is None


def test_a_supervisor_escalation_goes_through_sendgrid_without_tracking(
    engine: Engine, settings: Settings, fake: FakeProviders
) -> None:
    seed_contract(engine, CONTRACT, premiums=PREMIUMS)
    settings = provider_settings(settings, fake)
    agency = AgencyActivities(engine, Outbox(engine, settings), settings)
    request = Escalate(
        case_id=CASE_ID,
        contract_number=CONTRACT,
        task_id=1,
        agent_code="A-7",
        supervisor_code="A-7",
        reason="contact deadline missed",
        now=datetime.now(UTC),
        key=f"{CASE_ID}:escalation",
    )

    agency.escalate(request)
    agency.escalate(request)  # a retry sends nothing twice

    (mail,) = fake.emails
    assert mail["personalizations"][0]["to"] == [{"email": "max.agent@example.org"}]
    assert mail["custom_args"] == {"case_id": CASE_ID, "step": "escalation"}
    assert mail["tracking_settings"]["click_tracking"] == {"enable": False, "enable_text": False}
    assert "headers" not in mail
    assert message(engine, f"{CASE_ID}:escalation").status == "sent"


# --- SendGrid's events feed the campaign -----------------------------------------------------------


@dataclass
class Web:
    http: httpx.AsyncClient
    temporal: FakeTemporal


@pytest_asyncio.fixture
async def web(campaign: Campaign) -> AsyncIterator[Web]:
    temporal = FakeTemporal()
    client = cast(Client, temporal)
    ctx = AppContext(campaign.engine, client, campaign.settings, Inbound(campaign.engine, client, campaign.settings))
    app = BothApps(ctx)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        yield Web(http, temporal)


async def post(web: Web, events: list[dict[str, Any]]) -> dict[str, Any]:
    body, headers = sendgrid_webhook(events)
    response = await web.http.post("/webhooks/sendgrid", content=body, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def step_events(engine: Engine) -> list[tuple[str, str, str]]:
    with session_scope(engine) as session:
        return sorted((e.workflow_id, e.step, e.event) for e in session.exec(select(EmailEvent)))


async def test_signed_events_are_the_step_s_events_once_and_an_unsubscribe_ends_the_campaign(
    campaign: Campaign, web: Web
) -> None:
    campaign.activities.send_campaign_mail(reminder(campaign))
    (mail,) = campaign.fake.emails
    opened, clicked = sendgrid_event(mail, "open"), sendgrid_event(mail, "click", url="http://testserver/x")

    first = await post(web, [sendgrid_event(mail, "delivered"), opened, clicked])
    again = await post(web, [opened, clicked])

    assert first == {"processed": 3, "duplicates": 0, "ignored": 0}
    assert again == {"processed": 0, "duplicates": 2, "ignored": 0}
    assert step_events(campaign.engine) == [
        (WORKFLOW, "reminder-1", "click"),
        (WORKFLOW, "reminder-1", "delivered"),
        (WORKFLOW, "reminder-1", "open"),
    ]
    assert message(campaign.engine, f"{WORKFLOW}:reminder-1").status == "delivered"
    assert web.temporal.signals == [] and suppressions(campaign.engine) == []

    await post(web, [sendgrid_event(mail, "unsubscribe")])

    assert suppressions(campaign.engine) == ["unsubscribe"]
    ((workflow_id, signal, argument),) = web.temporal.signals
    assert (workflow_id, signal) == (WORKFLOW, "exit_sequence")
    assert isinstance(argument, ExitSignal) and argument.kind == ExitKind.UNSUBSCRIBE
    assert (WORKFLOW, "reminder-1", "unsubscribe") in step_events(campaign.engine)


async def test_a_spam_report_suppresses_the_person_and_marks_the_mail_failed(campaign: Campaign, web: Web) -> None:
    campaign.activities.send_campaign_mail(reminder(campaign))
    (mail,) = campaign.fake.emails

    await post(web, [sendgrid_event(mail, "spamreport")])

    assert suppressions(campaign.engine) == ["spam_report"]
    assert [(s[1], s[2].kind) for s in web.temporal.signals] == [("exit_sequence", ExitKind.SPAM_REPORT)]
    assert message(campaign.engine, f"{WORKFLOW}:reminder-1").status == "failed"


async def test_a_forged_unsubscribe_event_changes_nothing(campaign: Campaign, web: Web) -> None:
    campaign.activities.send_campaign_mail(reminder(campaign))
    (mail,) = campaign.fake.emails
    body, headers = sendgrid_webhook([sendgrid_event(mail, "unsubscribe")])
    body = json.dumps([sendgrid_event(mail, "unsubscribe", sg_event_id="other")]).encode()  # not what was signed

    response = await web.http.post("/webhooks/sendgrid", content=body, headers=headers)

    assert response.status_code == 400
    assert suppressions(campaign.engine) == [] and web.temporal.signals == []
    assert step_events(campaign.engine) == []


async def test_the_list_unsubscribe_url_unsubscribes_with_one_cookie_less_post(campaign: Campaign, web: Web) -> None:
    campaign.activities.send_campaign_mail(reminder(campaign))
    url = campaign.fake.emails[0]["headers"]["List-Unsubscribe"][1:-1]

    response = await web.http.post(
        url.removeprefix("http://testserver"),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 200 and not response.is_redirect
    assert suppressions(campaign.engine) == ["unsubscribe"]
    assert [s[:2] for s in web.temporal.signals] == [(WORKFLOW, "exit_sequence")]
