"""Default interest (Verzugszinsen, §288 BGB). Pure: dates and the rate table come in.

Rule (DOMAIN.md §3): interest = principal × (base rate + margin) × days / 365, act/365, the
first day of default counted and the payment day not, split at every base-rate change. One
rounding convention: each period is rounded half-up to the cent once, when it is computed;
the total is the sum of the rounded periods (so every line a customer sees adds up).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from models.ledger import CustomerKind
from models.rates import BaseRateTable

MARGIN_PERCENT = {CustomerKind.CONSUMER: Decimal(5), CustomerKind.BUSINESS: Decimal(9)}  # §288(1), (2)
BUSINESS_FLAT_FEE_CENTS = 4000  # §288(5): 40 EUR when the debtor is not a consumer


@dataclass(frozen=True)
class InterestPeriod:
    start: date  # first day counted
    end: date  # first day not counted (the payment day, or the next rate change)
    rate_percent: Decimal  # base rate + margin
    cents: int

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def default_interest(
    principal_cents: int, default_from: date, paid_on: date, kind: CustomerKind, table: BaseRateTable
) -> list[InterestPeriod]:
    """Interest on `principal_cents` from `default_from` (counted) to `paid_on` (not counted)."""
    if principal_cents < 0:
        raise ValueError(f"principal_cents must be >= 0, got {principal_cents}")
    if paid_on < default_from:
        raise ValueError(f"paid_on {paid_on} must not be before default_from {default_from}")
    bounds = [default_from, *table.changes_between(default_from, paid_on), paid_on]
    periods = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        if end == start:
            continue
        rate = table.rate_on(start) + MARGIN_PERCENT[kind]
        exact = Decimal(principal_cents) * rate / 100 * (end - start).days / 365
        cents = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        periods.append(InterestPeriod(start, end, rate, max(cents, 0)))
    return periods


def total_cents(periods: list[InterestPeriod]) -> int:
    return sum(p.cents for p in periods)
