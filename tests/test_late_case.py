"""A case discovered late (the premium fell due weeks ago) must not send the reminder and the §38
notice in the same second (issue #9): a step's `min_gap` keeps it that long after the previous
message really went out. Pure rules on `step_due_at` first, then the real workflow on the
time-skipping server."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.calendar import dispatch_moment, start_of_day
from core.schedule import step_due_at
from infra.config import Settings
from models.case import Arrears, CaseStage, CaseState, OpenItem, StepRecord
from models.messages import Channel
from models.plan import DunningPlan, PlanStep, StepKind
from models.plans import BUILTIN_PLANS, get_plan
from tests.conftest import seed_contract
from tests.helpers import advance_until, berlin_today, messages, open_case

DAY = timedelta(days=1)
BERLIN = "Europe/Berlin"
# Tuesday 10 March 2026, 10:00 Berlin: the case is opened 30 days after the premium fell due.
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
DUE = date(2026, 2, 8)


def late_case(plan: DunningPlan, done: list[StepRecord] | None = None) -> CaseState:
    return CaseState(
        case_id="dunning-K-1/1",
        contract_number="K-1",
        plan=plan,
        opened_at=NOW,
        arrears=Arrears(
            contract_number="K-1",
            items=[OpenItem(premium_id="P-1", period="02/2026", due_date=DUE, open_cents=10_000)],
            balance_cents=10_000,
        ),
        steps_done=done or [],
        next_step=len(done or []),
    )


def sent(key: str, kind: StepKind, at: datetime) -> StepRecord:
    return StepRecord(key=key, kind=kind, at=at, channel=Channel.EMAIL)


# --- the rule (pure) ------------------------------------------------------------------------------


def test_a_late_case_sends_its_overdue_reminder_now() -> None:
    plan = get_plan("de-follow-up")

    assert step_due_at(late_case(plan), plan.step("reminder"), NOW) == NOW


def test_the_notice_of_a_late_case_waits_seven_days_after_the_reminder_was_sent() -> None:
    plan = get_plan("de-follow-up")
    state = late_case(plan, [sent("reminder", StepKind.REMINDER, NOW)])

    due = step_due_at(state, plan.step("notice"), NOW)

    # due date + 14 days was 24 February, long past: without the gap the notice would go out now
    assert due == NOW + 7 * DAY  # Tuesday 17 March, 10:00 Berlin: a dispatch moment already


def test_the_gap_does_not_delay_a_case_that_runs_on_time() -> None:
    plan = get_plan("de-follow-up")
    reminder_at = dispatch_moment(datetime(2026, 2, 11, tzinfo=UTC), BERLIN)  # due + 3 days
    state = late_case(plan, [sent("reminder", StepKind.REMINDER, reminder_at)])

    due = step_due_at(state, plan.step("notice"), reminder_at)

    assert due == dispatch_moment(start_of_day(DUE, BERLIN) + 14 * DAY, BERLIN)  # due + 14 days, as planned
    assert due - reminder_at > 7 * DAY


def test_a_gap_ending_on_a_holiday_moves_to_the_next_dispatch_moment() -> None:
    plan = get_plan("de-follow-up")
    friday = datetime(2026, 3, 27, 9, 0, tzinfo=UTC)  # 10:00 Berlin
    state = late_case(plan, [sent("reminder", StepKind.REMINDER, friday)])

    due = step_due_at(state, plan.step("notice"), friday)

    # + 7 days = Good Friday; Easter Monday is a holiday too → Tuesday 7 April, 08:00 Berlin (summer time)
    assert due == datetime(2026, 4, 7, 6, 0, tzinfo=UTC)


def test_a_danish_reminder_goes_out_ten_days_after_the_previous_one_really_went_out() -> None:
    plan = get_plan("dk-follow-up")
    notice_at = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    state = late_case(
        plan,
        [sent("reminder", StepKind.REMINDER, NOW - 10 * DAY), sent("notice", StepKind.QUALIFIED_NOTICE, notice_at)],
    )

    due = step_due_at(state, plan.step("sms"), NOW)

    assert due == datetime(2026, 3, 20, 9, 0, tzinfo=UTC)  # due + 34 days was 14 March


def test_a_plan_pinned_before_min_gap_existed_keeps_its_timing() -> None:
    pinned_v1 = plan_as_pinned_before_min_gap("de-follow-up")
    state = late_case(pinned_v1, [sent("reminder", StepKind.REMINDER, NOW)])

    assert pinned_v1.step("notice").min_gap == timedelta(0)
    assert step_due_at(state, pinned_v1.step("notice"), NOW) == NOW


def test_a_step_that_sends_nothing_is_not_held_back_by_a_gap_it_does_not_declare() -> None:
    plan = get_plan("de-follow-up")
    deadline = NOW + DAY
    state = late_case(plan, [sent("reminder", StepKind.REMINDER, NOW), sent("notice", StepKind.QUALIFIED_NOTICE, NOW)])
    state.deadline = deadline

    assert step_due_at(state, plan.step("suspend"), NOW) == deadline


# --- plans as data ----------------------------------------------------------------------------------


def plan_as_pinned_before_min_gap(plan_id: str) -> DunningPlan:
    """The plan as a case that started before min_gap existed holds it: no step has the field."""
    data: dict[str, Any] = BUILTIN_PLANS[plan_id].model_dump(mode="json")
    data["version"] = 1
    for step in data["steps"]:
        step.pop("min_gap", None)
    return DunningPlan.model_validate(data)


def test_the_built_in_notices_keep_their_gap_and_demo_plans_keep_it_short() -> None:
    assert get_plan("de-follow-up").step("notice").min_gap == 7 * DAY
    assert get_plan("de-follow-up-terminate").step("notice").min_gap == 7 * DAY
    assert get_plan("demo").step("notice").min_gap == timedelta(minutes=1)
    assert get_plan("demo-fast").step("notice").min_gap == timedelta(seconds=2)
    assert [get_plan("dk-follow-up").step(key).min_gap for key in ("reminder", "notice", "sms")] == [
        0 * DAY,
        10 * DAY,
        10 * DAY,
    ]
    assert (get_plan("de-follow-up").version, get_plan("dk-follow-up").version) == (2, 2)


def test_a_gap_of_zero_is_left_out_when_a_plan_is_stored_so_old_pinned_plans_keep_their_shape() -> None:
    plan = get_plan("de-follow-up")

    dumped = plan.model_dump(mode="json")

    assert "min_gap" not in dumped["steps"][0]
    assert dumped["steps"][1]["min_gap"] == "P7D"
    assert DunningPlan.model_validate(dumped) == plan


def test_a_danish_plan_pinned_before_min_gap_existed_is_still_accepted() -> None:
    pinned = plan_as_pinned_before_min_gap("dk-follow-up")

    again = DunningPlan.model_validate(pinned.model_dump(mode="json"))  # continue-as-new stores it again

    assert [s.min_gap for s in again.steps] == [timedelta(0)] * len(again.steps)


def test_a_danish_reminder_after_the_first_with_a_gap_below_ten_days_is_refused() -> None:
    data = BUILTIN_PLANS["dk-follow-up"].model_dump(mode="json")
    sms = next(s for s in data["steps"] if s["key"] == "sms")
    sms["min_gap"] = "P9D"

    with pytest.raises(ValidationError, match=r"step sms: a Danish reminder after the first needs min_gap >= 10 days"):
        DunningPlan.model_validate(data)


def test_a_danish_plan_that_declares_gaps_must_declare_them_on_every_later_reminder() -> None:
    data = BUILTIN_PLANS["dk-follow-up"].model_dump(mode="json")
    notice = next(s for s in data["steps"] if s["key"] == "notice")
    del notice["min_gap"]

    with pytest.raises(ValidationError, match="step notice: a Danish reminder after the first needs min_gap"):
        DunningPlan.model_validate(data)


def test_a_negative_gap_is_refused() -> None:
    with pytest.raises(ValidationError, match="step notice: min_gap must be >= 0, got -1 day"):
        PlanStep(key="notice", kind=StepKind.QUALIFIED_NOTICE, offset=14 * DAY, channels=[Channel.LETTER], min_gap=-DAY)


# --- the real workflow ----------------------------------------------------------------------------


async def test_a_case_opened_thirty_days_after_the_due_date_sends_reminder_and_notice_a_week_apart(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, "K-LATE-1", premiums=[("P-LATE-1", today - 30 * DAY, 9_000)])

    handle = await open_case(time_env, settings.task_queue, "K-LATE-1", "P-LATE-1")
    case = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.NOTICE_SENT, step=timedelta(hours=3))

    done = {record.key: record.at for record in case.steps_done}
    assert done["notice"] - done["reminder"] >= 7 * DAY
    assert done["notice"] - done["reminder"] < 7 * DAY + 4 * DAY  # then the next dispatch moment, not later
    sent_at = {m.kind: m.created_at for m in messages(engine, "K-LATE-1")}
    assert sent_at["qualified_notice"] - sent_at["reminder"] >= 7 * DAY
