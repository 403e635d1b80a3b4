"""Dates of the court dunning procedure (Mahnverfahren, §§688ff ZPO; DOMAIN.md §5). Pure: every
date comes in as an argument; the holiday calendar is data shipped with the `holidays` package.

Court periods (objection, Einspruch, the six-month limit for the enforcement order) end on the
next working day when their last day is a Saturday, Sunday or public holiday (§222(2) ZPO). The
holidays that count are those at the court: nation-wide ones plus those of the court's state. The
insurer's applications go to one central dunning court (Zentrales Mahngericht); its state is a
setting (`court_state`), unknown means nation-wide holidays only.
"""

from __future__ import annotations

from datetime import date, datetime

from core.calendar import end_of_day, next_working_day

COURT_TIMEZONE = "Europe/Berlin"
COURT_COUNTRY = "DE"
TITLE_YEARS = 30  # §197(1) Nr. 3 BGB
REGULAR_YEARS = 3  # §195 BGB


def add_years(day: date, years: int) -> date:
    """`day` plus whole years; 29 February becomes 28 February in a year without it."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def initial_limitation(oldest_due: date) -> date:
    """§§195, 199 BGB: three years from the end of the year the claim arose."""
    return date(oldest_due.year + REGULAR_YEARS, 12, 31)


def restarted_limitation(paid_on: date, titled: bool) -> date:
    """§212(1) Nr. 1 BGB: a partial payment acknowledges the claim; the period starts again."""
    return add_years(paid_on, TITLE_YEARS if titled else REGULAR_YEARS)


def period_end(last_day: date, court_state: str | None = None, tz: str = COURT_TIMEZONE) -> datetime:
    """The moment a court period whose last day is `last_day` ends: midnight after the next
    working day at the court (`last_day` itself when it is one), §222(2) ZPO.

    Why holidays and not only weekends: an objection filed on the Tuesday after Easter Monday is in
    time when the window's last day was Good Friday; treating the window as closed would issue an
    enforcement order against a debtor who objected in time.
    """
    return end_of_day(next_working_day(last_day, COURT_COUNTRY, court_state), tz)
