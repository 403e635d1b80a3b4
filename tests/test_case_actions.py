"""Staff act on a case from the contract page (issue #12): signed in for real, the policy table
decides who may do what, the signed-in person (not a typed name) is the update's `by`, and every
accepted action is in the audit trail. Time-skipping server with the real worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest_asyncio
from sqlalchemy import Engine, func
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.config import Settings
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.auth import AuditEvent
from models.case import CaseStage, HoldKind
from tests.apps import BothApps
from tests.conftest import seed_contract
from tests.helpers import berlin_today, form_post, hidden_fields, open_case, status
from web.auth import accounts
from web.deps import AppContext

CONTRACT = "K-100001"


@pytest_asyncio.fixture
async def apps(time_env: WorkflowEnvironment, engine: Engine, settings: Settings) -> AsyncIterator[BothApps]:
    yield BothApps(
        AppContext(engine, time_env.client, settings, Inbound(engine, time_env.client, settings)), who="real"
    )


async def signed_in(apps: BothApps, engine: Engine, name: str, role: str) -> httpx.AsyncClient:
    with session_scope(engine) as session:
        password = accounts.add_staff(session, name, [role], "test")
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=apps), base_url="http://test")
    response = await form_post(client, "/sign-in", "/sign-in", {"name": name, "password": password})
    assert response.status_code == 303, response.text
    return client


def audit_rows(engine: Engine) -> list[AuditEvent]:
    with session_scope(engine) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.contract_number == CONTRACT)))


def audit_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.exec(select(func.count()).select_from(AuditEvent)).one())


async def test_a_clerk_holds_a_case_under_their_own_name_and_is_refused_a_write_off(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, apps: BothApps
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today, 12_000)])
    handle = await open_case(time_env, worker.task_queue, CONTRACT, "P-1")
    clerk = await signed_in(apps, engine, "mia", "clerk")
    page = f"/contracts/{CONTRACT}"
    with session_scope(engine) as session:  # the sign-in is filed under the person who signed in
        sign_ins = session.exec(select(AuditEvent).where(AuditEvent.action == "POST /sign-in")).all()
    assert [(e.actor_kind, e.actor, e.via) for e in sign_ins] == [("person", "mia", "password")]

    # The form has no "by" field; a forged one is ignored: the session says who it is.
    until = (today + timedelta(days=10)).isoformat()
    held = await form_post(clerk, page, f"{page}/case/hold", {"until": until, "reason": "in hospital", "by": "boss"})
    assert held.status_code == 303 and held.headers["location"] == f"{page}?done=hold"
    case = await status(handle)
    assert case.hold is not None and case.hold.kind == HoldKind.HOLD and case.hold.set_by == "mia"
    [row] = audit_rows(engine)
    assert (row.actor_kind, row.actor, row.via) == ("person", "mia", "session")
    assert row.action == "POST /contracts/{contract_number}/case/hold"
    assert row.detail["case_action"] == "hold" and row.detail["reason"] == "in hospital"
    shown = await clerk.get(page)
    assert "in hospital" in shown.text and "Audit trail" in shown.text and "mia" in shown.text
    assert "Supervisor decisions" not in shown.text  # not offered to a clerk ...

    # ... and refused when posted anyway: 403, nothing sent to the case, nothing in the trail.
    before = audit_count(engine)
    token = hidden_fields((await clerk.get(page)).text, f"{page}/case/hold")  # a valid CSRF token of the page
    refused = await clerk.post(f"{page}/case/write-off", data={**token, "reason": "give up"})
    assert refused.status_code == 403 and "supervisor" in refused.text
    assert (await status(handle)).stage == case.stage and audit_count(engine) == before

    # Bad input is named and changes nothing.
    bad = await form_post(clerk, page, f"{page}/case/hold", {"until": "next week", "reason": "x"})
    assert bad.status_code == 422 and "is not a date" in bad.text
    assert audit_count(engine) == before
    await clerk.aclose()


async def test_a_supervisor_writes_off_and_a_viewer_may_only_look(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, apps: BothApps
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today, 12_000)])
    handle = await open_case(time_env, worker.task_queue, CONTRACT, "P-1")
    viewer = await signed_in(apps, engine, "vic", "viewer")
    page = f"/contracts/{CONTRACT}"
    shown = await viewer.get(page)
    assert shown.status_code == 200 and "Case actions" not in shown.text
    token = hidden_fields(shown.text, "/sign-out")
    forged = await viewer.post(f"{page}/case/hold", data={**token, "until": today.isoformat(), "reason": "x"})
    assert forged.status_code == 403

    boss = await signed_in(apps, engine, "sam", "supervisor")
    done = await form_post(boss, page, f"{page}/case/write-off", {"reason": "estate without assets"})
    assert done.status_code == 303, done.text
    result = await handle.result()
    assert result.stage == CaseStage.WRITTEN_OFF
    assert [(r.actor, r.detail["case_action"]) for r in audit_rows(engine)] == [("sam", "write-off")]
    await viewer.aclose()
    await boss.aclose()


async def test_reading_through_the_codec_leaves_no_trail_row(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings
) -> None:
    """The Temporal UI decodes dozens of payloads per page: reads, not changes (POST by protocol)."""
    client = time_env.client
    apps = BothApps(AppContext(engine, client, settings, Inbound(engine, client, settings)))  # signed-in staff
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=apps), base_url="http://test") as http:
        decoded = await http.post("/codec/decode", json={"payloads": []})
        changed = await http.put(
            f"/api/contracts/{CONTRACT}", json={"customer": {"customer_number": "C-1", "name": "E"}}
        )
    assert decoded.status_code == 200 and changed.status_code == 200, (decoded.text, changed.text)
    with session_scope(engine) as session:
        actions = [e.action for e in session.exec(select(AuditEvent))]
    assert actions == ["PUT /api/contracts/{contract_number}"]
