"""The one rule for when a hold that waits for money ends (core/schedule.payment_hold_end): a
promise to pay, from staff or an agent, and each instalment of an instalment plan."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from core.schedule import payment_hold_end
from models.plans import get_plan

BERLIN = ZoneInfo("Europe/Berlin")


def test_a_promise_to_pay_holds_until_the_end_of_the_promised_day_in_the_plans_zone() -> None:
    plan = get_plan("de-follow-up")

    assert payment_hold_end(date(2026, 3, 10), plan) == datetime(2026, 3, 11, tzinfo=BERLIN)
    assert payment_hold_end(date(2026, 7, 10), plan).utcoffset() == timedelta(hours=2)  # summer time


def test_a_real_plan_ignores_now_so_a_promise_recorded_late_in_the_day_still_gets_the_whole_day() -> None:
    plan = get_plan("de-follow-up")
    late = datetime(2026, 3, 10, 21, 30, tzinfo=UTC)

    assert payment_hold_end(date(2026, 3, 10), plan, late) == payment_hold_end(date(2026, 3, 10), plan)


def test_a_demo_plan_ends_a_promise_one_grace_from_now_but_keeps_instalment_dates_real() -> None:
    plan = get_plan("demo")
    now = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)

    assert payment_hold_end(date(2026, 4, 1), plan, now) == now + plan.promise_grace == now + timedelta(minutes=1)
    assert payment_hold_end(date(2026, 4, 1), plan) == datetime(2026, 4, 1, tzinfo=BERLIN) + timedelta(minutes=1)
