"""The insurer's time zone: the one place "Europe/Berlin" is written.

It decides which calendar day a moment belongs to wherever the business counts in days: the
ledger's dates (what is overdue today), the morning sweep and its Schedule, court periods, the
campaign's quiet hours, staff screens and the CLI. A dunning plan carries its own zone
(`DunningPlan.timezone`, this one by default) and every step of a case counts in the plan's zone.

A plain constant, not a setting: workflow code reads it, and a workflow must compute the same
dates on every replay, on every worker, whatever that machine's environment says.
"""

from __future__ import annotations

from datetime import UTC, datetime

BUSINESS_TIMEZONE = "Europe/Berlin"


def as_utc(moment: datetime) -> datetime:
    """The ledger stores UTC; SQLite hands it back without a zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
