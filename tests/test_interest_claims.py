"""A plan that claims default interest books it at the notice as ledger items of kind interest:
once per day of default (a later notice claims only what accrued since), paid after costs and
before the premium (§367 BGB), with the 40 EUR flat fee for business customers — on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Engine
from sqlmodel import select

from ledger import service
from ledger.db import session_scope
from ledger.interest_claims import claim_default_interest
from models.ledger import Allocation, CustomerKind, Fee
from models.plans import BUILTIN_PLANS
from tests.conftest import seed_contract

NEW_YEAR = date(2026, 1, 1)  # a holiday: default starts on 3 January (§§193, 286 BGB)


def claim(engine: Engine, as_of: date, key: str) -> list[tuple[str, int, str]]:
    with session_scope(engine) as session:
        fees = claim_default_interest(
            session,
            contract_number="K-1",
            case_id="dunning-K-1/1",
            key=key,
            as_of=as_of,
            at=datetime.combine(as_of, datetime.min.time(), tzinfo=UTC),
        )
        return [(f.kind, f.amount_cents, f.label) for f in fees]


def test_no_plan_claims_interest_unless_it_says_so() -> None:
    assert not any(plan.claim_interest for plan in BUILTIN_PLANS.values())


def test_interest_is_claimed_once_per_day_of_default_and_paid_before_the_premium(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", NEW_YEAR, 10_000)])
    # 3 Jan (counted) to 1 Mar (not counted): 57 days × 6.27 % (1.27 + 5) on 100.00 = 0.979 → 0.98
    first = claim(any_engine, date(2026, 3, 1), "case:notice")
    assert [(k, c) for k, c, _ in first] == [("interest", 98)]
    assert "6,27 % p. a., 03.01.2026 bis 28.02.2026" in first[0][2]
    assert claim(any_engine, date(2026, 3, 1), "case:notice") == first  # the same step again: nothing new
    # a supplementary notice on 31 Mar claims only what accrued since: 87 days → 1.49, minus 0.98
    assert [(k, c) for k, c, _ in claim(any_engine, date(2026, 3, 31), "case:notice_supplement_1")] == [
        ("interest", 51)
    ]
    with session_scope(any_engine) as session:
        assert service.arrears(session, "K-1", date(2026, 3, 31)).balance_cents == 10_000 + 98 + 51
        service.book_payment(
            session,
            contract_number="K-1",
            external_ref="pay-1",
            amount_cents=200,
            received_at=datetime(2026, 4, 1, 12, tzinfo=UTC),
            source="bank",
        )
        targets = [(a.target, a.amount_cents) for a in session.exec(select(Allocation))]
    assert targets == [("interest", 98), ("interest", 51), ("premium", 51)]


def test_business_customers_also_owe_the_flat_fee_once(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", NEW_YEAR, 10_000)])
    with session_scope(any_engine) as session:
        contract = service.get_contract(session, "K-1")
        customer = service.get_customer(session, contract)
        customer.kind = CustomerKind.BUSINESS
        session.add(customer)
    booked = claim(any_engine, date(2026, 3, 1), "case:notice")
    # 57 days × 10.27 % (1.27 + 9) on 100.00 = 1.604 → 1.60, and 40.00 once
    assert [(k, c) for k, c, _ in booked] == [("interest", 160), ("cost", 4_000)]
    again = claim(any_engine, date(2026, 3, 31), "case:notice_supplement_1")
    assert [k for k, _, _ in again].count("cost") == 1  # the same flat fee row, not a second one
    with session_scope(any_engine) as session:
        assert len(session.exec(select(Fee).where(Fee.kind == "cost")).all()) == 1


def test_nothing_is_claimed_before_default_starts(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", NEW_YEAR, 10_000)])
    assert claim(any_engine, date(2026, 1, 3), "case:notice") == []
