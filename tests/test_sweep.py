"""The daily `LedgerSweep` on the real time-skipping server: every open, unblocked premium past due
on a live contract starts or joins its contract's case, nothing else does, and a second run the
same day signals the same cases again without changing any of them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import activities.sweep
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from models.activities import SweepRequest, SweepResult
from models.case import CaseStatus
from models.ledger import ContractStatus
from tests.conftest import seed_contract
from tests.helpers import berlin_today
from workflows.dunning import DunningCase
from workflows.sweep import LedgerSweep


@dataclass
class Ledger:
    """Contract numbers of one seeded ledger (fresh per test: the Temporal server is shared)."""

    two_overdue: str
    one_overdue: str
    paid: str
    not_yet_due: str
    blocked: str
    terminated: str
    tag: str  # premium ids are P-<tag>-…

    @property
    def dunned(self) -> list[str]:
        return [self.two_overdue, self.one_overdue]

    @property
    def left_alone(self) -> list[str]:
        return [self.paid, self.not_yet_due, self.blocked, self.terminated]


def seed_ledger(engine: Engine, now: datetime) -> Ledger:
    """`now` is the test server's clock, which earlier tests may have moved far ahead."""
    today = berlin_today(now)
    tag = uuid.uuid4().hex[:6]
    ledger = Ledger(
        two_overdue=f"K-TWO-{tag}",
        one_overdue=f"K-ONE-{tag}",
        paid=f"K-PAID-{tag}",
        not_yet_due=f"K-LATER-{tag}",
        blocked=f"K-BLOCK-{tag}",
        terminated=f"K-TERM-{tag}",
        tag=tag,
    )
    yesterday = today - timedelta(days=1)
    # Due one or two days ago: the reminder (3 days after due) is still ahead, so nothing is sent.
    seed_contract(
        engine,
        ledger.two_overdue,
        premiums=[(f"P-{tag}-A1", today - timedelta(days=2), 3_000), (f"P-{tag}-A2", yesterday, 4_000)],
    )
    seed_contract(engine, ledger.one_overdue, premiums=[(f"P-{tag}-B1", yesterday, 5_000)])
    seed_contract(engine, ledger.paid, premiums=[(f"P-{tag}-C1", yesterday, 6_000)])
    # Due today is not overdue yet (default starts the day after), due next month even less.
    seed_contract(
        engine,
        ledger.not_yet_due,
        premiums=[(f"P-{tag}-D1", today, 7_000), (f"P-{tag}-D2", today + timedelta(days=30), 7_000)],
    )
    seed_contract(engine, ledger.blocked, premiums=[(f"P-{tag}-E1", yesterday, 8_000)])
    seed_contract(engine, ledger.terminated, premiums=[(f"P-{tag}-F1", yesterday, 9_000)])
    with session_scope(engine) as session:
        contract = service.get_contract(session, ledger.one_overdue)
        contract.dunning_plan = "demo"  # the sweep starts a case on the contract's own plan
        session.add(contract)
        service.book_payment(
            session,
            contract_number=ledger.paid,
            external_ref=f"bank:{tag}",
            amount_cents=6_000,
            received_at=now,
            source="bank",
        )
        assert service.block_dunning(session, ledger.blocked, today, "cancelled: booked in error") == [f"P-{tag}-E1"]
        service.set_contract_status(
            session,
            contract_number=ledger.terminated,
            to_status=ContractStatus.TERMINATED,
            reason="Contract ended",
            key=f"{ledger.terminated}:end",
            at=now,
        )
    return ledger


def case(env: WorkflowEnvironment, contract_number: str) -> WorkflowHandle[DunningCase, CaseStatus]:
    return env.client.get_workflow_handle_for(DunningCase.run, f"dunning-{contract_number}")


async def sweep(env: WorkflowEnvironment, settings: Settings, as_of: date) -> SweepResult:
    """Run the sweep in real time: while the test waits for it, the server must not skip ahead to
    the started cases' first timers (a demo plan's reminder is a minute away)."""
    with env.auto_time_skipping_disabled():
        return await env.client.execute_workflow(
            LedgerSweep.run,
            SweepRequest(as_of=as_of),
            id=f"sweep-test-{uuid.uuid4().hex[:8]}",
            task_queue=settings.task_queue,
        )


async def started(env: WorkflowEnvironment, contract_number: str) -> bool:
    try:
        await case(env, contract_number).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


# What a finished workflow task leaves behind; anything else after it means work is still pending.
COMMAND_EVENTS = {
    EventType.EVENT_TYPE_TIMER_STARTED,
    EventType.EVENT_TYPE_TIMER_CANCELED,
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
    EventType.EVENT_TYPE_MARKER_RECORDED,
}


async def settled(
    handle: WorkflowHandle[DunningCase, CaseStatus], signals: int, done: Callable[[CaseStatus], bool]
) -> CaseStatus:
    """Wait (in real time, so the server's clock stands still) until the case has received
    `signals` signals, has finished reacting to them and its status satisfies `done`."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        events = [e async for e in handle.fetch_history_events()]
        received = sum(e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED for e in events)
        last_task = max(i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
        only_commands_since = all(e.event_type in COMMAND_EVENTS for e in events[last_task + 1 :])
        idle = only_commands_since and not (await handle.describe()).raw_description.pending_activities
        if received == signals and idle:
            current = await handle.query(DunningCase.status)
            if done(current):
                return current
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"case never settled: {received} of {signals} signals, last {events[-1].event_type}")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("page", [activities.sweep.PAGE, 1], ids=["one page", "a page per premium"])
async def test_sweep_starts_a_case_for_each_contract_with_overdue_premiums_and_a_second_run_changes_nothing(
    time_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    page: int,
) -> None:
    now = await time_env.get_current_time()
    today = berlin_today(now)
    ledger = seed_ledger(engine, now)
    tag = ledger.tag
    reads: list[tuple[int, int]] = []
    read_page = service.overdue_premiums

    def counting(
        session: Session, as_of: date, after_id: int = 0, limit: int = 500
    ) -> list[tuple[int, str, str, str | None]]:
        rows = read_page(session, as_of, after_id, limit)
        reads.append((after_id, len(rows)))
        return rows

    monkeypatch.setattr(activities.sweep, "PAGE", page)
    monkeypatch.setattr(service, "overdue_premiums", counting)

    first = await sweep(time_env, settings, today)

    # Three overdue premiums on two contracts; `cases_signalled` counts start-or-join calls, one per premium.
    assert first == SweepResult(as_of=today, premiums_seen=3, cases_signalled=3)
    # Pages are read until one comes back empty: three pages of one premium, or one page of three.
    assert [size for _, size in reads] == ([1, 1, 1, 0] if page == 1 else [3, 0])
    assert [after for after, _ in reads] == sorted(set(after for after, _ in reads))  # always onwards
    for number in ledger.left_alone:
        assert not await started(time_env, number), f"a case started for {number}"
    two = await settled(case(time_env, ledger.two_overdue), 2, lambda s: len(s.items) == 2)
    one = await settled(case(time_env, ledger.one_overdue), 1, lambda s: len(s.items) == 1)
    assert [i.premium_id for i in two.items] == [f"P-{tag}-A1", f"P-{tag}-A2"] and two.balance_cents == 7_000
    assert [i.premium_id for i in one.items] == [f"P-{tag}-B1"] and one.balance_cents == 5_000
    assert (two.plan_id, one.plan_id) == ("de-follow-up", "demo")
    assert two.steps_done == [] and one.steps_done == []
    runs = {number: (await case(time_env, number).describe()).run_id for number in ledger.dunned}

    second = await sweep(time_env, settings, today)

    assert second == first
    two_again = await settled(case(time_env, ledger.two_overdue), 4, lambda s: True)
    one_again = await settled(case(time_env, ledger.one_overdue), 2, lambda s: True)
    assert two_again == two and one_again == one  # items, steps, journal, next step: all unchanged
    for number in ledger.dunned:
        described = await case(time_env, number).describe()
        assert described.status == WorkflowExecutionStatus.RUNNING and described.run_id == runs[number]
    for number in ledger.left_alone:
        assert not await started(time_env, number), f"a case started for {number}"


async def test_sweep_of_a_day_before_the_premiums_fell_due_starts_nothing(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    now = await time_env.get_current_time()
    today = berlin_today(now)
    ledger = seed_ledger(engine, now)

    result = await sweep(time_env, settings, today - timedelta(days=2))

    assert result == SweepResult(as_of=today - timedelta(days=2), premiums_seen=0, cases_signalled=0)
    for number in ledger.dunned + ledger.left_alone:
        assert not await started(time_env, number), f"a case started for {number}"
