"""A refund or dispute of a portal payment shared among several contracts (issue #14): each contract's
share is taken back on its own contract, never another's; a partial refund takes back shares from the
last booked to the first; repeats change nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Engine
from sqlmodel import select

from ledger import card_reversals, service
from ledger.db import session_scope
from models.ledger import Payment, Premium
from tests.conftest import seed_contract

DUE = date(2026, 11, 2)


def seeded(engine: Engine) -> None:
    seed_contract(engine, "K-1", premiums=[("K-1-P1", DUE, 10_000)])
    seed_contract(engine, "K-2", premiums=[("K-2-P1", DUE, 20_000)])
    with session_scope(engine) as session:
        for number, cents in (("K-1", 10_000), ("K-2", 20_000)):
            service.book_payment(
                session,
                contract_number=number,
                external_ref=f"stripe:pi_9:{number}",
                amount_cents=cents,
                received_at=datetime(2026, 11, 20, tzinfo=UTC),
                source="stripe",
            )


def open_cents(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        return {p.external_id: p.amount_cents - p.paid_cents for p in session.exec(select(Premium))}


def test_a_partial_refund_takes_back_the_last_share_first_and_keeps_the_rest(any_engine: Engine) -> None:
    seeded(any_engine)
    with session_scope(any_engine) as session:
        result = card_reversals.reverse_card_payment(session, "pi_9", 30_000, 5_000, "refund")
    assert result.changed and dict(result.shares) == {"K-1": ["K-1-P1"], "K-2": ["K-2-P1"]}
    assert open_cents(any_engine) == {"K-1-P1": 5_000, "K-2-P1": 20_000}  # 250 € back: 200 of K-2, 50 of K-1
    with session_scope(any_engine) as session:
        again = card_reversals.reverse_card_payment(session, "pi_9", 30_000, 5_000, "refund")
        kept = session.exec(select(Payment).where(Payment.external_ref == "stripe:pi_9:K-1:kept:5000")).one()
    assert not again.changed and kept.amount_cents == 5_000 and not kept.returned
    assert open_cents(any_engine) == {"K-1-P1": 5_000, "K-2-P1": 20_000}


def test_a_dispute_takes_back_every_share_on_its_own_contract(any_engine: Engine) -> None:
    seeded(any_engine)
    with session_scope(any_engine) as session:
        result = card_reversals.reverse_card_payment(session, "pi_9", 0, 0, "dispute")
    assert result.changed and result.contract_number == "K-1"
    assert open_cents(any_engine) == {"K-1-P1": 10_000, "K-2-P1": 20_000}
    with session_scope(any_engine) as session:
        assert all(p.returned and p.return_reason == "dispute" for p in session.exec(select(Payment)))
