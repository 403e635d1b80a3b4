"""When a letter arrives, and the deadlines that count from it (issue #10).

Since the 2025 postal reform the delivery target for a letter is the third *working* day after
posting: a letter posted on a Friday is expected on Wednesday, not on Monday. The §38 notice deadline
(two weeks from receipt, §38(1) VVG) and the one-month cure period of a §38(3) termination both count
from that expected receipt, then move to the next working day (§193 BGB). Pure: no clock, no I/O.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.calendar import expected_receipt, is_working_day, notice_deadline, termination_cure_deadline
from models.messages import Channel
from models.plan import DunningPlan
from models.plans import get_plan

BERLIN = ZoneInfo("Europe/Berlin")
E, L = Channel.EMAIL, Channel.LETTER
DAY = timedelta(days=1)
GERMAN_STATES = ["BB", "BE", "BW", "BY", "HB", "HE", "HH", "MV", "NI", "NW", "RP", "SH", "SL", "SN", "ST", "TH"]


def berlin(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=BERLIN)


# --- expected receipt ------------------------------------------------------------------------------


def test_a_letter_posted_on_friday_is_expected_on_wednesday() -> None:
    plan = get_plan("de-follow-up")
    friday = date(2026, 1, 9)

    assert expected_receipt(plan, berlin(friday), L) == date(2026, 1, 14)


def test_a_friday_notice_letter_gives_two_weeks_from_wednesday_not_from_monday() -> None:
    plan = get_plan("de-follow-up")

    last_day, expires = notice_deadline(plan, berlin(date(2026, 1, 9)), L)

    # receipt Wednesday 14.1., + 14 days = Wednesday 28.1. (the old calendar rule printed Monday 26.1.)
    assert last_day == date(2026, 1, 28)
    assert expires == datetime(2026, 1, 29, 0, 0, tzinfo=BERLIN)


def test_a_letter_posted_on_maundy_thursday_is_expected_the_thursday_after_easter() -> None:
    plan = get_plan("de-follow-up")
    maundy_thursday = date(2026, 4, 2)  # Good Friday 3.4., Easter Monday 6.4. are holidays everywhere

    assert expected_receipt(plan, berlin(maundy_thursday), L) == date(2026, 4, 9)
    assert notice_deadline(plan, berlin(maundy_thursday), L)[0] == date(2026, 4, 23)


def test_a_letter_posted_before_christmas_is_expected_after_the_holidays() -> None:
    plan = get_plan("de-follow-up")
    # Thu 24.12. is a working day; 25./26. are holidays, 27. a Sunday
    assert expected_receipt(plan, berlin(date(2026, 12, 23)), L) == date(2026, 12, 29)


def test_a_state_holiday_delays_receipt_only_in_that_state() -> None:
    plan = get_plan("de-follow-up")
    tuesday = berlin(date(2026, 6, 2))  # Corpus Christi, Thu 4.6., is a holiday in NW, not in Berlin

    assert expected_receipt(plan, tuesday, L, "NW") == date(2026, 6, 8)
    assert expected_receipt(plan, tuesday, L, "BE") == date(2026, 6, 5)


def test_an_email_is_received_on_the_berlin_day_it_is_sent() -> None:
    plan = get_plan("de-follow-up")
    late_evening_utc = datetime(2026, 1, 9, 23, 30, tzinfo=UTC)  # already Saturday 10.1. in Berlin

    assert expected_receipt(plan, late_evening_utc, E) == date(2026, 1, 10)


@pytest.mark.parametrize("channel", [L, E])
def test_a_demo_plan_receipt_is_dispatch_plus_the_exact_delay(channel: Channel) -> None:
    plan = get_plan("demo").model_copy(update={"receipt_delay": {L: timedelta(minutes=2), E: timedelta(0)}})
    dispatched = datetime(2026, 12, 24, 23, 59, tzinfo=BERLIN)

    expected = (dispatched + plan.receipt_delay[channel]).astimezone(BERLIN).date()
    assert expected_receipt(plan, dispatched, channel) == expected


def test_receipt_working_days_must_not_be_negative() -> None:
    data = get_plan("de-follow-up").model_dump()
    data["receipt_working_days"] = {"letter": -1}

    with pytest.raises(ValueError, match="receipt_working_days for letter must be >= 0, got -1"):
        DunningPlan.model_validate(data)


# --- the one-month cure period of a termination (§38(3) VVG) ---------------------------------------


def test_the_cure_month_counts_from_the_expected_receipt_of_the_termination_letter() -> None:
    plan = get_plan("de-follow-up-terminate")

    last_day, expires = termination_cure_deadline(plan, berlin(date(2026, 1, 9)), L)

    # receipt Wednesday 14.1., + one month = Saturday 14.2. → Monday 16.2., expiring at its end
    assert last_day == date(2026, 2, 16)
    assert expires == datetime(2026, 2, 17, 0, 0, tzinfo=BERLIN)


def test_a_cure_month_from_the_end_of_january_ends_on_the_last_day_of_february() -> None:
    plan = get_plan("de-follow-up-terminate")
    # posted Tue 27.1.2026 → receipt Fri 30.1. → + one month = (no 30 February) Sat 28.2. → Mon 2.3.
    last_day, _ = termination_cure_deadline(plan, berlin(date(2026, 1, 27)), L)

    assert last_day == date(2026, 3, 2)


def test_a_demo_plan_cure_period_is_exact_minutes() -> None:
    plan = get_plan("demo")
    dispatched = datetime(2026, 12, 24, 23, 59, tzinfo=BERLIN)

    last_day, expires = termination_cure_deadline(plan, dispatched, L)

    assert expires == dispatched + plan.receipt_delay[L] + plan.payment_period
    assert last_day == expires.astimezone(BERLIN).date()


# --- properties --------------------------------------------------------------------------------------


def working_days_between(after: date, until: date, subdivision: str) -> int:
    """Working days d with after < d <= until, counted one by one (independent of the engine)."""
    return sum(is_working_day(after + n * DAY, subdivision=subdivision) for n in range(1, (until - after).days + 1))


@settings(max_examples=200, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)),
    channel=st.sampled_from([L, E]),
    state=st.sampled_from(GERMAN_STATES),
)
def test_the_printed_deadline_is_a_working_day_two_weeks_or_more_after_a_receipt_the_post_can_make(
    moment: datetime, channel: Channel, state: str
) -> None:
    plan = get_plan("de-follow-up")
    dispatch_day = moment.astimezone(BERLIN).date()

    receipt = expected_receipt(plan, moment, channel, state)
    last_day, expires = notice_deadline(plan, moment, channel, state)

    assert last_day >= receipt + timedelta(days=14)
    assert is_working_day(last_day, subdivision=state)
    assert expires == datetime.combine(last_day + DAY, time.min, tzinfo=BERLIN)
    if channel == L:
        assert is_working_day(receipt, subdivision=state)
        assert working_days_between(dispatch_day, receipt, state) >= 3
    else:
        assert receipt == dispatch_day


@settings(max_examples=100, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)),
    state=st.sampled_from(GERMAN_STATES),
)
def test_the_cure_month_ends_on_a_working_day_at_least_a_month_after_receipt(moment: datetime, state: str) -> None:
    plan = get_plan("de-follow-up-terminate")

    receipt = expected_receipt(plan, moment, L, state)
    last_day, _ = termination_cure_deadline(plan, moment, L, state)

    assert is_working_day(last_day, subdivision=state)
    assert receipt + timedelta(days=28) <= last_day <= receipt + timedelta(days=31 + 5)
