"""Plans are data, and the law is checked on the data: the German first-premium plan (§37 VVG)
and the Danish plan (renteloven §9b) are refused when a step breaks their rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from models.messages import Channel
from models.plan import DK_FEE_CAP_CENTS, Anchor, DunningPlan, LegalBasis, PlanStep, StepKind
from models.plans import BUILTIN_PLANS

D = timedelta(days=1)


def dk_plan(**changes: Any) -> dict[str, Any]:
    plan = BUILTIN_PLANS["dk-follow-up"].model_dump()
    plan.update(changes)
    return plan


def steps_of(plan_id: str) -> list[dict[str, Any]]:
    return [s.model_dump() for s in BUILTIN_PLANS[plan_id].steps]


def test_the_new_plans_are_built_in_with_their_legal_basis() -> None:
    assert BUILTIN_PLANS["de-first-premium"].legal_basis == LegalBasis.FIRST_PREMIUM
    dk = BUILTIN_PLANS["dk-follow-up"]
    assert (dk.legal_basis, dk.currency, dk.language, dk.holiday_country) == (LegalBasis.DENMARK, "DKK", "da", "DK")
    reminders = [s for s in dk.steps if s.kind in {StepKind.REMINDER, StepKind.QUALIFIED_NOTICE, StepKind.PAY_LINK_SMS}]
    assert len(reminders) == 3
    assert all(b.offset - a.offset >= 10 * D for a, b in zip(reminders, reminders[1:], strict=False))


def test_a_danish_reminder_fee_above_100_dkk_is_refused() -> None:
    steps = steps_of("dk-follow-up")
    steps[1]["fees_cents"] = {Channel.LETTER: DK_FEE_CAP_CENTS + 1}
    with pytest.raises(ValidationError, match=r"100\.01 DKK, the cap is 100\.00 DKK"):
        DunningPlan.model_validate(dk_plan(steps=steps))


def test_a_fourth_danish_reminder_is_refused() -> None:
    steps = steps_of("dk-follow-up")
    steps.append(PlanStep(key="fourth", kind=StepKind.REMINDER, offset=60 * D, channels=[Channel.EMAIL]).model_dump())
    with pytest.raises(ValidationError, match="at most 3 reminders for the same debt"):
        DunningPlan.model_validate(dk_plan(steps=steps))


def test_danish_reminders_closer_than_ten_days_are_refused() -> None:
    steps = steps_of("dk-follow-up")
    steps[1]["offset"] = 12 * D  # 3 days → 12 days: 9 days apart
    with pytest.raises(ValidationError, match="reminder → notice: reminders must be at least 10 days apart"):
        DunningPlan.model_validate(dk_plan(steps=steps))


def test_a_danish_reminder_timed_from_the_deadline_is_refused() -> None:
    steps = steps_of("dk-follow-up")
    sms = next(s for s in steps if s["key"] == "sms")
    sms["after"], sms["offset"] = Anchor.DEADLINE, 2 * D
    with pytest.raises(ValidationError, match="count from the due date"):
        DunningPlan.model_validate(dk_plan(steps=steps))


def test_a_danish_plan_books_in_kroner() -> None:
    with pytest.raises(ValidationError, match="books in DKK, got EUR"):
        DunningPlan.model_validate(dk_plan(currency="EUR"))


def test_a_first_premium_plan_has_nothing_to_suspend() -> None:
    plan = BUILTIN_PLANS["de-first-premium"].model_dump()
    plan["steps"].insert(
        2, PlanStep(key="suspend", kind=StepKind.SUSPEND_COVER, after=Anchor.DEADLINE, offset=timedelta(0)).model_dump()
    )
    with pytest.raises(ValidationError, match="no suspend_cover step"):
        DunningPlan.model_validate(plan)


def test_a_first_premium_plan_needs_its_separate_notice() -> None:
    plan = BUILTIN_PLANS["de-first-premium"].model_dump()
    plan["steps"] = [s for s in plan["steps"] if s["kind"] == StepKind.REMINDER]
    with pytest.raises(ValidationError, match="separate §37 notice"):
        DunningPlan.model_validate(plan)


def test_the_german_plans_keep_the_two_week_minimum() -> None:
    for plan_id in ("de-follow-up", "de-first-premium"):
        plan = BUILTIN_PLANS[plan_id].model_dump() | {"payment_period": 13 * D}
        with pytest.raises(ValidationError, match="at least 14 days"):
            DunningPlan.model_validate(plan)


def test_a_termination_only_follows_the_deadline_of_a_follow_up_premium_notice() -> None:
    plan = BUILTIN_PLANS["de-follow-up-terminate"].model_dump()
    terminate = next(s for s in plan["steps"] if s["key"] == "terminate")
    assert terminate["kind"] == StepKind.TERMINATION
    terminate["after"], terminate["offset"] = Anchor.DUE, 30 * D
    with pytest.raises(ValidationError, match="may only follow the notice deadline"):
        DunningPlan.model_validate(plan)

    first = BUILTIN_PLANS["de-first-premium"].model_dump()
    first["steps"].append(
        PlanStep(key="terminate", kind=StepKind.TERMINATION, after=Anchor.DEADLINE, offset=30 * D).model_dump()
    )
    with pytest.raises(ValidationError, match="follow-up premiums only"):
        DunningPlan.model_validate(first)

    twice = BUILTIN_PLANS["de-follow-up-terminate"].model_dump()
    twice["steps"].append({**terminate, "key": "terminate_again", "after": Anchor.DEADLINE, "offset": 40 * D})
    with pytest.raises(ValidationError, match="at most one termination step"):
        DunningPlan.model_validate(twice)
