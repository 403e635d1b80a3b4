"""Delivery webhooks: Twilio status callbacks (RequestValidator) and SendGrid signed events
(ECDSA + replay window). Forged, stale and duplicate callbacks change nothing; an undeliverable
number or a bounced address marks the contact invalid and starts the channel fallback."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.client import Client

from activities.messaging import Outbox
from dev.fakes.server import FakeProviders, sendgrid_sign, twilio_signature
from infra.config import Settings
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.activities import SendMessage
from models.ledger import Customer, Message
from models.messages import Channel, MessageKind
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
    send_request,
)
from web.deps import AppContext
from workflows.fallback import ChannelFallback

__all__ = ["engine", "fake", "migrated_ledger"]  # fixtures, imported for pytest
CALLBACK = "http://testserver/webhooks/twilio/status"


@dataclass
class Web:
    http: httpx.AsyncClient
    app: BothApps
    temporal: FakeTemporal
    engine: Engine
    settings: Settings
    fake: FakeProviders
    outbox: Outbox


@pytest_asyncio.fixture
async def web(engine: Engine, settings: Settings, fake: FakeProviders) -> AsyncIterator[Web]:
    seed_contract(engine, CONTRACT, premiums=PREMIUMS)
    settings = provider_settings(settings, fake)
    temporal = FakeTemporal()
    client = cast(Client, temporal)
    app = BothApps(AppContext(engine, client, settings, Inbound(engine, client, settings)))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        yield Web(http, app, temporal, engine, settings, fake, Outbox(engine, settings))


def customer(engine: Engine) -> Customer:
    with session_scope(engine) as session:
        return session.exec(select(Customer)).one()


def delivery(engine: Engine, channel: str) -> ProviderDelivery:
    with session_scope(engine) as session:
        return session.exec(select(ProviderDelivery).where(ProviderDelivery.channel == channel)).one()


def message_status(engine: Engine, channel: str) -> str:
    with session_scope(engine) as session:
        return session.exec(select(Message).where(Message.channel == channel)).one().status


# --- Twilio --------------------------------------------------------------------------------------


def send_sms(web: Web) -> str:
    web.outbox.send_message(send_request(MessageKind.PAY_LINK_SMS, [Channel.SMS], "pay_link_sms"))
    return str(web.fake.sms[0]["sid"])


async def twilio_callback(web: Web, params: dict[str, str], signature: str | None = None) -> httpx.Response:
    headers = {"X-Twilio-Signature": signature if signature is not None else twilio_signature(CALLBACK, params)}
    return await web.http.post("/webhooks/twilio/status", data=params, headers=headers)


async def test_twilio_delivered_callback_is_recorded(web: Web) -> None:
    sid = send_sms(web)

    response = await twilio_callback(web, {"MessageSid": sid, "MessageStatus": "delivered"})

    assert response.status_code == 200 and response.json()["changed"] is True
    assert delivery(web.engine, "sms").status == "delivered" and message_status(web.engine, "sms") == "delivered"
    assert web.temporal.started == []


async def test_an_undeliverable_number_is_marked_invalid_and_the_step_falls_back_once(web: Web) -> None:
    sid = send_sms(web)
    params = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30005"}

    first = await twilio_callback(web, params)
    again = await twilio_callback(web, params)

    assert first.json()["contact_invalidated"] is True
    assert again.json()["duplicate"] is True
    assert not customer(web.engine).phone_valid
    assert delivery(web.engine, "sms").error == "undelivered/30005" and message_status(web.engine, "sms") == "failed"
    (started,) = web.temporal.started
    assert started.workflow == ChannelFallback.run
    assert started.id == f"fallback-{CASE_ID}:pay_link_sms:sms"
    request = cast(SendMessage, started.arg)
    assert request.key == f"{CASE_ID}:pay_link_sms" and request.channels == [Channel.LETTER]


async def test_a_temporary_failure_falls_back_without_invalidating_the_number(web: Web) -> None:
    sid = send_sms(web)

    result = (await twilio_callback(web, {"MessageSid": sid, "MessageStatus": "failed", "ErrorCode": "30003"})).json()

    assert result["contact_invalidated"] is False and customer(web.engine).phone_valid
    assert len(web.temporal.started) == 1


@pytest.mark.parametrize("tamper", ["forged", "missing", "other field"])
async def test_forged_twilio_callbacks_change_nothing(web: Web, tamper: str) -> None:
    sid = send_sms(web)
    params = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30005"}
    signature = {
        "forged": twilio_signature(CALLBACK, params, token="not-the-auth-token"),
        "missing": "",
        "other field": twilio_signature(CALLBACK, {**params, "ErrorCode": "30003"}),
    }[tamper]

    response = await twilio_callback(web, params, signature)

    assert response.status_code == 403
    assert customer(web.engine).phone_valid and delivery(web.engine, "sms").status == "accepted"
    assert web.temporal.started == []


async def test_a_callback_for_an_unknown_message_is_acknowledged_and_ignored(web: Web) -> None:
    response = await twilio_callback(web, {"MessageSid": "SMunknown", "MessageStatus": "undelivered"})
    assert response.json() == {"ignored": True, "reason": "unknown message"}


# --- SendGrid ------------------------------------------------------------------------------------


def send_email(web: Web) -> str:
    web.outbox.send_message(send_request(MessageKind.REMINDER, [Channel.EMAIL, Channel.LETTER], "reminder"))
    return str(web.fake.emails[0]["msg_id"])


def sg_event(kind: str, event_id: str, msg_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": "erika@example.org",
        "event": kind,
        "sg_event_id": event_id,
        "sg_message_id": f"{msg_id}.filterdrecv-1",
        "timestamp": int(time.time()),
        "case_id": CASE_ID,
        "step": "reminder:email",
        **extra,
    }


async def post_events(
    web: Web,
    events: list[dict[str, Any]],
    *,
    timestamp: int | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> httpx.Response:
    body = json.dumps(events).encode()
    stamp = int(time.time()) if timestamp is None else timestamp
    signature = sendgrid_sign(body, stamp) if key is None else sendgrid_sign(body, stamp, key)
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": signature,
        "X-Twilio-Email-Event-Webhook-Timestamp": str(stamp),
    }
    return await web.http.post("/webhooks/sendgrid", content=body, headers=headers)


async def test_a_bounce_marks_the_address_invalid_and_the_reminder_falls_back_to_a_letter(web: Web) -> None:
    msg_id = send_email(web)

    first = await post_events(web, [sg_event("processed", "e1", msg_id), sg_event("bounce", "e2", msg_id)])
    again = await post_events(web, [sg_event("bounce", "e2", msg_id)])

    assert first.json() == {"processed": 1, "duplicates": 0, "ignored": 1}
    assert again.json() == {"processed": 0, "duplicates": 1, "ignored": 0}
    assert not customer(web.engine).email_valid
    (started,) = web.temporal.started
    assert cast(SendMessage, started.arg).channels == [Channel.LETTER]


async def test_a_spam_report_found_by_custom_args_marks_the_address_invalid(web: Web) -> None:
    send_email(web)
    event = sg_event("spamreport", "e1", "unknown-id")  # matched by case id + step instead

    assert (await post_events(web, [event])).json()["processed"] == 1
    assert not customer(web.engine).email_valid


async def test_delivered_email_is_recorded(web: Web) -> None:
    msg_id = send_email(web)
    await post_events(web, [sg_event("delivered", "e1", msg_id)])
    assert message_status(web.engine, "email") == "delivered" and customer(web.engine).email_valid


@pytest.mark.parametrize("tamper", ["other key", "altered body", "stale", "future", "no signature"])
async def test_forged_or_stale_sendgrid_events_change_nothing(web: Web, tamper: str) -> None:
    msg_id = send_email(web)
    events = [sg_event("bounce", "e1", msg_id)]
    if tamper == "other key":
        response = await post_events(web, events, key=ec.generate_private_key(ec.SECP256R1()))
    elif tamper == "stale":
        response = await post_events(web, events, timestamp=int(time.time()) - 301)
    elif tamper == "future":
        response = await post_events(web, events, timestamp=int(time.time()) + 301)
    else:
        body = json.dumps(events).encode()
        stamp = str(int(time.time()))
        headers = {"X-Twilio-Email-Event-Webhook-Timestamp": stamp}
        if tamper == "altered body":
            headers["X-Twilio-Email-Event-Webhook-Signature"] = sendgrid_sign(body, int(stamp))
            body = body.replace(b"bounce", b"bounc3")
        response = await web.http.post("/webhooks/sendgrid", content=body, headers=headers)

    assert response.status_code == 400
    assert customer(web.engine).email_valid and web.temporal.started == []
    assert (await post_events(web, events)).json()["processed"] == 1  # the genuine event still counts


async def test_a_notice_e_mail_delivered_by_sendgrid_is_proof_of_dispatch_and_delivery(web: Web) -> None:
    from ledger import evidence
    from models.plans import get_plan

    request = send_request(
        MessageKind.QUALIFIED_NOTICE, [Channel.EMAIL], "notice", notice_plan=get_plan("de-follow-up")
    )
    web.outbox.send_message(request)
    msg_id = str(web.fake.emails[0]["msg_id"])
    await post_events(web, [sg_event("delivered", "e-notice", msg_id)])
    with session_scope(web.engine) as session:
        proofs = evidence.notices(session, "K-100001")
    assert [(p.channel, p.proven) for p in proofs] == [("email", "delivered")]
    assert [(e.kind.value, e.source) for e in proofs[0].evidence] == [
        ("dispatched", "sendgrid"),
        ("delivered", "sendgrid"),
    ]
