"""Issue #17 end to end on the time-skipping server, with SendGrid switched on (the real sendgrid SDK
against the local fake): a confirmed quote's reminder reaches the fake with the RFC 8058 headers, and a
signed unsubscribe event from the fake, posted to the public webhook, ends the running campaign."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from dev.fakes.server import FakeProviders, environment, sendgrid_event, sendgrid_webhook
from infra.config import Settings
from ledger.db import session_scope
from ledger.inbound import Inbound
from models import inputs
from models.campaign import CampaignQuote, CampaignStage, ExitKind, PersonWorkflow
from tests.apps import BothApps
from tests.providers_fakes import fake
from tests.test_campaign_flows import abandon, advance_until, confirm, end_all, finish, new_email, quote_id_with
from web.deps import AppContext

__all__ = ["fake"]  # fixture, imported for pytest


@pytest.fixture
def settings(tmp_path: Path, fake: FakeProviders) -> Settings:
    """The worker and the apps with SendGrid (and the other real providers) pointed at the fakes."""
    values: dict[str, Any] = {key.lower(): value for key, value in environment(fake.base_url).items()}
    return Settings(
        data_dir=tmp_path,
        task_queue=f"tq-{uuid.uuid4().hex[:8]}",
        public_base_url="http://test.invalid",
        **values,
    )


@pytest_asyncio.fixture
async def api(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setattr(inputs, "CLOCK_SKEW", timedelta(days=100 * 366))  # the server's clock runs ahead
    ctx = AppContext(engine, time_env.client, settings, Inbound(engine, time_env.client, settings))
    app = BothApps(ctx)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            yield http
    with session_scope(engine) as session:
        ids = {row.workflow_id for row in session.exec(select(PersonWorkflow))}
        ids |= {row.workflow_id for row in session.exec(select(CampaignQuote))}
    await end_all(time_env, sorted(ids))


async def test_a_reminder_reaches_sendgrid_and_a_signed_unsubscribe_event_ends_the_campaign(
    api: httpx.AsyncClient, time_env: WorkflowEnvironment, engine: Engine, fake: FakeProviders
) -> None:
    quote_id, email = quote_id_with(holdout="treated"), new_email()
    await abandon(api, time_env, quote_id, email)
    await confirm(api, engine, quote_id, time_env)  # the link from the confirmation mail SendGrid got
    confirmation = fake.emails[0]
    assert confirmation["custom_args"] == {"case_id": f"quote-{quote_id}", "step": "confirmation"}

    await advance_until(time_env, quote_id, lambda v: len(v.mails) == 1)

    reminder = fake.emails[-1]
    assert reminder["custom_args"] == {"case_id": f"quote-{quote_id}", "step": "reminder-1"}
    assert reminder["personalizations"][0]["to"] == [{"email": email}]
    assert reminder["headers"]["List-Unsubscribe"].startswith("<http://test.invalid/campaign/unsubscribe/")
    assert reminder["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    body, headers = sendgrid_webhook([sendgrid_event(reminder, "open"), sendgrid_event(reminder, "unsubscribe")])
    response = await api.post("/webhooks/sendgrid", content=body, headers=headers)
    assert response.status_code == 200 and response.json()["processed"] == 2

    view = await finish(time_env, quote_id)

    assert view.stage == CampaignStage.EXITED
    assert view.exit is not None and view.exit.kind == ExitKind.UNSUBSCRIBE
    assert [m.step for m in view.mails] == ["reminder-1"]  # reminder-2 never went out
    assert len(fake.emails) == 2
