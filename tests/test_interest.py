"""Default interest (§288 BGB) and the base-rate table: exact to the cent, split at rate changes."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from core.interest import BUSINESS_FLAT_FEE_CENTS, default_interest, total_cents
from models.ledger import CustomerKind
from models.rates import DEFAULT_FILE, BaseRateTable, load_base_rates

TABLE = load_base_rates()


def test_the_shipped_table_holds_the_rates_of_domain_md() -> None:
    assert TABLE.rate_on(date(2023, 1, 1)) == Decimal("1.62")
    assert TABLE.rate_on(date(2024, 6, 30)) == Decimal("3.62")
    assert TABLE.rate_on(date(2025, 7, 1)) == Decimal("1.27")
    assert TABLE.rate_on(date(2026, 11, 22)) == Decimal("1.27")


def test_interest_is_split_at_a_base_rate_change_and_rounded_per_period() -> None:
    # 1,000.00 EUR, consumer, default from 1 June 2025, paid 1 August 2025.
    periods = default_interest(100_000, date(2025, 6, 1), date(2025, 8, 1), CustomerKind.CONSUMER, TABLE)
    assert [(p.start, p.end, p.days, p.rate_percent) for p in periods] == [
        (date(2025, 6, 1), date(2025, 7, 1), 30, Decimal("7.27")),
        (date(2025, 7, 1), date(2025, 8, 1), 31, Decimal("6.27")),
    ]
    # 100000 × 7.27% × 30/365 = 597.53… → 598; 100000 × 6.27% × 31/365 = 532.52… → 533
    assert [p.cents for p in periods] == [598, 533]
    assert total_cents(periods) == 1_131


def test_businesses_pay_nine_points_over_base_and_a_flat_fee() -> None:
    periods = default_interest(100_000, date(2026, 1, 1), date(2026, 1, 31), CustomerKind.BUSINESS, TABLE)
    assert [(p.days, p.rate_percent) for p in periods] == [(30, Decimal("10.27"))]
    assert periods[0].cents == 844  # 100000 × 10.27% × 30/365 = 844.11
    assert BUSINESS_FLAT_FEE_CENTS == 4_000


def test_the_payment_day_is_not_counted_and_no_days_means_no_interest() -> None:
    assert default_interest(100_000, date(2026, 3, 2), date(2026, 3, 2), CustomerKind.CONSUMER, TABLE) == []
    one_day = default_interest(100_000, date(2026, 3, 2), date(2026, 3, 3), CustomerKind.CONSUMER, TABLE)
    assert [(p.days, p.cents) for p in one_day] == [(1, 17)]  # 100000 × 6.27% / 365 = 17.18


def test_bad_input_is_rejected_with_the_value() -> None:
    with pytest.raises(ValueError, match="must not be before"):
        default_interest(100, date(2026, 3, 2), date(2026, 3, 1), CustomerKind.CONSUMER, TABLE)
    with pytest.raises(ValueError, match="-1"):
        default_interest(-1, date(2026, 3, 1), date(2026, 3, 2), CustomerKind.CONSUMER, TABLE)
    with pytest.raises(ValueError, match="no base rate known for 2022-12-31"):
        default_interest(100, date(2022, 12, 31), date(2023, 1, 5), CustomerKind.CONSUMER, TABLE)


@given(
    principal=st.integers(min_value=0, max_value=10_000_000),
    start=st.dates(min_value=date(2023, 1, 1), max_value=date(2026, 12, 31)),
    days=st.integers(min_value=0, max_value=1_500),
    kind=st.sampled_from(list(CustomerKind)),
)
def test_periods_are_contiguous_cover_every_day_once_and_never_round_more_than_half_a_cent(
    principal: int, start: date, days: int, kind: CustomerKind
) -> None:
    end = start + timedelta(days=days)
    periods = default_interest(principal, start, end, kind, TABLE)
    assert sum(p.days for p in periods) == days
    assert all(a.end == b.start for a, b in zip(periods, periods[1:], strict=False))
    for p in periods:
        exact = Decimal(principal) * p.rate_percent / 100 * p.days / 365
        assert abs(Decimal(p.cents) - exact) <= Decimal("0.5")
        assert p.rate_percent == TABLE.rate_on(p.start) + (5 if kind == CustomerKind.CONSUMER else 9)


def test_staff_can_extend_the_table_and_a_bad_entry_is_refused(tmp_path: Path) -> None:
    raw = json.loads(DEFAULT_FILE.read_text(encoding="utf-8"))
    raw["rates"].append({"valid_from": "2026-07-01", "rate_percent": "1.52"})
    extended = BaseRateTable.model_validate(raw)
    assert extended.rate_on(date(2026, 8, 1)) == Decimal("1.52")
    with pytest.raises(ValidationError, match="1 January or 1 July"):
        BaseRateTable.model_validate({"rates": [{"valid_from": "2026-03-01", "rate_percent": "1.00"}]})
    with pytest.raises(ValidationError, match="ascending"):
        BaseRateTable.model_validate(
            {
                "rates": [
                    {"valid_from": "2026-07-01", "rate_percent": "1"},
                    {"valid_from": "2026-01-01", "rate_percent": "1"},
                ]
            }
        )
    with pytest.raises(ValidationError, match="decimal"):
        BaseRateTable.model_validate({"rates": [{"valid_from": "2026-01-01", "rate_percent": "1.234"}]})
