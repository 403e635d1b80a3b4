"""What the engine accepts from outside, as reusable pydantic types (docs/input-rules.md).

Every request model of the web apps builds on these, so one rule holds everywhere: money is a JSON
integer (`true`, `"1250"` and `12.0` are refused, never coerced), dates and moments lie in a
sensible window (a premium due in year 1 or an abandonment in 9999 is refused before it reaches a
workflow timer), moments carry a time zone, and free text has no control characters. A refusal is
a 422 that names the field, the value and the rule; nothing is written.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, StrictInt

from core.limits import MAX_LEDGER_CENTS as MAX_LEDGER_CENTS
from core.limits import MAX_REQUEST_CENTS as MAX_REQUEST_CENTS

# --- money -------------------------------------------------------------------------------------

# The limits themselves are named in core/limits.py (the one place; workflow validators use them too).

Cents = Annotated[StrictInt, Field(gt=0, le=MAX_REQUEST_CENTS)]

# --- dates and moments -------------------------------------------------------------------------

# Business dates (premium periods and due dates, inspections): from 10 years back to 5 years ahead
# of today. Bank booking dates: 10 years back to 31 days ahead (banking/camt.py).
BUSINESS_DATE_PAST = timedelta(days=10 * 366)
BUSINESS_DATE_FUTURE = timedelta(days=5 * 366)
# Moments something happened (a payment received, a quote abandoned, a touchpoint, a mail event):
# at most 10 years ago, and not in the future beyond a little clock skew between systems.
MOMENT_PAST = timedelta(days=10 * 366)
CLOCK_SKEW = timedelta(hours=1)
# Moments asked about (coverage "at", report "as of"): anything a calendar can sensibly name.
EARLIEST_QUERY = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_QUERY = datetime(2200, 12, 31, 23, 59, 59, tzinfo=UTC)


def today_utc() -> date:
    return datetime.now(UTC).date()


def check_business_date(value: date) -> date:
    today = today_utc()
    earliest, latest = today - BUSINESS_DATE_PAST, today + BUSINESS_DATE_FUTURE
    if not earliest <= value <= latest:
        raise ValueError(f"date must lie between {earliest} and {latest} (10 years back, 5 ahead), got {value}")
    return value


def check_past_moment(value: datetime) -> datetime:
    """Something that happened: not in the future (beyond CLOCK_SKEW), not more than 10 years ago."""
    now = datetime.now(UTC)
    if value > now + CLOCK_SKEW:
        raise ValueError(f"moment must not be in the future (now is {now:%Y-%m-%dT%H:%M}Z), got {value.isoformat()}")
    if value < now - MOMENT_PAST:
        raise ValueError(f"moment must not be more than 10 years ago, got {value.isoformat()}")
    return value


def check_query_moment(value: datetime) -> datetime:
    if not EARLIEST_QUERY <= value <= LATEST_QUERY:
        raise ValueError(f"moment must lie between 1900-01-01 and 2200-12-31, got {value.isoformat()}")
    return value


def check_birth_date(value: date) -> date:
    """A person's date of birth: after 1900-01-01 and not in the future."""
    if not date(1900, 1, 1) <= value <= today_utc():
        raise ValueError(f"birth_date must be between 1900-01-01 and today, got {value}")
    return value


BirthDate = Annotated[date, AfterValidator(check_birth_date)]
BusinessDate = Annotated[date, AfterValidator(check_business_date)]
# AwareDatetime refuses a moment without a UTC offset ("timezone_aware" error, 422).
PastMoment = Annotated[AwareDatetime, AfterValidator(check_past_moment)]
QueryMoment = Annotated[AwareDatetime, AfterValidator(check_query_moment)]

# --- text --------------------------------------------------------------------------------------

# C0 and C1 control characters (NUL, ESC, CR, LF, …) and the bidirectional overrides that make a
# name display differently from how it is stored (U+202A–U+202E, U+2066–U+2069).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Multi-line text (reasons, notes) may hold line breaks and tabs, nothing else of the above.
CONTROL_EXCEPT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def control_character(text: str, multiline: bool = False) -> str | None:
    """The first forbidden character as U+XXXX, or None."""
    found = (CONTROL_EXCEPT_LINES if multiline else CONTROL).search(text)
    return f"U+{ord(found.group()):04X}" if found else None


def check_line(value: str) -> str:
    if (bad := control_character(value)) is not None:
        raise ValueError(f"text must not contain control characters, found {bad}")
    return value


def check_lines(value: str) -> str:
    if (bad := control_character(value, multiline=True)) is not None:
        raise ValueError(f"text must not contain control characters other than line breaks, found {bad}")
    return value


Line = Annotated[str, AfterValidator(check_line)]  # names, addresses, references, staff names
Lines = Annotated[str, AfterValidator(check_lines)]  # reasons and notes
