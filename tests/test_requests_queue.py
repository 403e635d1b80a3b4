"""Customers' requests in the staff queues (issue #14), signed in for real: a clerk answers under their
own name and the customer reads the answer in the portal's thread; an agent sees and answers only
their own requests (another agent's is not found); the supervisors' overdue view lists an open
request past its due date; an attachment is served as a download. Time-skipping server, real worker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.agency import set_supervisor
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.activities import SweepRequest
from models.auth import AuditEvent
from models.ledger import Message
from models.portal import PortalUpload, RequestQueue, RequestStatus, ServiceRequest
from tests.apps import BothApps
from tests.helpers import berlin_today, form_post, hidden_fields, open_case, status
from tests.portal_support import make_pay_link, portal_client, portal_cookie, seed_portal_customer
from web.auth import accounts
from web.deps import AppContext
from workflows.sweep import LedgerSweep

CONTRACT = "K-100001"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@dataclass
class Portal:
    apps: BothApps
    customer: httpx.AsyncClient
    engine: Engine


@pytest_asyncio.fixture
async def portal(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> AsyncIterator[Portal]:
    """A customer in dunning (agent A-7) signed in to the portal, and both apps with real sign-in."""
    today = berlin_today(await time_env.get_current_time())
    customer_id = seed_portal_customer(engine, premiums=[("P-1", today, 12_000)])
    await status(await open_case(time_env, worker.task_queue, CONTRACT, "P-1"))
    _, token_id = make_pay_link(engine, settings, CONTRACT)
    apps = BothApps(
        AppContext(engine, time_env.client, settings, Inbound(engine, time_env.client, settings)), who="real"
    )
    async with portal_client(apps, portal_cookie(engine, customer_id, token_id, language="en")) as customer:
        yield Portal(apps, customer, engine)


async def signed_in(portal: Portal, name: str, role: str, agent_code: str | None = None) -> httpx.AsyncClient:
    with session_scope(portal.engine) as session:
        password = accounts.add_staff(session, name, [role], "test", agent_code=agent_code)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=portal.apps), base_url="http://test")
    response = await form_post(client, "/sign-in", "/sign-in", {"name": name, "password": password})
    assert response.status_code == 303, response.text
    return client


async def customer_writes(portal: Portal, topic: str, text: str) -> int:
    sent = await form_post(portal.customer, "/portal/messages", "/portal/messages", {"topic": topic, "text": text})
    assert sent.status_code == 303, sent.text
    return int(sent.headers["location"].rsplit("=", 1)[1])


def request_row(engine: Engine, request_id: int) -> ServiceRequest:
    with session_scope(engine) as session:
        row = session.get(ServiceRequest, request_id)
        assert row is not None
        return row


async def test_a_clerk_answers_under_their_own_name_and_the_customer_reads_it(portal: Portal) -> None:
    request_id = await customer_writes(portal, "payment", "Did my transfer of 120 EUR arrive?")
    assert request_row(portal.engine, request_id).queue == RequestQueue.FINANCE
    clerk = await signed_in(portal, "mia", "clerk")
    queue = await clerk.get("/requests?view=finance")
    assert queue.status_code == 200 and f'href="/requests/{request_id}"' in queue.text
    assert CONTRACT not in queue.text.replace(f"/contracts/{CONTRACT}", "")  # shown masked, linked in full
    assert 'href="/requests"' in (await clerk.get("/")).text  # the staff navigation leads there
    page = f"/requests/{request_id}"
    shown = await clerk.get(page)
    assert "Did my transfer of 120 EUR arrive?" in shown.text and f'href="/contracts/{CONTRACT}"' in shown.text

    empty = await form_post(clerk, page, f"{page}/answer", {"text": "   "})
    assert empty.status_code == 422 and "answer: write the answer" in empty.text
    assert request_row(portal.engine, request_id).status == RequestStatus.OPEN

    reply = "Yes, it arrived on Monday; nothing is open any more."
    answered = await form_post(clerk, page, f"{page}/answer", {"text": reply, "by": "boss"})  # a forged name
    assert answered.status_code == 303 and answered.headers["location"] == f"{page}?done=answer"
    row = request_row(portal.engine, request_id)
    assert (row.status, row.answer, row.handled_by) == (RequestStatus.ANSWERED, reply, "mia")
    thread = await portal.customer.get("/portal/messages")
    assert "Did my transfer of 120 EUR arrive?" in thread.text and reply in thread.text and "mia" in thread.text
    with session_scope(portal.engine) as session:
        [audited] = session.exec(
            select(AuditEvent).where(AuditEvent.action == "POST /requests/{request_id}/answer")
        ).all()
    assert (audited.actor, audited.contract_number, audited.detail["request_action"]) == ("mia", CONTRACT, "answer")

    closed = await form_post(clerk, page, f"{page}/done")
    assert closed.status_code == 303 and request_row(portal.engine, request_id).status == RequestStatus.DONE
    assert f'href="/requests/{request_id}"' not in (await clerk.get("/requests?view=finance")).text
    assert f'action="{page}/answer"' not in (await clerk.get(page)).text  # a closed request takes no answer
    await clerk.aclose()


async def test_an_agent_answers_their_own_request_and_cannot_open_another_agents(portal: Portal) -> None:
    request_id = await customer_writes(portal, "other", "Please call me about the reminder.")
    assert request_row(portal.engine, request_id).agent_code == "A-7"
    mine = await signed_in(portal, "agent-a7", "agent", "A-7")
    theirs = await signed_in(portal, "agent-a8", "agent", "A-8")

    listed = await mine.get("/agents")
    assert f'href="/agents/requests/{request_id}"' in listed.text
    assert f'href="/agents/requests/{request_id}"' not in (await theirs.get("/agents")).text
    page = f"/agents/requests/{request_id}"
    assert (await theirs.get(page)).status_code == 404
    assert (await theirs.get(f"/requests/{request_id}")).status_code == 403  # the back-office queues: not agents'
    token = hidden_fields((await theirs.get("/agents")).text, "/sign-out")  # a valid CSRF token of theirs
    forged = await theirs.post(f"{page}/answer", data={**token, "text": "Not mine to answer"})
    assert forged.status_code == 404
    assert request_row(portal.engine, request_id).status == RequestStatus.OPEN

    shown = await mine.get(page)
    assert shown.status_code == 200 and "Please call me about the reminder." in shown.text
    answered = await form_post(mine, page, f"{page}/answer", {"text": "I will call you at 5 pm today."})
    assert answered.status_code == 303, answered.text
    row = request_row(portal.engine, request_id)
    assert (row.status, row.handled_by) == (RequestStatus.ANSWERED, "agent-a7")
    assert "I will call you at 5 pm today." in (await portal.customer.get("/portal/messages")).text
    await mine.aclose()
    await theirs.aclose()


async def test_the_overdue_view_lists_an_unanswered_request_after_its_due_date(portal: Portal) -> None:
    request_id = await customer_writes(portal, "other", "Nobody has answered me.")
    boss = await signed_in(portal, "sam", "supervisor")
    link = f'href="/requests/{request_id}"'
    assert link not in (await boss.get("/requests?view=overdue")).text  # due tomorrow
    with session_scope(portal.engine) as session:  # the agent let the 24 hours pass
        row = session.get(ServiceRequest, request_id)
        assert row is not None
        row.due_at = datetime.now(UTC) - timedelta(hours=1)
        session.add(row)
    overdue = await boss.get("/requests?view=overdue")
    assert link in overdue.text and "OVERDUE" in overdue.text  # in words, not colour only
    assert "OVERDUE" in (await boss.get(f"/requests/{request_id}")).text
    await form_post(boss, f"/requests/{request_id}", f"/requests/{request_id}/answer", {"text": "Sorry, calling now."})
    assert link not in (await boss.get("/requests?view=overdue")).text  # answered: no longer overdue
    bad = await boss.get("/requests?view=everything")
    assert bad.status_code == 422 and "view must be one of clerk, finance, agent, overdue" in bad.text
    await boss.aclose()


async def test_an_attachment_is_served_as_a_download_with_its_type(portal: Portal) -> None:
    request_id = await customer_writes(portal, "payment", "My bank's confirmation is attached.")
    with session_scope(portal.engine) as session:  # as the proof-of-payment upload leaves it
        row = session.get(ServiceRequest, request_id)
        assert row is not None
        upload = PortalUpload(
            customer_id=row.customer_id,
            content_type="application/pdf",
            size=len(PDF),
            sha256="-",
            data=PDF,
            created_at=datetime.now(UTC),
        )
        session.add(upload)
        session.flush()
        row.upload_id = upload.id
        session.add(row)
    viewer = await signed_in(portal, "vic", "viewer")
    shown = await viewer.get(f"/requests/{request_id}")
    assert f'href="/requests/{request_id}/attachment"' in shown.text
    assert f'action="/requests/{request_id}/answer"' not in shown.text  # a viewer may look, not answer
    got = await viewer.get(f"/requests/{request_id}/attachment")
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == f'attachment; filename="request-{request_id}.pdf"'
    assert got.headers["x-content-type-options"] == "nosniff"
    assert (await viewer.get(f"/requests/{request_id + 1}/attachment")).status_code == 404
    await viewer.aclose()


async def test_the_morning_sweep_escalates_an_unanswered_request_to_the_agents_supervisor_once(
    portal: Portal, time_env: WorkflowEnvironment, settings: Settings
) -> None:
    """DOMAIN.md §11: an unanswered message escalates to a supervisor — the agent's supervisor gets an
    e-mail (no customer data), may open and answer it, and the queue shows when it was escalated."""
    with session_scope(portal.engine) as session:
        service.upsert_agent(session, "S-1", name="Sam Supervisor", email="sam.supervisor@example.org")
        set_supervisor(session, "A-7", "S-1")
    request_id = await customer_writes(portal, "other", "Nobody has answered me.")
    with session_scope(portal.engine) as session:  # the agent let the 24 hours pass
        row = session.get(ServiceRequest, request_id)
        assert row is not None
        row.due_at = datetime.now(UTC) - timedelta(hours=1)
        session.add(row)

    async def sweep() -> None:
        await time_env.client.execute_workflow(
            LedgerSweep.run,
            SweepRequest(as_of=berlin_today(await time_env.get_current_time())),
            id=f"sweep-{uuid.uuid4().hex[:8]}",
            task_queue=settings.task_queue,
        )

    await sweep()
    await sweep()  # a second morning: the request was escalated already

    def mails() -> list[Message]:
        with session_scope(portal.engine) as session:
            return list(session.exec(select(Message).where(Message.kind == "agent_request_overdue")))

    [mail] = mails()
    assert mail.recipient == "sam.supervisor@example.org" and f"/agents/requests/{request_id}" in mail.body_text
    assert "Nobody has answered me" not in mail.body_text and "erika@example.org" not in mail.body_text
    assert request_row(portal.engine, request_id).escalated_at is not None
    supervisor = await signed_in(portal, "sam-s1", "agent", "S-1")
    page = f"/agents/requests/{request_id}"
    assert (await supervisor.get(page)).status_code == 200  # the supervisor may open and answer it
    answered = await form_post(supervisor, page, f"{page}/answer", {"text": "Sorry, I am calling you now."})
    assert answered.status_code == 303 and request_row(portal.engine, request_id).handled_by == "sam-s1"
    boss = await signed_in(portal, "sam", "supervisor")
    assert "the agent's supervisor is e-mailed" in (await boss.get(f"/requests/{request_id}")).text
    await supervisor.aclose()
    await boss.aclose()
