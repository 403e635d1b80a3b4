"""Working days and legal deadlines (§193 BGB). Pure: the dates come in as arguments."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from models.messages import Channel
from models.plan import DunningPlan


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


def notice_deadline(
    plan: DunningPlan, dispatched_at: datetime, channel: Channel, subdivision: str | None = None
) -> tuple[date, datetime]:
    """The payment deadline of a qualified notice: (date printed on it, moment it expires).

    Engine rule (DOMAIN.md §2): expected receipt (letter +3 days, e-mail same day) + payment
    period, moved to the next working day. The deadline expires at the end of that day.
    Demo plans count exact minutes and skip the calendar.
    """
    receipt = plan.receipt_delay.get(channel, timedelta(0))
    if plan.demo:
        moment = dispatched_at + receipt + plan.payment_period
        return local_date(moment, plan.timezone), moment
    receipt_day = local_date(dispatched_at, plan.timezone) + timedelta(days=receipt.days)
    last_day = next_working_day(
        receipt_day + timedelta(days=plan.payment_period.days), plan.holiday_country, subdivision
    )
    return last_day, start_of_day(last_day + timedelta(days=1), plan.timezone)
