"""Dates of the court dunning procedure (Mahnverfahren, §§688ff ZPO; DOMAIN.md §5). Pure: every
date comes in as an argument; the holiday calendar is data shipped with the `holidays` package.

Court periods (objection, Einspruch, the six-month limit for the enforcement order) end on the
next working day when their last day is a Saturday, Sunday or public holiday (§222(2) ZPO). The
holidays that count are those at the court: nation-wide ones plus those of the court's state. The
insurer's applications go to one central dunning court (Zentrales Mahngericht); its state is a
setting (`court_state`), unknown means nation-wide holidays only.

The court dunning workflow (workflows/court.py) only asks these functions; it decides nothing
about dates itself. Period lengths come from the court rules pinned in the case (`CourtRules`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from core.calendar import add_months, add_years, end_of_day, next_working_day, start_of_day
from core.timezone import BUSINESS_TIMEZONE
from models.court import CourtRules

COURT_TIMEZONE = BUSINESS_TIMEZONE  # the court is in Germany
COURT_COUNTRY = "DE"
TITLE_YEARS = 30  # §197(1) Nr. 3 BGB
REGULAR_YEARS = 3  # §195 BGB


def initial_limitation(oldest_due: date) -> date:
    """§§195, 199 BGB: three years from the end of the year the claim arose."""
    return date(oldest_due.year + REGULAR_YEARS, 12, 31)


def restarted_limitation(paid_on: date, titled: bool) -> date:
    """§212(1) Nr. 1 BGB: a partial payment acknowledges the claim; the period starts again."""
    return add_years(paid_on, TITLE_YEARS if titled else REGULAR_YEARS)


def title_limitation(final_on: date) -> date:
    """§197(1) Nr. 3 BGB: a final title lasts 30 years from the day it became final."""
    return add_years(final_on, TITLE_YEARS)


# The last day of each court period, counted from the event that starts it (§§187(1), 188 BGB:
# the day of service does not count, the period ends on the day with the same number).


def objection_last_day(served_on: date, rules: CourtRules) -> date:
    """Widerspruch against the payment order: two weeks from service (§692(1) Nr. 3 ZPO)."""
    return served_on + rules.objection_window


def enforcement_order_last_day(served_on: date, rules: CourtRules) -> date:
    """The enforcement order must be applied for within six months of service, or the payment
    order lapses (§701 ZPO)."""
    return add_months(served_on, rules.enforcement_order_limit_months)


def enforcement_objection_last_day(order_served_on: date, rules: CourtRules) -> date:
    """Einspruch against the enforcement order: two weeks from its service (§§700(1), 339(1) ZPO)."""
    return order_served_on + rules.enforcement_objection_window


def period_end(last_day: date, court_state: str | None = None, tz: str = COURT_TIMEZONE) -> datetime:
    """The moment a court period whose last day is `last_day` ends: midnight after the next
    working day at the court (`last_day` itself when it is one), §222(2) ZPO.

    Why holidays and not only weekends: an objection filed on the Tuesday after Easter Monday is in
    time when the window's last day was Good Friday; treating the window as closed would issue an
    enforcement order against a debtor who objected in time.
    """
    return end_of_day(next_working_day(last_day, COURT_COUNTRY, court_state), tz)


def period_end_weekends_only(last_day: date, tz: str = COURT_TIMEZONE) -> datetime:
    """The rule before public holidays counted (patch `court-periods-public-holidays` in
    workflows/court.py), kept only so that court dunnings served before it replay unchanged: a
    Saturday or Sunday moves the end to Monday, holidays do not."""
    while last_day.weekday() >= 5:
        last_day += timedelta(days=1)
    return start_of_day(last_day + timedelta(days=1), tz)
