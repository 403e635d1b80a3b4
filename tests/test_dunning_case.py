"""The dunning case on the real time-skipping test server: weeks pass in milliseconds."""

from __future__ import annotations

from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.calendar import dispatch_moment, is_working_day, start_of_day
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.case import (
    AgreeInstalments,
    ApproveCourtFiling,
    Cancel,
    CaseInput,
    CaseStage,
    CaseStatus,
    Dispute,
    EscalateNow,
    HoldRequest,
    Instalment,
    PaymentResult,
    PremiumOverdue,
    PromiseToPay,
    RecordPayment,
    Resume,
    TerminationDecision,
    WriteOff,
)
from models.ledger import AgentTask, ContractStatusChange, CourtApplication, Fee, Premium
from models.plans import get_plan
from tests.conftest import seed_contract
from tests.helpers import advance_until, berlin_today, contract_status, messages, open_case, status
from workflows.dunning import DunningCase


async def test_full_path_reaches_court_approval_and_payment_then_reactivates(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today, handle = await one_premium_case(time_env, engine, settings, 12_000)

    final = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.COURT_APPROVAL)

    assert [s.key for s in final.steps_done] == ["reminder", "notice", "suspend", "sms", "agency", "court"]
    assert final.balance_cents == 12_150  # premium + 1.50 EUR letter fee for the notice
    sent = [(m.kind, m.channel) for m in messages(engine, "K-100001")]
    assert sent == [
        ("reminder", "email"),
        ("qualified_notice", "letter"),
        ("qualified_notice", "email"),
        ("pay_link", "sms"),
        ("pay_link", "email"),
        ("agent_handover", "email"),
        ("agent_escalation", "email"),  # issue #4: nobody tried to call within 24 h → the supervisor is told
    ]
    assert contract_status(engine, "K-100001") == "suspended"
    with session_scope(engine) as session:
        # issue #4: the task belongs to the AgentHandover child, which court dunning ends (tests/test_handover.py)
        task = session.exec(select(AgentTask)).one()
        assert (task.agent_code, task.open_cents) == ("A-7", 12_150)
        application = session.exec(select(CourtApplication)).one()
        assert application.status == "prepared"
        interest = application.record["interest"]
        assert isinstance(interest, list) and interest[0]["premium_id"] == "P-1"
        assert interest[0]["principal_cents"] == 12_000 and interest[0]["accrued_cents"] > 0
        assert all(p["rate_percent"] for p in interest[0]["periods"])

    approved = await handle.execute_update(
        "approve_court_filing", result_type=CaseStatus, arg=ApproveCourtFiling(approver="J. Richter")
    )
    assert approved.stage == CaseStage.COURT_FILED

    await handle.execute_update(
        "record_payment", result_type=PaymentResult, arg=RecordPayment(amount_cents=12_150, reference="counter-1")
    )
    result = await handle.result()
    assert result.stage == CaseStage.PAID and result.closed
    assert contract_status(engine, "K-100001") == "active"
    with session_scope(engine) as session:
        history = [(c.from_status, c.to_status) for c in session.exec(select(ContractStatusChange))]
        assert history == [("active", "suspended"), ("suspended", "active")]
        assert session.exec(select(AgentTask)).one().status == "done"
        assert session.exec(select(CourtApplication)).one().approved_by == "J. Richter"
    assert messages(engine, "K-100001")[-1].kind == "reactivation"
    assert (await status(handle)).closed


# --- payments ------------------------------------------------------------------------------------


BERLIN = "Europe/Berlin"


async def one_premium_case(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings, cents: int
) -> tuple[date, WorkflowHandle[DunningCase, CaseStatus]]:
    """Contract K-100001 with one premium P-1 due today, and its case started."""
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today, cents)])
    return today, await open_case(time_env, settings.task_queue, "K-100001", "P-1")


async def pay(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings, ref: str, cents: int, contract: str = "K-100001"
) -> None:
    """Pay the way a provider webhook does: book in the ledger, then signal the case."""
    inbound = Inbound(engine, time_env.client, settings)
    await inbound.payment(
        contract_number=contract,
        external_ref=ref,
        amount_cents=cents,
        source="testpay",
        received_at=await time_env.get_current_time(),
    )


async def test_partial_payment_sends_receipt_then_full_payment_reactivates_and_closes(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today, handle = await one_premium_case(time_env, engine, settings, 10_000)
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.SUSPENDED)
    assert contract_status(engine, "K-100001") == "suspended"

    await pay(time_env, engine, settings, "pay-1", 4_000)
    # The balance shows as soon as the case has read the ledger; the receipt follows (it renders).
    after_partial = await advance_until(
        time_env,
        handle,
        lambda s: s.balance_cents == 6_150 and any("receipt sent" in line.text for line in s.journal),
        step=timedelta(minutes=1),
    )
    assert not after_partial.closed and after_partial.stage == CaseStage.SUSPENDED
    receipts = [m for m in messages(engine, "K-100001") if m.kind == "payment_receipt"]
    assert len(receipts) == 1 and receipts[0].total_cents == 6_150
    assert "/pay/" in receipts[0].body_text  # a fresh pay link
    assert contract_status(engine, "K-100001") == "suspended"  # arrears remain: no cover yet

    await pay(time_env, engine, settings, "pay-2", 6_150)
    result = await handle.result()
    assert result.stage == CaseStage.PAID and result.balance_cents == 0
    assert contract_status(engine, "K-100001") == "active"
    assert [m.kind for m in messages(engine, "K-100001")].count("reactivation") == 1


STAGES_IN_ORDER = [
    CaseStage.OVERDUE,
    CaseStage.REMINDED,
    CaseStage.NOTICE_SENT,
    CaseStage.SUSPENDED,
    CaseStage.SMS_SENT,
    CaseStage.AGENCY,
    CaseStage.COURT_APPROVAL,
]


@pytest.mark.parametrize("stage", STAGES_IN_ORDER)
async def test_full_payment_during_any_stage_closes_the_case_and_leaves_the_contract_active(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, stage: CaseStage
) -> None:
    today, handle = await one_premium_case(time_env, engine, settings, 10_000)
    reached = await advance_until(time_env, handle, lambda s: s.stage == stage and s.balance_cents > 0)
    steps_before = [s.key for s in reached.steps_done]

    await pay(time_env, engine, settings, f"pay-{stage}", reached.balance_cents)
    result = await handle.result()

    assert result.stage == CaseStage.PAID
    assert [s.key for s in result.steps_done] == steps_before  # nothing more was sent after paying
    assert contract_status(engine, "K-100001") == "active"
    sent = [m.kind for m in messages(engine, "K-100001")]
    # One confirmation, whatever the stage; "cover restored" only to customers whose cover was suspended.
    suspended = STAGES_IN_ORDER.index(stage) >= STAGES_IN_ORDER.index(CaseStage.SUSPENDED)
    confirmation = "reactivation" if suspended else "paid_in_full"
    assert [k for k in sent if k in ("reactivation", "paid_in_full")] == [confirmation]


async def test_partial_payment_reanchors_next_step_on_the_oldest_unpaid_premium_without_skipping(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today - timedelta(days=10), 5_000), ("P-2", today, 5_000)])
    handle = await open_case(time_env, settings.task_queue, "K-100001", "P-1")
    await open_case(time_env, settings.task_queue, "K-100001", "P-2")
    first = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.REMINDED)
    assert first.next_step == "notice"
    notice_for_p1 = first.next_step_at

    await pay(time_env, engine, settings, "pay-p1", 5_000)  # oldest premium paid
    moved = await advance_until(time_env, handle, lambda s: s.balance_cents == 5_000, step=timedelta(minutes=1))
    assert moved.next_step == "notice"  # the same step, not skipped and not repeated
    assert moved.next_step_at is not None and notice_for_p1 is not None
    # now counted from P-2's due date (14 days), on the next working-day morning
    assert moved.next_step_at == dispatch_moment(start_of_day(today + timedelta(days=14), BERLIN), BERLIN)
    assert moved.next_step_at > notice_for_p1
    assert [s.key for s in moved.steps_done] == ["reminder"]


# --- staff actions -------------------------------------------------------------------------------


async def test_hold_stops_escalation_until_resumed(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today, handle = await one_premium_case(time_env, engine, settings, 10_000)
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.REMINDED)

    held = await handle.execute_update(
        DunningCase.hold, HoldRequest(until=today + timedelta(days=60), reason="in hospital")
    )
    assert held.hold is not None and held.hold.kind == "hold"
    await time_env.sleep(timedelta(days=30))  # the notice would have gone out on day 14
    during = await status(handle)
    assert during.stage == CaseStage.REMINDED and [s.key for s in during.steps_done] == ["reminder"]

    resumed = await handle.execute_update(DunningCase.resume, Resume(reason="back home"))
    assert resumed.hold is None
    after = await advance_until(
        time_env, handle, lambda s: s.stage == CaseStage.NOTICE_SENT, step=timedelta(minutes=30)
    )
    assert [s.key for s in after.steps_done] == ["reminder", "notice"]


async def test_hold_ends_by_itself_on_its_date(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today, handle = await one_premium_case(time_env, engine, settings, 10_000)
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.REMINDED)
    await handle.execute_update(
        DunningCase.hold, HoldRequest(until=today + timedelta(days=20), reason="agreed with customer")
    )
    done = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.NOTICE_SENT)
    assert done.steps_done[-1].at.date() >= today + timedelta(days=19)


async def test_broken_promise_to_pay_resumes_dunning(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today, handle = await one_premium_case(time_env, engine, settings, 10_000)
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.REMINDED)
    promised = await handle.execute_update(DunningCase.promise_to_pay, PromiseToPay(pay_by=today + timedelta(days=25)))
    assert promised.hold is not None and promised.hold.kind == "promise_to_pay"
    after = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.NOTICE_SENT)
    assert any("Promise to pay broken" in e.text for e in after.journal)
    resumed = after.steps_done[-1].at.astimezone(ZoneInfo(BERLIN))
    assert resumed.date() > today + timedelta(days=25)  # the day after the promised date at the earliest
    assert is_working_day(resumed.date()) and (resumed.hour, resumed.minute) == (8, 0)  # a working-day morning


async def test_kept_promise_ends_the_case_without_further_steps(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today, handle = await one_premium_case(time_env, engine, settings, 10_000)
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.REMINDED)
    await handle.execute_update(DunningCase.promise_to_pay, PromiseToPay(pay_by=today + timedelta(days=25)))
    await time_env.sleep(timedelta(days=20))
    await pay(time_env, engine, settings, "kept", 10_000)
    result = await handle.result()
    assert result.stage == CaseStage.PAID and [s.key for s in result.steps_done] == ["reminder"]


async def test_dispute_pauses_until_resumed_and_escalate_now_runs_the_next_step_at_once(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today, handle = await one_premium_case(time_env, engine, settings, 10_000)
    disputed = await handle.execute_update(DunningCase.dispute, Dispute(reason="customer says premium was cancelled"))
    assert disputed.hold is not None and disputed.hold.until is None
    await time_env.sleep(timedelta(days=40))
    assert (await status(handle)).steps_done == []

    await handle.execute_update(DunningCase.escalate_now, EscalateNow(reason="dispute rejected"))
    escalated = await advance_until(time_env, handle, lambda s: len(s.steps_done) >= 1, step=timedelta(seconds=1))
    assert escalated.steps_done[0].key == "reminder"


async def test_escalate_now_never_suspends_cover_before_the_notice_deadline(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today, handle = await one_premium_case(time_env, engine, settings, 10_000)
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.NOTICE_SENT)
    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await handle.execute_update(DunningCase.escalate_now, EscalateNow(reason="impatient"))
    assert "deadline" in str(rejected.value.cause)
    assert contract_status(engine, "K-100001") == "active"


async def test_write_off_closes_the_case_and_reactivates_the_contract(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today, handle = await one_premium_case(time_env, engine, settings, 10_000)
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.SUSPENDED)
    closed = await handle.execute_update("write_off", result_type=CaseStatus, arg=WriteOff(reason="hardship"))
    assert closed.stage == CaseStage.WRITTEN_OFF and closed.closed
    assert (await handle.result()).stage == CaseStage.WRITTEN_OFF
    assert contract_status(engine, "K-100001") == "active"
    with session_scope(engine) as session:
        assert session.exec(select(Premium)).one().status == "written_off"


async def test_cancel_closes_the_case_and_blocks_the_premium_from_the_sweep(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today, handle = await one_premium_case(time_env, engine, settings, 10_000)
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.REMINDED)
    closed = await handle.execute_update("cancel", result_type=CaseStatus, arg=Cancel(reason="premium booked in error"))
    assert closed.stage == CaseStage.CANCELLED
    with session_scope(engine) as session:
        assert session.exec(select(Premium)).one().dunning_blocked


# --- duplicates ----------------------------------------------------------------------------------


async def test_duplicate_events_change_nothing(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today, 10_000)])
    first = await open_case(time_env, settings.task_queue, "K-100001", "P-1")
    second = await open_case(time_env, settings.task_queue, "K-100001", "P-1")  # the same trigger again
    assert first.result_run_id == second.result_run_id  # joined, not a second case
    await advance_until(time_env, first, lambda s: s.stage == CaseStage.REMINDED)

    await pay(time_env, engine, settings, "dup-pay", 3_000)
    await pay(time_env, engine, settings, "dup-pay", 3_000)  # the same webhook twice
    await first.signal(DunningCase.premium_overdue, PremiumOverdue(premium_id="P-1"))
    state = await advance_until(time_env, first, lambda s: s.balance_cents == 7_000, step=timedelta(minutes=1))
    await time_env.sleep(timedelta(minutes=5))
    assert [m.kind for m in messages(engine, "K-100001")].count("payment_receipt") == 1
    assert [s.key for s in state.steps_done] == ["reminder"]
    with session_scope(engine) as session:
        assert session.exec(select(Premium)).one().paid_cents == 3_000


# --- bad input on every update -------------------------------------------------------------------

BAD_UPDATES = [
    ("record_payment", RecordPayment(amount_cents=0, reference="x"), "amount_cents"),
    ("record_payment", RecordPayment(amount_cents=-500, reference="x"), "amount_cents"),
    ("record_payment", RecordPayment(amount_cents=10**12, reference="x"), "amount_cents"),
    ("record_payment", RecordPayment(amount_cents=100, reference="  "), "reference"),
    ("record_payment", RecordPayment(amount_cents=100, reference="x", premium_id="P-404"), "premium_id"),
    ("hold", HoldRequest(until=date(2020, 1, 1), reason="x"), "until"),
    ("hold", HoldRequest(until=date(2099, 1, 1), reason="x"), "until"),
    ("hold", "TODAY+5", "reason"),
    ("resume", Resume(), "not on hold"),
    ("promise_to_pay", PromiseToPay(pay_by=date(2020, 1, 1)), "pay_by"),
    ("promise_to_pay", PromiseToPay(pay_by=date(2099, 1, 1)), "pay_by"),
    ("promise_to_pay", "AMOUNT_TOO_HIGH", "amount_cents"),
    ("dispute", Dispute(reason=""), "reason"),
    ("write_off", WriteOff(reason=""), "reason"),
    ("escalate_now", EscalateNow(reason=""), "reason"),
    ("cancel", Cancel(reason=" "), "reason"),
    ("approve_court_filing", ApproveCourtFiling(approver="J. Richter"), "no court application"),
    ("approve_court_filing", ApproveCourtFiling(approver=""), "approver"),
]


async def test_every_update_rejects_bad_input_with_a_clear_message_and_changes_nothing(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today, handle = await one_premium_case(time_env, engine, settings, 10_000)
    before = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.REMINDED)
    events_before = len((await handle.fetch_history()).events)
    for name, argument, expected in BAD_UPDATES:
        if argument == "TODAY+5":
            argument = HoldRequest(until=today + timedelta(days=5), reason="")
        elif argument == "AMOUNT_TOO_HIGH":
            argument = PromiseToPay(pay_by=today + timedelta(days=5), amount_cents=before.balance_cents + 1)
        with pytest.raises(WorkflowUpdateFailedError) as rejected:
            await handle.execute_update(name, argument)
        message = str(rejected.value.cause)
        assert expected in message, f"{name}: {message!r} does not mention {expected!r}"
    after = await status(handle)
    assert after.model_dump() == before.model_dump()  # nothing changed
    # Rejected in the validator: no update was accepted and nothing was scheduled. (The time-skipping
    # server still records the workflow task that ran the validator; the real server drops it.)
    new_events = (await handle.fetch_history()).events[events_before:]
    kinds = {EventType.Name(e.event_type) for e in new_events}
    assert kinds <= {
        "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED",
        "EVENT_TYPE_WORKFLOW_TASK_STARTED",
        "EVENT_TYPE_WORKFLOW_TASK_COMPLETED",
    }, kinds


async def test_a_closed_case_rejects_every_staff_action(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today, handle = await one_premium_case(time_env, engine, settings, 10_000)
    await handle.execute_update("cancel", result_type=CaseStatus, arg=Cancel(reason="test"))
    await handle.result()
    # A completed workflow no longer accepts updates at all: the server answers for it.
    with pytest.raises(Exception):  # noqa: B017 — any rejection will do, the point is that nothing happens
        await handle.execute_update(DunningCase.hold, HoldRequest(until=today + timedelta(days=5), reason="x"))
    assert (await status(handle)).stage == CaseStage.CANCELLED


async def test_a_case_started_with_an_unknown_plan_fails_at_once_with_the_reason(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    seed_contract(engine, premiums=[])
    with pytest.raises(WorkflowFailureError) as failed:
        await time_env.client.execute_workflow(
            DunningCase.run,
            CaseInput(contract_number="K-100001", plan_id="no-such-plan"),
            id="dunning-K-100001",
            task_queue=settings.task_queue,
        )
    assert "unknown dunning plan 'no-such-plan'" in str(failed.value.cause)


async def test_a_small_shortfall_goes_to_manual_review_instead_of_escalating(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today, handle = await one_premium_case(time_env, engine, settings, 10_000)
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.REMINDED)

    await pay(time_env, engine, settings, "almost", 9_950)  # 0.50 EUR short, below the 1.00 EUR threshold
    review = await advance_until(time_env, handle, lambda s: s.hold is not None, step=timedelta(minutes=1))
    assert review.hold is not None and review.hold.kind == "small_shortfall" and review.balance_cents == 50
    await time_env.sleep(timedelta(days=60))  # the notice would have gone out long ago
    still = await status(handle)
    assert [s.key for s in still.steps_done] == ["reminder"] and still.stage == CaseStage.REMINDED
    assert "payment_receipt" not in [m.kind for m in messages(engine, "K-100001")]

    closed = await handle.execute_update("write_off", result_type=CaseStatus, arg=WriteOff(reason="0.50 EUR shortfall"))
    assert closed.stage == CaseStage.WRITTEN_OFF


async def test_a_shortfall_at_or_above_the_threshold_keeps_dunning(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today, handle = await one_premium_case(time_env, engine, settings, 10_000)
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.REMINDED)
    await pay(time_env, engine, settings, "short-by-one-euro", 9_900)
    after = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.NOTICE_SENT)
    assert after.hold is None and after.balance_cents == 100 + 150  # rest + the notice's letter fee


async def test_reminder_and_notice_wait_for_a_working_day_morning_and_suspension_for_the_deadline(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    berlin = ZoneInfo(BERLIN)
    _, handle = await one_premium_case(time_env, engine, settings, 10_000)
    await advance_until(time_env, handle, lambda s: s.balance_cents > 0, step=timedelta(seconds=1))  # ledger read
    seen: list[tuple[str, object]] = []
    for _ in range(3):  # reminder, notice, suspension
        current = await status(handle)
        assert current.next_step is not None and current.next_step_at is not None
        local = current.next_step_at.astimezone(berlin)
        seen.append((current.next_step, local))
        if current.next_step != "suspend":
            assert is_working_day(local.date()) and local.time() == time(8), (current.next_step, local)
        else:  # the deadline ends at midnight, whatever the weekday
            assert local.time() == time(0)
        done = len(current.steps_done)
        await advance_until(time_env, handle, lambda s, n=done: len(s.steps_done) > n)  # type: ignore[misc]
    assert [key for key, _ in seen] == ["reminder", "notice", "suspend"]


async def test_a_premium_falling_due_after_the_notice_gets_a_supplementary_notice_before_suspension(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    _, handle = await one_premium_case(time_env, engine, settings, 10_000)
    noticed = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.NOTICE_SENT)
    first_deadline = noticed.deadline
    assert first_deadline is not None

    # the next monthly premium falls due after the notice went out: the notice did not name it
    later = berlin_today(await time_env.get_current_time())
    with session_scope(engine) as session:
        service.book_premium(
            session,
            external_id="P-2",
            contract_number="K-100001",
            period_start=later,
            period_end=later + timedelta(days=30),
            due_date=later,
            amount_cents=5_000,
        )
    await open_case(time_env, settings.task_queue, "K-100001", "P-2")

    done = await advance_until(time_env, handle, lambda s: any(r.key == "notice_supplement_1" for r in s.steps_done))
    keys = [r.key for r in done.steps_done]
    supplement = next(r for r in done.steps_done if r.key == "notice_supplement_1")
    # the supplement itemises everything still open (both premiums, the first letter's fee and its
    # own) and its later deadline governs the suspension that had not happened yet
    assert (supplement.total_cents, supplement.fee_cents) == (10_000 + 5_000 + 150 + 150, 150)
    assert supplement.deadline is not None and supplement.deadline > first_deadline
    assert done.deadline == supplement.deadline
    assert "suspend" not in keys[: keys.index("notice_supplement_1")]
    assert done.stage == CaseStage.NOTICE_SENT  # a supplement moves neither stage nor plan pointer
    assert done.next_step == "suspend"

    letters = [m for m in messages(engine, "K-100001") if m.kind == "qualified_notice" and m.channel == "letter"]
    assert [m.total_cents for m in letters] == [10_150, 15_300]
    assert "fällig am" in letters[0].body_text and ": 50,00" not in letters[0].body_text
    assert ": 50,00" in letters[1].body_text and ": 100,00" in letters[1].body_text
    assert "Offener Gesamtbetrag: 153,00" in letters[1].body_text

    suspended = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.SUSPENDED)
    assert suspended.steps_done[-1].at >= supplement.deadline
    assert [r.key for r in suspended.steps_done].count("notice_supplement_1") == 1  # sent once


async def test_instalments_paid_on_time_pause_escalation_until_the_balance_is_cleared(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today, handle = await one_premium_case(time_env, engine, settings, 9_000)
    reminded = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.REMINDED)
    start = berlin_today(await time_env.get_current_time())
    plan = [Instalment(due=start + timedelta(days=10 + 30 * i), amount_cents=3_000) for i in range(3)]
    agreed = await handle.execute_update(DunningCase.agree_instalments, AgreeInstalments(instalments=plan, by="mia"))
    assert agreed.hold is not None and agreed.hold.kind == "instalment_plan"
    for number, instalment in enumerate(plan, start=1):
        await time_env.sleep(timedelta(days=9) if number == 1 else timedelta(days=29))
        await pay(time_env, engine, settings, f"rate-{number}", instalment.amount_cents)
    result = await handle.result()
    assert result.stage == CaseStage.PAID
    assert [s.key for s in result.steps_done] == [s.key for s in reminded.steps_done]  # nothing escalated
    assert sum("on time" in e.text for e in result.journal) == 2


async def test_a_missed_instalment_resumes_dunning_the_next_working_day_morning(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today, handle = await one_premium_case(time_env, engine, settings, 9_000)
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.REMINDED)
    start = berlin_today(await time_env.get_current_time())
    plan = [
        Instalment(due=start + timedelta(days=5), amount_cents=4_500),
        Instalment(due=start + timedelta(days=35), amount_cents=4_500),
    ]
    await handle.execute_update(DunningCase.agree_instalments, AgreeInstalments(instalments=plan))
    await time_env.sleep(timedelta(days=4))
    await pay(time_env, engine, settings, "rate-1", 4_500)
    second_missed = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.NOTICE_SENT)
    assert any("Instalment 1 of 2 on time" in e.text for e in second_missed.journal)
    assert any("Instalment 2 of 2 missed (4500 of 9000 cents paid)" in e.text for e in second_missed.journal)
    sent = second_missed.steps_done[-1].at.astimezone(ZoneInfo(BERLIN))
    assert sent.date() > plan[1].due and is_working_day(sent.date()) and (sent.hour, sent.minute) == (8, 0)


@pytest.mark.parametrize(
    ("amounts", "days", "problem"),
    [
        ([5_000, 4_999], [5, 35], "add up to 9999 cents, the open balance is 10000"),
        ([10_000], [5], "2..24 instalments"),
        ([5_000, 5_000], [35, 5], "strictly increasing"),
        ([5_000, 5_000], [-1, 30], "today or later"),
        ([5_000, 5_000], [5, 400], "within a year"),
        ([10_000, 0], [5, 35], "more than 0 cents"),
    ],
)
async def test_an_instalment_plan_that_does_not_add_up_is_refused_and_changes_nothing(
    time_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    settings: Settings,
    amounts: list[int],
    days: list[int],
    problem: str,
) -> None:
    _, handle = await one_premium_case(time_env, engine, settings, 10_000)
    before = await advance_until(time_env, handle, lambda s: s.balance_cents > 0, step=timedelta(seconds=1))
    start = berlin_today(await time_env.get_current_time())
    plan = [Instalment(due=start + timedelta(days=d), amount_cents=a) for a, d in zip(amounts, days, strict=True)]
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(DunningCase.agree_instalments, AgreeInstalments(instalments=plan))
    assert problem in str(refused.value.cause)
    after = await status(handle)
    assert (after.hold, after.next_step, after.next_step_at) == (before.hold, before.next_step, before.next_step_at)


async def terminated_case(
    time_env: WorkflowEnvironment, engine: Engine, settings: Settings
) -> WorkflowHandle[DunningCase, CaseStatus]:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today, 10_000)])
    handle = await open_case(time_env, settings.task_queue, "K-100001", "P-1", plan_id="de-follow-up-terminate")
    proposed = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.TERMINATION_APPROVAL)
    assert contract_status(engine, "K-100001") == "suspended"  # nothing terminated without a person
    assert proposed.next_step is None and proposed.next_step_at is None  # the case waits for the decision
    approved = await handle.execute_update(
        "approve_termination", TerminationDecision(by="J. Richter"), result_type=CaseStatus
    )
    assert approved.stage == CaseStage.TERMINATED and contract_status(engine, "K-100001") == "terminated"
    return handle


def history(engine: Engine) -> list[tuple[str, str]]:
    with session_scope(engine) as session:
        return [(str(c.from_status), str(c.to_status)) for c in session.exec(select(ContractStatusChange))]


async def test_paying_within_a_month_of_an_approved_termination_voids_it(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    handle = await terminated_case(time_env, engine, settings)
    await time_env.sleep(timedelta(days=20))
    await pay(time_env, engine, settings, "cure", 10_150)
    result = await handle.result()
    assert result.stage == CaseStage.PAID
    assert history(engine) == [("active", "suspended"), ("suspended", "terminated"), ("terminated", "active")]
    assert any("Termination void" in e.text for e in result.journal)
    assert [m.kind for m in messages(engine, "K-100001")].count("termination_void") == 1  # not "cover restored"


async def test_paying_after_the_cure_month_leaves_the_termination_standing(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    handle = await terminated_case(time_env, engine, settings)
    # The month runs from the termination letter's expected receipt (third working day), so 40 days
    # after the approval is late in every calendar (issue #11: it used to run from the approval).
    await time_env.sleep(timedelta(days=40))
    await pay(time_env, engine, settings, "late", 10_150)
    result = await handle.result()
    assert result.stage == CaseStage.PAID
    assert contract_status(engine, "K-100001") == "terminated"
    assert history(engine) == [("active", "suspended"), ("suspended", "terminated")]
    assert "reactivation" not in [m.kind for m in messages(engine, "K-100001")]  # no "cover restored" letter
    assert any("the termination stands" in e.text for e in result.journal)


async def test_a_declined_termination_keeps_the_contract_and_dunning_goes_on(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today, 10_000)])
    handle = await open_case(time_env, settings.task_queue, "K-100001", "P-1", plan_id="de-follow-up-terminate")
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.TERMINATION_APPROVAL)
    with pytest.raises(WorkflowUpdateFailedError, match="update failed"):
        await handle.execute_update("approve_termination", TerminationDecision(by=" "), result_type=CaseStatus)
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(DunningCase.escalate_now, EscalateNow(reason="hurry"))
    declined = await handle.execute_update(
        DunningCase.decline_termination, TerminationDecision(by="J. Richter", note="long-standing customer")
    )
    assert declined.stage == CaseStage.SUSPENDED and declined.next_step == "agency"
    assert contract_status(engine, "K-100001") == "suspended"
    with pytest.raises(WorkflowUpdateFailedError) as again:
        await handle.execute_update("approve_termination", TerminationDecision(by="J. Richter"), result_type=CaseStatus)
    assert "no termination waits for a decision" in str(again.value.cause)
    assert history(engine) == [("active", "suspended")]


async def test_a_plan_that_claims_interest_itemises_it_in_the_notice_to_the_cent(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today - timedelta(days=60), 10_000)])
    plan = get_plan("de-follow-up").model_copy(update={"id": "de-follow-up-interest", "claim_interest": True})
    handle = await time_env.client.start_workflow(
        DunningCase.run,
        CaseInput(contract_number="K-100001", plan=plan, premiums=[PremiumOverdue(premium_id="P-1")]),
        id="dunning-K-100001",
        task_queue=settings.task_queue,
    )
    noticed = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.NOTICE_SENT)
    notice = next(r for r in noticed.steps_done if r.key == "notice")
    letter = next(m for m in messages(engine, "K-100001") if m.kind == "qualified_notice" and m.channel == "letter")
    with session_scope(engine) as session:
        interest = session.exec(select(Fee).where(Fee.kind == "interest")).one()
        balance = service.arrears(session, "K-100001", berlin_today(await time_env.get_current_time())).balance_cents
    assert interest.amount_cents > 0 and "Verzugszinsen" in interest.label
    assert notice.total_cents == letter.total_cents == balance == 10_000 + 150 + interest.amount_cents
    assert "Verzugszinsen" in letter.body_text and "Zinsen wegen verspäteter Zahlung" not in letter.body_text


async def test_a_first_premium_case_states_the_section_37_consequences_and_never_suspends(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today, 10_000)])
    handle = await open_case(time_env, settings.task_queue, "K-100001", "P-1", plan_id="de-first-premium")
    after = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.SMS_SENT)
    assert [r.key for r in after.steps_done] == ["reminder", "notice", "sms"]
    letter = next(m for m in messages(engine, "K-100001") if m.kind == "qualified_notice" and m.channel == "letter")
    assert "§ 37 VVG" in letter.subject and "ERSTBEITRAG NICHT BEZAHLT" in letter.body_text
    assert "§ 38 VVG" not in letter.body_text
    assert contract_status(engine, "K-100001") == "active"  # nothing to suspend: cover never began
