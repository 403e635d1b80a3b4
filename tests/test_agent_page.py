"""The agent page through the real FastAPI app, with the real AgentHandover workflow behind it on the
time-skipping server: sign in with an agent account, see the task, log an attempt, record a promise."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest_asyncio
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.agency import notes_for_case
from infra.config import Settings
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.agency import HandoverState
from models.case import CaseStage, HoldKind
from tests.apps import BothApps
from tests.helpers import advance_until, berlin_today, form_post, messages
from tests.test_handover import (
    CONTRACT,
    agency_plan,
    end_case_and_children,
    handover_status,
    seed_agency,
    start_case,
    until_handover,
)
from web.auth import accounts
from web.deps import AppContext

BERLIN = ZoneInfo("Europe/Berlin")


@pytest_asyncio.fixture
async def children_cleanup(time_env: WorkflowEnvironment, worker: Worker) -> AsyncIterator[list[str]]:
    ids: list[str] = []
    yield ids
    await end_case_and_children(time_env, ids)


@pytest_asyncio.fixture
async def browser(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    web_settings = settings.model_copy(update={"public_base_url": "http://testserver"})
    client = time_env.client
    app = BothApps(AppContext(engine, client, web_settings, Inbound(engine, client, web_settings)), who="real")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        yield http


async def test_an_agent_signs_in_logs_an_attempt_and_records_a_promise(
    time_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    browser: httpx.AsyncClient,
    children_cleanup: list[str],
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_agency(engine, today - timedelta(days=1), cents=20_000)
    case = await start_case(time_env, worker.task_queue, agency_plan())
    workflow_id, data = await until_handover(time_env, case)
    children_cleanup.append(workflow_id)
    with session_scope(engine) as session:
        password = accounts.add_staff(session, "agent-a7", ["agent"], "test", agent_code="A-7")
        buddy_password = accounts.add_staff(session, "agent-a8", ["agent"], "test", agent_code="A-8")

    # The agent follows the link in the handover e-mail and is asked to sign in first.
    mail = [m for m in messages(engine, CONTRACT) if m.kind == "agent_handover"][0]
    link = re.search(r"https?://[^/\s]+(/agents/tasks/\d+)", mail.body_text)
    assert link is not None and link.group(1) == f"/agents/tasks/{data.task_id}"
    page = await browser.get(link.group(1))
    assert page.status_code == 303 and page.headers["location"].startswith("/sign-in?next=/agents/tasks/")
    sign_in = page.headers["location"]
    bad = await form_post(browser, sign_in, "/sign-in", {"name": "agent-a7", "password": "wrong"})
    assert bad.status_code == 401 and "wrong" in bad.text
    signed = await form_post(browser, sign_in, "/sign-in", {"name": "agent-a7", "password": password})
    assert signed.status_code == 303 and signed.headers["location"] == link.group(1)

    listing = await browser.get("/agents")
    assert listing.status_code == 200 and CONTRACT in listing.text and f"Task {data.task_id}" in listing.text
    task_page = await browser.get(link.group(1))
    assert task_page.status_code == 200
    assert "Erika Mustermann" in task_page.text and "+4915112345678" in task_page.text
    assert "200,00" in task_page.text  # the case in brief: what is open now

    # Log a failed call: the attempt reaches the workflow and the customer notes.
    task = link.group(1)
    logged = await form_post(browser, task, f"{task}/attempts", {"reached": "no", "channel": "call", "note": "mailbox"})
    assert logged.status_code == 303
    status = await handover_status(time_env, workflow_id)
    assert [(a.reached, a.by, a.note) for a in status.attempts] == [(False, "A-7", "mailbox")]
    assert status.state == HandoverState.CONTACTING and status.sla_met

    # A promise with a date in the past is rejected by the workflow's validator: nothing changes.
    yesterday = (await time_env.get_current_time()).astimezone(BERLIN).date() - timedelta(days=1)
    rejected = await form_post(browser, task, f"{task}/outcome", {"kind": "promise_to_pay", "pay_by": str(yesterday)})
    assert rejected.status_code == 422 and "pay_by must be between" in rejected.text
    garbled = await form_post(browser, task, f"{task}/outcome", {"kind": "promise_to_pay", "pay_by": "next week"})
    assert garbled.status_code == 422 and "must be a date" in garbled.text
    assert (await handover_status(time_env, workflow_id)).outcome is None

    # Reached on the second call; the customer promises to pay in ten days.
    await form_post(browser, task, f"{task}/attempts", {"reached": "yes", "channel": "call"})
    pay_by = yesterday + timedelta(days=11)
    recorded = await form_post(
        browser, task, f"{task}/outcome", {"kind": "promise_to_pay", "pay_by": str(pay_by), "note": "after payday"}
    )
    assert recorded.status_code == 303
    current = await advance_until(time_env, case, lambda s: s.hold is not None, step=timedelta(minutes=5))
    assert current.hold is not None and current.hold.kind == HoldKind.PROMISE and current.hold.set_by == "agent A-7"
    assert current.stage == CaseStage.AGENCY
    with session_scope(engine) as session:
        notes = [(n.kind, n.author) for n in notes_for_case(session, data.case_id)]
    assert notes[-3:] == [("call", "A-7"), ("contact", "A-7"), ("outcome", "A-7")]
    assert "No open tasks" in (await browser.get("/agents")).text  # the task is done

    # The buddy cannot open someone else's task.
    browser.cookies.clear()
    await form_post(browser, "/sign-in?next=/agents", "/sign-in", {"name": "agent-a8", "password": buddy_password})
    foreign = await browser.get(link.group(1))
    assert foreign.status_code == 404 and "not one of yours" in foreign.text
