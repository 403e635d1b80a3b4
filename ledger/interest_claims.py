"""Claiming default interest in a notice, when the plan switches it on (`claim_interest`).

By default no notice claims interest (DOMAIN.md §2: never state an amount that could be too high).
A plan that claims it books, at the notice, the interest accrued on each open premium that no earlier
notice claimed, as ledger items of kind `interest` (so payments pay costs → interest → premium, §367
BGB, and the notice's total equals the ledger). The principal is what is open *now*: partial payments
made earlier only lower it, so the claim can come out too low, never too high. Business customers
also owe the 40 EUR flat fee (§288(5) BGB), claimed once per case.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from core.calendar import next_working_day
from core.interest import BUSINESS_FLAT_FEE_CENTS, default_interest, total_cents
from ledger import service
from models.ledger import CustomerKind, Fee
from models.rates import load_base_rates

FLAT_FEE_LABEL = "Verzugspauschale (§ 288 Abs. 5 BGB)"
FLAT_FEE_KEY_SUFFIX = ":flat-fee-288-5"


def flat_fee_key(case_id: str) -> str:
    """One flat fee per case: the key makes a second booking return the first."""
    return f"{case_id}{FLAT_FEE_KEY_SUFFIX}"


def flat_fees_booked(session: Session, contract_id: int) -> list[Fee]:
    """The §288(5) flat fees booked on a contract (any case, open, paid or written off), so that a
    later claim — the court application — can tell whether it is claimed already."""
    fees = session.exec(select(Fee).where(Fee.contract_id == contract_id).order_by(col(Fee.id)))
    return [f for f in fees if f.idempotency_key.endswith(FLAT_FEE_KEY_SUFFIX)]


def _percent(value: object) -> str:
    return f"{value:.2f}".replace(".", ",")


def claim_default_interest(
    session: Session, *, contract_number: str, case_id: str, key: str, as_of: date, at: datetime
) -> list[Fee]:
    contract = service.get_contract(session, contract_number, lock=True)
    customer = service.get_customer(session, contract)
    assert contract.id is not None
    table = load_base_rates()
    booked: list[Fee] = []
    for premium in service._open_premiums(session, contract.id, as_of):
        assert premium.id is not None
        step_key = f"{key}:interest:{premium.external_id}"
        done = session.exec(select(Fee).where(Fee.idempotency_key == step_key)).first()
        if done is not None:  # this notice step ran before (an activity retry): the same claim
            booked.append(done)
            continue
        default_from = next_working_day(premium.due_date, "DE", customer.state or None) + timedelta(days=1)
        if as_of <= default_from:
            continue
        periods = default_interest(premium.amount_cents - premium.paid_cents, default_from, as_of, customer.kind, table)
        unclaimed = total_cents(periods) - service.interest_claimed(session, premium.id)
        if unclaimed <= 0:
            continue
        rates = " / ".join(dict.fromkeys(_percent(p.rate_percent) for p in periods))
        label = (
            f"Verzugszinsen {service.period_label(premium)} ({rates} % p. a., "
            f"{default_from:%d.%m.%Y} bis {as_of - timedelta(days=1):%d.%m.%Y})"
        )
        booked.append(
            service.book_interest(
                session,
                key=step_key,
                premium=premium,
                case_id=case_id,
                label=label,
                amount_cents=unclaimed,
                at=at,
            )
        )
    if customer.kind == CustomerKind.BUSINESS and booked:
        booked.append(
            service.book_fee(
                session,
                key=flat_fee_key(case_id),
                contract_number=contract_number,
                case_id=case_id,
                label=FLAT_FEE_LABEL,
                amount_cents=BUSINESS_FLAT_FEE_CENTS,
                at=at,
            )
        )
    return booked
