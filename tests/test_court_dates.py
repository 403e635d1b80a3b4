"""Court periods end on the next working day after weekends *and public holidays* (§222(2) ZPO,
issue #7): nation-wide holidays plus those of the court's state. Pure rules first, then the court
dunning workflow on the time-skipping server, whose objection-window timer must wait for them."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.calendar import add_months, next_working_day
from core.court_dates import (
    enforcement_objection_last_day,
    enforcement_order_last_day,
    objection_last_day,
    period_end,
    period_end_weekends_only,
    title_limitation,
)
from infra.config import Settings
from models.court import CourtRules, CourtState
from tests.conftest import settle
from tests.histories.record_court import serve_before_a_holiday, start_filed_court
from workflows.court import CourtDunning

BERLIN = ZoneInfo("Europe/Berlin")


def midnight_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("last_day", "ends_after"),
    [
        (date(2026, 4, 3), date(2026, 4, 7)),  # Good Friday → Tuesday after Easter Monday
        (date(2026, 4, 6), date(2026, 4, 7)),  # Easter Monday
        (date(2025, 10, 3), date(2025, 10, 6)),  # German Unity Day, a Friday → Monday
        (date(2024, 10, 3), date(2024, 10, 4)),  # German Unity Day, a Thursday → Friday
        (date(2026, 12, 25), date(2026, 12, 28)),  # Christmas Day, Boxing Day, Sunday → Monday
        (date(2026, 5, 1), date(2026, 5, 4)),  # Labour Day, a Friday
        (date(2026, 4, 8), date(2026, 4, 8)),  # an ordinary Wednesday stays
    ],
)
def test_a_court_period_ending_on_a_nation_wide_holiday_runs_to_the_end_of_the_next_working_day(
    last_day: date, ends_after: date
) -> None:
    assert period_end(last_day) == midnight_after(ends_after)


def test_a_state_holiday_extends_the_period_only_at_a_court_in_that_state() -> None:
    corpus_christi = date(2026, 6, 4)  # Thursday; a holiday in NW and BY, not in Berlin or Hamburg

    assert period_end(corpus_christi, "NW") == midnight_after(date(2026, 6, 5))
    assert period_end(corpus_christi, "HH") == midnight_after(corpus_christi)
    assert period_end(corpus_christi) == midnight_after(corpus_christi)  # court's state unknown


def test_reformation_day_extends_a_period_in_brandenburg_but_not_in_bavaria() -> None:
    reformation_day = date(2025, 10, 31)  # Friday

    assert period_end(reformation_day, "BB") == midnight_after(date(2025, 11, 3))
    assert period_end(reformation_day, "BY") == midnight_after(reformation_day)


def test_the_six_month_limit_for_the_enforcement_order_moves_past_a_holiday_too() -> None:
    served_on = date(2025, 11, 1)  # + six months = Friday 1 May 2026, Labour Day (§701 ZPO)

    assert period_end(add_months(served_on, 6)) == midnight_after(date(2026, 5, 4))


def test_the_court_periods_count_from_service_two_weeks_and_six_months_clamped_to_the_month_end() -> None:
    rules = CourtRules()
    served_on = date(2025, 8, 31)

    assert objection_last_day(served_on, rules) == date(2025, 9, 14)
    assert enforcement_order_last_day(served_on, rules) == date(2026, 2, 28)  # no 31 February (§188(3) BGB)
    assert enforcement_objection_last_day(date(2026, 3, 2), rules) == date(2026, 3, 16)


def test_a_final_title_lasts_thirty_years_and_a_leap_day_title_ends_on_28_february() -> None:
    assert title_limitation(date(2026, 5, 4)) == date(2056, 5, 4)
    assert title_limitation(date(2028, 2, 29)) == date(2058, 2, 28)


def test_the_old_weekends_only_rule_ignores_holidays_so_old_histories_replay() -> None:
    good_friday = date(2026, 4, 3)

    assert period_end_weekends_only(good_friday) == midnight_after(good_friday)
    assert period_end_weekends_only(date(2026, 4, 4)) == midnight_after(date(2026, 4, 6))  # Saturday → Monday


def test_a_period_ends_at_midnight_berlin_in_summer_and_winter_time() -> None:
    assert period_end(date(2026, 7, 1)).utcoffset() == timedelta(hours=2)
    assert period_end(date(2026, 1, 7)).utcoffset() == timedelta(hours=1)


async def test_the_objection_window_ending_on_a_holiday_stays_open_until_the_next_working_day(
    time_env: WorkflowEnvironment, worker: Worker, settings: Settings
) -> None:
    court = await start_filed_court(time_env, settings.task_queue, f"court-{uuid.uuid4().hex[:8]}/court", "NW")
    try:
        served_on, holiday = await serve_before_a_holiday(time_env, court)
        last_working_day = next_working_day(holiday, subdivision="NW")

        data = await court.query(CourtDunning.status)
        assert (data.state, data.served_on, data.court_state) == (CourtState.SERVED, served_on, "NW")
        assert data.objection_window_ends == midnight_after(last_working_day)

        # The holiday has ended: before the fix the window closed here, now it is still open.
        await time_env.sleep(midnight_after(holiday) + timedelta(hours=1) - await time_env.get_current_time())
        assert (await court.query(CourtDunning.status)).state == CourtState.SERVED

        await time_env.sleep(midnight_after(last_working_day) + timedelta(hours=1) - await time_env.get_current_time())
        assert (await court.query(CourtDunning.status)).state == CourtState.ENFORCEMENT_ORDER_DUE
    finally:
        await settle(time_env.client, court.id)
        await court.terminate("test finished")
