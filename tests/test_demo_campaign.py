"""`make run`'s campaign demo (issue #17, dev/demo_campaign.py) on the time-skipping server with the demo
plan: the quotes go through the real inbound path, the confirmation link waits in the outbox, reminders
move within minutes, one quote converts by a phone touchpoint, the report counts them once the windows
have closed, and seeding again changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.campaign import campaign_report
from core.campaign import DEMO_PLAN
from dev.demo_campaign import CONVERTING, QUOTES, seed_campaign
from infra.config import Settings
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.campaign import CampaignEmail, CampaignStage, ExitKind, QuoteStatusView
from models.ledger import Message
from web.deps import AppContext
from workflows.campaign import QuoteReactivation


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        task_queue=f"tq-{uuid.uuid4().hex[:8]}",
        public_base_url="http://test.invalid",
        campaign_plan="demo",
    )


async def view(env: WorkflowEnvironment, quote_id: str) -> QuoteStatusView:
    handle = env.client.get_workflow_handle_for(QuoteReactivation.run, f"quote-{quote_id}")
    return await handle.query(QuoteReactivation.status)


def mails(engine: Engine) -> list[tuple[str, str]]:
    with session_scope(engine) as session:
        return [(m.workflow_id, m.step) for m in session.exec(select(CampaignEmail).order_by(col(CampaignEmail.id)))]


async def test_the_demo_campaign_moves_converts_and_fills_the_report(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    ctx = AppContext(engine, time_env.client, settings, Inbound(engine, time_env.client, settings))
    lines: list[str] = []

    async def skip(_: float) -> None:
        await time_env.sleep(timedelta(seconds=20))

    await seed_campaign(ctx, sleep=skip, say=lines.append)

    assert any(f"{CONVERTING} converted by phone" in line for line in lines), lines
    with session_scope(engine) as session:
        link = session.exec(select(Message).where(Message.idempotency_key == "quote-Q-DEMO-3:confirmation")).one()
    assert "http://test.invalid/campaign/confirm/" in link.body_text  # waiting for the newcomer's click
    assert (await view(time_env, "Q-DEMO-3")).stage == CampaignStage.AWAITING_CONFIRMATION
    assert (await view(time_env, "Q-DEMO-5")).stage == CampaignStage.NO_CONSENT
    converted = await view(time_env, CONVERTING)
    assert converted.stage == CampaignStage.EXITED and converted.exit is not None
    assert (converted.exit.kind, converted.exit.detail) == (ExitKind.TOUCHPOINT, "contract_signed")
    assert [m.step for m in converted.mails] == ["reminder-1"]
    onboarding = await time_env.client.get_workflow_handle("onboarding-K-DEMO-2").describe()
    assert onboarding.status in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED)

    # The demo plan's windows are minutes: let every quote run to its end.
    for quote in QUOTES:
        handle = time_env.client.get_workflow_handle(f"quote-{quote.quote_id}")
        for _ in range(120):
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                break
            await time_env.sleep(timedelta(minutes=1))
    assert (await view(time_env, "Q-DEMO-1")).stage == CampaignStage.FINISHED
    steps = mails(engine)
    for quote_id in ("Q-DEMO-1", "Q-DEMO-4"):
        assert [s for w, s in steps if w == f"quote-{quote_id}"] == ["confirmation", "reminder-1", "reminder-2"]
    assert [s for w, s in steps if w == "quote-Q-DEMO-6"] == ["confirmation"]  # holdout: no reminder
    assert (await view(time_env, "Q-DEMO-3")).stage == CampaignStage.PURGED  # nobody clicked

    as_of = (await time_env.get_current_time()).astimezone(UTC)
    holdout, wait_times, _ = campaign_report(engine, DEMO_PLAN, as_of)
    assert {a.arm: (a.quotes, a.conversions, a.pending) for a in holdout.arms} == {
        "holdout": (1, 0, 0),
        "treated": (3, 1, 0),
    }
    assert {a.arm: (a.quotes, a.conversions) for a in wait_times.arms} == {"short": (2, 1), "long": (1, 0)}

    before = len(steps)
    await seed_campaign(ctx, sleep=skip, say=lines.append)  # `make run` again: resumes, changes nothing

    assert len(mails(engine)) == before
    assert (await view(time_env, CONVERTING)).stage == CampaignStage.EXITED


def test_the_demo_plan_has_no_quiet_hours_and_is_refused_in_production() -> None:
    from datetime import datetime

    from core.campaign import DEFAULT_PLAN, may_send_at
    from infra.config import production_problems

    sunday_night = datetime(2026, 11, 29, 22, 30, tzinfo=UTC)  # 23:30 in Berlin, a Sunday
    assert may_send_at(sunday_night, frozenset(), DEMO_PLAN)
    assert not may_send_at(sunday_night, frozenset(), DEFAULT_PLAN)
    assert any(p.startswith("CAMPAIGN_PLAN=demo") for p in production_problems(Settings(campaign_plan="demo")))
    assert not any("CAMPAIGN_PLAN" in p for p in production_problems(Settings()))
