"""Instalment plans: a schedule over the whole open balance, checked before it is agreed, and the
question the case asks at each instalment date: is the customer on track?"""

from __future__ import annotations

from datetime import date

from core.calendar import add_months
from core.limits import MAX_INSTALMENT_SPAN, MAX_INSTALMENTS, MIN_INSTALMENTS
from models.case import Instalment


def equal_instalments(total_cents: int, count: int, first_due: date) -> list[Instalment]:
    """`count` monthly instalments from `first_due`; the cents that do not divide go to the first."""
    if count < 1 or total_cents < count:
        raise ValueError(f"cannot split {total_cents} cents into {count} instalments")
    share, rest = divmod(total_cents, count)
    return [
        Instalment(due=add_months(first_due, i), amount_cents=share + (rest if i == 0 else 0)) for i in range(count)
    ]


def schedule_problem(schedule: list[Instalment], balance_cents: int, today: date) -> str | None:
    """Why this schedule cannot be agreed, or None."""
    if not MIN_INSTALMENTS <= len(schedule) <= MAX_INSTALMENTS:
        return (
            f"an instalment plan has {MIN_INSTALMENTS}..{MAX_INSTALMENTS} instalments, got {len(schedule)} "
            "(one date: promise to pay)"
        )
    if any(i.amount_cents <= 0 for i in schedule):
        return "every instalment must be more than 0 cents"
    dates = [i.due for i in schedule]
    if dates != sorted(set(dates)):
        return "instalment dates must be strictly increasing"
    if dates[0] < today:
        return f"the first instalment must be due today or later ({today}), got {dates[0]}"
    if dates[-1] - today > MAX_INSTALMENT_SPAN:
        return f"the last instalment must be due within a year, got {dates[-1]}"
    total = sum(i.amount_cents for i in schedule)
    if total != balance_cents:
        return f"instalments add up to {total} cents, the open balance is {balance_cents} cents: they must be equal"
    return None


def due_so_far(schedule: list[Instalment], index: int) -> int:
    """What the customer must have paid once instalment `index` (0-based) has fallen due."""
    return sum(i.amount_cents for i in schedule[: index + 1])
