"""The case's side of the portal (issue #14) on the time-skipping server with the real worker: the
customer's arrangement is judged by the update's validator (a refusal comes back as a code, the case
unchanged); a request the portal wrote as `pending` is opened by the case's activity with its due
date, or discarded when the case refuses it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import select
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.case import CaseStatus, CustomerArrangement, HoldKind
from models.ledger import Message
from models.portal import RequestKind, RequestQueue, RequestStatus, ServiceRequest
from tests.helpers import berlin_today, open_case, status
from tests.portal_support import seed_portal_customer
from web.deps import AppContext
from web.public.portal import case as portal_case
from workflows.dunning import DunningCase

CONTRACT = "K-100001"


async def arrears_read(handle: WorkflowHandle[DunningCase, CaseStatus]) -> CaseStatus:
    """The case has read its arrears from the ledger (its first activity); generous bound, no skipping."""
    for _ in range(1200):
        current = await status(handle)
        if current.balance_cents > 0:
            return current
        await asyncio.sleep(0.05)
    raise AssertionError(f"the case never read its arrears: {current}")


async def running_case(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, cents: int
) -> tuple[AppContext, WorkflowHandle[DunningCase, CaseStatus], date]:
    """A customer with one premium of `cents` due today, its case started and its arrears read."""
    today = berlin_today(await time_env.get_current_time())
    seed_portal_customer(engine, premiums=[("P-1", today, cents)])
    handle = await open_case(time_env, worker.task_queue, CONTRACT, "P-1")
    await arrears_read(handle)
    return AppContext(engine, time_env.client, settings, Inbound(engine, time_env.client, settings)), handle, today


def pending(engine: Engine, kind: RequestKind, queue: RequestQueue, agent: str | None = None) -> int:
    with session_scope(engine) as session:
        contract = service.get_contract(session, CONTRACT)
        row = ServiceRequest(
            customer_id=contract.customer_id,
            contract_id=contract.id or 0,
            case_id=f"dunning-{CONTRACT}",
            queue=queue,
            kind=kind,
            summary="test",
            agent_code=agent,
            created_by="customer portal",
            created_at=datetime.now(UTC),
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def request_row(engine: Engine, request_id: int) -> ServiceRequest:
    with session_scope(engine) as session:
        row = session.get(ServiceRequest, request_id)
        assert row is not None
        return row


async def test_the_case_agrees_three_instalments_and_refuses_a_second_arrangement_with_a_code(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    ctx, handle, today = await running_case(time_env, worker, engine, settings, 45_000)
    three = CustomerArrangement(kind="instalments", instalments=3, first_due=today + timedelta(days=7))
    agreed = await portal_case.arrange(ctx, CONTRACT, three)
    assert isinstance(agreed, CaseStatus)
    assert agreed.hold is not None and agreed.hold.kind == HoldKind.INSTALMENTS
    assert [i.amount_cents for i in agreed.hold.schedule] == [15_000, 15_000, 15_000]

    before = await status(handle)
    second = await portal_case.arrange(
        ctx, CONTRACT, CustomerArrangement(kind="deferral", pay_by=today + timedelta(days=5))
    )
    assert isinstance(second, portal_case.Refused) and second.code == "already_used"
    assert second.params == {"allowed": 1}
    after = await status(handle)
    assert after.hold == before.hold and after.journal == before.journal  # nothing half-applied


async def test_a_dispute_request_is_opened_with_its_due_date_and_pauses_the_case(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    ctx, handle, today = await running_case(time_env, worker, engine, settings, 12_000)
    request_id = pending(engine, RequestKind.DISPUTE, RequestQueue.CLERK)
    asked = await portal_case.ask(ctx, CONTRACT, request_id, RequestKind.DISPUTE)
    assert isinstance(asked, CaseStatus) and asked.hold is not None and asked.hold.kind == HoldKind.DISPUTE
    row = request_row(engine, request_id)
    assert row.status == RequestStatus.OPEN and row.due_at is not None
    opened_at = await time_env.get_current_time()  # a clerk answers within two working days
    assert opened_at + timedelta(days=1) < row.due_at.replace(tzinfo=UTC) <= opened_at + timedelta(days=6)
    assert f"request #{request_id}" in (await status(handle)).journal[-1].text


async def test_a_message_for_the_agent_mails_the_agent_without_contact_data(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    ctx, handle, today = await running_case(time_env, worker, engine, settings, 12_000)
    request_id = pending(engine, RequestKind.MESSAGE, RequestQueue.AGENT, agent="A-7")
    asked = await portal_case.ask(ctx, CONTRACT, request_id, RequestKind.MESSAGE)
    assert isinstance(asked, CaseStatus) and asked.hold is None
    row = request_row(engine, request_id)
    assert row.status == RequestStatus.OPEN and row.due_at is not None
    with session_scope(engine) as session:
        mails = session.exec(select(Message).where(Message.recipient == "max.agent@example.org")).all()
    [mail] = mails
    assert f"/agents/requests/{request_id}" in mail.body_text and "Kundenportal" in mail.body_text
    for personal in ("erika@example.org", "+4915112345678", "Heidestraße"):
        assert personal not in mail.body_text and personal not in mail.body_html


async def test_a_refused_request_is_discarded_and_never_reaches_a_queue(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    ctx, handle, today = await running_case(time_env, worker, engine, settings, 12_000)
    request_id = pending(engine, RequestKind.MESSAGE, RequestQueue.CLERK)
    refused = await portal_case.ask(ctx, CONTRACT, request_id, "pizza")
    assert isinstance(refused, portal_case.Refused) and "kind must be one of" in refused.message
    assert request_row(engine, request_id).status == RequestStatus.DISCARDED
    missing = await portal_case.arrange(
        ctx, "K-999999", CustomerArrangement(kind="deferral", pay_by=today + timedelta(days=3))
    )
    assert isinstance(missing, portal_case.Refused) and missing.code == "no_case"
