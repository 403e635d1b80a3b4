"""Working days, legal deadlines (§193 BGB) and calendar arithmetic (§188 BGB). Pure: the dates
come in as arguments. The one home of `add_months` and `add_years`."""

from __future__ import annotations

from calendar import monthrange
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from models.messages import Channel
from models.plan import DunningPlan


def add_months(day: date, months: int) -> date:
    """`day` plus whole months, the way §188(2), (3) BGB ends a period of months: on the day with
    the same number, or on the month's last day when it has no such day (31 January + 1 = 28/29
    February). The one implementation: instalments, the termination's cure month and the court's
    six-month limit all use it."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def add_years(day: date, years: int) -> date:
    """`day` plus whole years; 29 February becomes 28 February in a year without it."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@lru_cache(maxsize=64)
def _holidays(country: str, subdivision: str | None, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision or None, years=year)


def is_working_day(day: date, country: str = "DE", subdivision: str | None = None) -> bool:
    """Saturdays, Sundays and public holidays (nation-wide plus the state's) are not working days."""
    return day.weekday() < 5 and day not in _holidays(country, subdivision, day.year)


def next_working_day(day: date, country: str = "DE", subdivision: str | None = None) -> date:
    """`day` itself if it is a working day, else the next one (§193 BGB)."""
    while not is_working_day(day, country, subdivision):
        day += timedelta(days=1)
    return day


DISPATCH_FROM = time(8)  # letters, e-mails, SMS and agent tasks go out on working days 08:00–20:00
DISPATCH_UNTIL = time(20)


def dispatch_moment(moment: datetime, tz: str, country: str = "DE") -> datetime:
    """The first moment at or after `moment` when the insurer sends: a working day between 08:00
    and 20:00 local time. A step due at midnight on a Saturday goes out on Monday at 08:00 (or
    later, after a holiday); daylight-saving changes are handled by the time zone."""
    zone = ZoneInfo(tz)
    local = moment.astimezone(zone)
    day = local.date() + timedelta(days=1 if local.time() >= DISPATCH_UNTIL else 0)
    working = next_working_day(day, country)
    if working == local.date() and DISPATCH_FROM <= local.time() < DISPATCH_UNTIL:
        return moment
    return datetime.combine(working, DISPATCH_FROM, tzinfo=zone)


def start_of_day(day: date, tz: str) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(tz))


def local_date(moment: datetime, tz: str) -> date:
    return moment.astimezone(ZoneInfo(tz)).date()


def end_of_day(day: date, tz: str) -> datetime:
    """A period whose last day is `day` runs until midnight after it, local time (§188(1) BGB)."""
    return start_of_day(day + timedelta(days=1), tz)


def add_working_days(day: date, count: int, country: str = "DE", subdivision: str | None = None) -> date:
    """The `count`-th working day after `day` (`day` itself is not counted, whatever it is);
    `count` 0 is `day` itself. Friday + 3 is Wednesday; Maundy Thursday + 3 is the Thursday after
    Easter (Good Friday and Easter Monday are holidays)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    for _ in range(count):
        day = next_working_day(day + timedelta(days=1), country, subdivision)
    return day


def expected_receipt(
    plan: DunningPlan, dispatched_at: datetime, channel: Channel, subdivision: str | None = None
) -> date:
    """The day the customer is expected to receive a message sent at `dispatched_at`.

    Why working days: since the 2025 postal reform the delivery target for a letter is the third
    working day after posting (the old rule, three calendar days, had a Friday letter arrive on
    Monday, which the post no longer promises). Counting later than the post does is the safe side:
    a deadline computed from a receipt that is too early would be too short and the notice void.
    Holidays are nation-wide plus the customer's state (`subdivision`), where the letter arrives.
    Demo plans count the exact `receipt_delay` instead (minutes, no calendar).
    """
    if plan.demo:
        return local_date(dispatched_at + plan.receipt_delay.get(channel, timedelta(0)), plan.timezone)
    return add_working_days(
        local_date(dispatched_at, plan.timezone),
        plan.receipt_working_days.get(channel, 0),
        plan.holiday_country,
        subdivision,
    )


def notice_deadline(
    plan: DunningPlan, dispatched_at: datetime, channel: Channel, subdivision: str | None = None
) -> tuple[date, datetime]:
    """The payment deadline of a qualified notice: (date printed on it, moment it expires).

    §38(1) VVG gives the customer at least two weeks *from receipt*, so the deadline is the expected
    receipt (see `expected_receipt`) + the plan's payment period, moved to the next working day when
    it ends on a weekend or holiday (§193 BGB). It expires at the end of that day, local time.
    Demo plans count exact minutes and skip the calendar.
    """
    if plan.demo:
        moment = dispatched_at + plan.receipt_delay.get(channel, timedelta(0)) + plan.payment_period
        return local_date(moment, plan.timezone), moment
    receipt = expected_receipt(plan, dispatched_at, channel, subdivision)
    last_day = next_working_day(receipt + timedelta(days=plan.payment_period.days), plan.holiday_country, subdivision)
    return last_day, end_of_day(last_day, plan.timezone)


def termination_cure_deadline(
    plan: DunningPlan, dispatched_at: datetime, channel: Channel, subdivision: str | None = None
) -> tuple[date, datetime]:
    """Until when paying everything voids a §38(3) VVG termination: (date printed, moment it expires).

    The termination is a declaration the customer must receive; it takes effect on receipt, and the
    one-month cure period (§38(3) sentence 3 VVG) runs from then: expected receipt + one month
    (§188(2) BGB: the same day number, or the month's last day), moved to the next working day
    (§193 BGB), expiring at the end of that day. Demo plans: dispatch + receipt delay + the plan's
    payment period, in exact minutes, so a person watching the demo sees the cure period end.
    """
    if plan.demo:
        moment = dispatched_at + plan.receipt_delay.get(channel, timedelta(0)) + plan.payment_period
        return local_date(moment, plan.timezone), moment
    receipt = expected_receipt(plan, dispatched_at, channel, subdivision)
    last_day = next_working_day(add_months(receipt, 1), plan.holiday_country, subdivision)
    return last_day, end_of_day(last_day, plan.timezone)
