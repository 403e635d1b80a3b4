"""Helpers for workflow tests: move time on the time-skipping server until a case gets somewhere."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import select
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from ledger.db import session_scope
from models.case import CaseStatus, PremiumOverdue
from models.ledger import Contract, Message
from workflows.client import start_or_join_case
from workflows.dunning import DunningCase


def berlin_today(env_now: datetime) -> date:
    return env_now.astimezone(ZoneInfo("Europe/Berlin")).date()


async def status(handle: WorkflowHandle[DunningCase, CaseStatus]) -> CaseStatus:
    return await handle.query(DunningCase.status)


async def advance_until(
    env: WorkflowEnvironment,
    handle: WorkflowHandle[DunningCase, CaseStatus],
    done: Callable[[CaseStatus], bool],
    step: timedelta = timedelta(hours=6),
    limit: timedelta = timedelta(days=200),
) -> CaseStatus:
    """Skip time in small steps until `done(status)`; fail with the last status if it never is."""
    waited = timedelta(0)
    current = await status(handle)
    while not done(current):
        if waited >= limit:
            raise AssertionError(
                f"case never got there within {limit}: stage={current.stage} journal={current.journal}"
            )
        await env.sleep(step)
        waited += step
        current = await status(handle)
    return current


async def open_case(
    env: WorkflowEnvironment, task_queue: str, contract_number: str, premium_id: str, plan_id: str = "de-follow-up"
) -> WorkflowHandle[DunningCase, CaseStatus]:
    return await start_or_join_case(
        env.client, task_queue, contract_number, PremiumOverdue(premium_id=premium_id), plan_id
    )


def messages(engine: Engine, contract_number: str) -> list[Message]:
    with session_scope(engine) as session:
        contract = session.exec(select(Contract).where(Contract.contract_number == contract_number)).one()
        return list(session.exec(select(Message).where(Message.contract_id == contract.id).order_by(Message.id)))  # type: ignore[arg-type]


def contract_status(engine: Engine, contract_number: str) -> str:
    with session_scope(engine) as session:
        return str(session.exec(select(Contract).where(Contract.contract_number == contract_number)).one().status)
