"""Provider paths through real workflows on the Temporal time-skipping server.

- Fallback: an SMS goes out through Twilio (real SDK, local fake), Twilio reports the number
  undeliverable, the signed callback marks the number invalid and starts ChannelFallback, which
  sends the same step as a letter.
- Refund: a case paid through a Stripe webhook completes; the refund re-opens the amount in the
  ledger and dunning starts again for it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.messaging import Outbox
from dev.fakes.server import FakeProviders, stripe_signature, twilio_signature
from infra.config import Settings
from infra.runtime import build_worker
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.activities import SentMessage
from models.case import CaseStage, CaseStatus
from models.ledger import Customer, Message
from models.messages import Channel, MessageKind
from tests.apps import BothApps
from tests.conftest import seed_contract
from tests.helpers import advance_until
from tests.providers_fakes import (
    CASE_ID,
    CONTRACT,
    PREMIUMS,
    engine,
    fake,
    migrated_ledger,
    provider_settings,
    send_request,
)
from web.deps import AppContext

__all__ = ["engine", "fake", "migrated_ledger"]  # fixtures, imported for pytest


@pytest_asyncio.fixture
async def provider_worker(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings, fake: FakeProviders
) -> AsyncIterator[tuple[Worker, Settings]]:
    configured = provider_settings(settings, fake)
    with ThreadPoolExecutor(max_workers=16) as executor:
        worker = build_worker(time_env.client, engine, configured, executor)
        async with worker:
            yield worker, configured


async def test_an_undeliverable_sms_is_sent_again_as_a_letter(
    time_env: WorkflowEnvironment, engine: Engine, fake: FakeProviders, provider_worker: tuple[Worker, Settings]
) -> None:
    _, settings = provider_worker
    seed_contract(engine, CONTRACT, premiums=PREMIUMS)
    Outbox(engine, settings).send_message(send_request(MessageKind.PAY_LINK_SMS, [Channel.SMS], "pay_link_sms"))
    params = {"MessageSid": str(fake.sms[0]["sid"]), "MessageStatus": "undelivered", "ErrorCode": "30006"}
    signature = twilio_signature("http://testserver/webhooks/twilio/status", params)
    app = BothApps(AppContext(engine, time_env.client, settings, Inbound(engine, time_env.client, settings)))

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        response = await http.post("/webhooks/twilio/status", data=params, headers={"X-Twilio-Signature": signature})
        repeated = await http.post("/webhooks/twilio/status", data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200 and repeated.json()["duplicate"] is True
    workflow_id = str(response.json()["fallback"])

    handle = time_env.client.get_workflow_handle(workflow_id, result_type=SentMessage)
    result = await handle.result()

    assert result is not None and result.channel == Channel.LETTER and result.total_cents == 17_050
    assert len(fake.sms) == 1  # the SMS was not tried again
    with session_scope(engine) as session:
        assert not session.exec(select(Customer)).one().phone_valid
        messages = {m.idempotency_key: m for m in session.exec(select(Message))}
    assert messages[f"{CASE_ID}:pay_link_sms:sms"].status == "failed"
    letter = messages[f"{CASE_ID}:pay_link_sms:letter"]
    assert letter.status == "sent" and letter.pdf is not None and letter.total_cents == 17_050


def paid_event(cents: int) -> dict[str, object]:
    session = {
        "id": "cs_1",
        "amount_total": cents,
        "currency": "eur",
        "payment_status": "paid",
        "payment_intent": "pi_1",
        "metadata": {"case_id": CASE_ID, "contract_number": CONTRACT},
    }
    return {"id": "evt_paid", "type": "checkout.session.completed", "data": {"object": session}}


def refund_event(cents: int) -> dict[str, object]:
    charge = {"id": "ch_1", "payment_intent": "pi_1", "amount": cents, "amount_refunded": cents}
    return {"id": "evt_refund", "type": "charge.refunded", "data": {"object": charge}}


async def test_a_refund_reopens_a_paid_case_and_dunning_starts_again(
    time_env: WorkflowEnvironment, engine: Engine, fake: FakeProviders, provider_worker: tuple[Worker, Settings]
) -> None:
    _, settings = provider_worker
    seed_contract(engine, CONTRACT, premiums=PREMIUMS)
    inbound = Inbound(engine, time_env.client, settings)
    app = BothApps(AppContext(engine, time_env.client, settings, inbound))

    async def post(http: httpx.AsyncClient, event: dict[str, object]) -> httpx.Response:
        body = json.dumps(event).encode()
        return await http.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": stripe_signature(body)})

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        workflow_id = await inbound.open_case(CONTRACT, "P-1")
        await inbound.open_case(CONTRACT, "P-2")
        first = time_env.client.get_workflow_handle(workflow_id, result_type=CaseStatus)
        # P-1 is 40 days overdue: reminder and notice (with its letter fee) go out within days.
        dunned = await advance_until(
            time_env, first, lambda s: len(s.steps_done) >= 2, step=timedelta(hours=1), limit=timedelta(days=10)
        )
        owed = dunned.balance_cents
        assert owed > 17_050  # premiums + the notice's fee
        assert (await post(http, paid_event(owed))).json()["booked"] is True
        closed = await first.result()
        assert closed.stage == CaseStage.PAID and closed.balance_cents == 0

        reopened = (await post(http, refund_event(owed))).json()

    assert sorted(reopened["reopened"]) == ["P-1", "P-2"] and reopened["case"] == workflow_id
    again = time_env.client.get_workflow_handle(workflow_id, result_type=CaseStatus)
    current = await advance_until(
        time_env,
        again,
        lambda s: s.balance_cents >= owed and not s.closed,  # (the new case may book its own notice fee)
        step=timedelta(hours=1),
        limit=timedelta(days=2),
    )
    assert current.case_id != closed.case_id  # a new case run for the re-opened amount
    assert {item.premium_id for item in current.items} == {"P-1", "P-2"}
