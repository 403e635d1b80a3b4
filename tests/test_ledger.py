"""The ledger service on a real, migrated database: SQLite always, PostgreSQL when
TEST_DATABASE_URL is set. Every operation is idempotent on its key and all-or-nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlmodel import Session, col, select

from ledger import service
from ledger.db import session_scope
from ledger.service import LedgerError, NotFound
from models.ledger import (
    AgentTask,
    Allocation,
    Contract,
    ContractStatus,
    ContractStatusChange,
    CourtApplication,
    Fee,
    Message,
    Payment,
    Premium,
    PremiumStatus,
)
from tests.conftest import seed_contract

JAN, FEB, MAR = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)
AT = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def pay(engine: Engine, ref: str, cents: int, contract: str = "K-1", at: datetime = AT, **kw: Any) -> Any:
    with session_scope(engine) as session:
        return service.book_payment(
            session, contract_number=contract, external_ref=ref, amount_cents=cents, received_at=at, source="bank", **kw
        )


def premium_row(engine: Engine, external_id: str) -> Premium:
    with session_scope(engine) as session:
        return service.get_premium(session, external_id)


def contract_row(engine: Engine, number: str = "K-1") -> Contract:
    with session_scope(engine) as session:
        return service.get_contract(session, number)


def counts(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        return {m.__name__: service.count_rows(session, m) for m in (Payment, Allocation, Premium, Fee)}


def add_fee(engine: Engine, key: str, cents: int = 150, contract: str = "K-1", at: datetime = AT) -> Fee:
    with session_scope(engine) as session:
        return service.book_fee(
            session,
            key=key,
            contract_number=contract,
            case_id=f"case-{contract}",
            label="Mahngebühr",
            amount_cents=cents,
            at=at,
        )


# --- premiums --------------------------------------------------------------------------------


def book(session: Session, external_id: str = "P-1", amount: int = 12_000, due: date = JAN, **kw: Any) -> Any:
    fields: dict[str, Any] = {
        "contract_number": "K-1",
        "period_start": due,
        "period_end": due.replace(day=28),
        "due_date": due,
    }
    fields.update(kw)
    return service.book_premium(session, external_id=external_id, amount_cents=amount, **fields)


def test_booking_the_same_premium_twice_keeps_one_row(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1")
    with session_scope(any_engine) as session:
        first, created = book(session)
    with session_scope(any_engine) as session:
        again, created_again = book(session)

    assert created is True and created_again is False
    assert again.id == first.id
    assert counts(any_engine)["Premium"] == 1


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 12_001},
        {"due_date": FEB},
        {"period_start": date(2025, 12, 1)},
        {"period_end": date(2026, 1, 15)},
        {"contract_number": "K-2"},
    ],
)
def test_a_premium_booked_again_with_different_data_is_a_conflict_and_changes_nothing(
    any_engine: Engine, change: dict[str, Any]
) -> None:
    seed_contract(any_engine, "K-1")
    seed_contract(any_engine, "K-2")
    with session_scope(any_engine) as session:
        book(session)
    before = premium_row(any_engine, "P-1").model_dump()

    conflict = pytest.raises(LedgerError, match="'P-1' was booked before with different data")
    with conflict, session_scope(any_engine) as session:
        book(session, **change)

    assert premium_row(any_engine, "P-1").model_dump() == before
    assert counts(any_engine)["Premium"] == 1


@pytest.mark.parametrize("amount", [0, -100])
def test_a_premium_of_zero_or_less_is_rejected(any_engine: Engine, amount: int) -> None:
    seed_contract(any_engine, "K-1")

    with pytest.raises(LedgerError, match=f"got {amount}"), session_scope(any_engine) as session:
        book(session, amount=amount)

    assert counts(any_engine)["Premium"] == 0


def test_a_premium_for_an_unknown_contract_is_rejected(any_engine: Engine) -> None:
    with pytest.raises(NotFound, match="'K-404'"), session_scope(any_engine) as session:
        book(session, contract_number="K-404")


# --- payments --------------------------------------------------------------------------------


def test_a_payment_goes_to_fees_first_then_to_the_oldest_premium(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-2", FEB, 12_000), ("P-1", JAN, 12_000)])
    fee = add_fee(any_engine, "fee-notice", 150, at=datetime(2026, 2, 10, tzinfo=UTC))

    result = pay(any_engine, "R-1", 17_150)

    assert result.booked and result.allocated_cents == 17_150 and result.credit_cents == 0
    assert result.balance_cents == 7_000
    with session_scope(any_engine) as session:
        allocations = session.exec(select(Allocation).order_by(col(Allocation.id))).all()
        p1, p2 = service.get_premium(session, "P-1"), service.get_premium(session, "P-2")
        assert [(a.target, a.target_id, a.amount_cents) for a in allocations] == [
            ("fee", fee.id, 150),
            ("premium", p1.id, 12_000),
            ("premium", p2.id, 5_000),
        ]
        assert session.get(Fee, fee.id).paid_cents == 150  # type: ignore[union-attr]
    assert (p1.status, p1.paid_cents) == (PremiumStatus.PAID, 12_000)
    assert (p2.status, p2.paid_cents) == (PremiumStatus.OPEN, 5_000)


def test_a_partial_payment_leaves_the_premium_open_with_what_was_paid(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", JAN, 12_000)])

    result = pay(any_engine, "R-1", 4_000)

    p1 = premium_row(any_engine, "P-1")
    assert (p1.status, p1.paid_cents) == (PremiumStatus.OPEN, 4_000)
    assert result.balance_cents == 8_000 and result.credit_cents == 0


def test_the_same_payment_reference_twice_books_once(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", JAN, 12_000)])

    first = pay(any_engine, "R-1", 15_000)
    again = pay(any_engine, "R-1", 15_000)

    assert first.booked is True and again.booked is False
    assert (again.allocated_cents, again.credit_cents, again.balance_cents) == (12_000, 3_000, 0)
    assert counts(any_engine)["Payment"] == 1
    assert counts(any_engine)["Allocation"] == 1
    assert premium_row(any_engine, "P-1").paid_cents == 12_000
    assert contract_row(any_engine).credit_cents == 3_000


def test_the_same_payment_reference_with_another_amount_is_a_conflict(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", JAN, 12_000)])
    pay(any_engine, "R-1", 5_000)

    with pytest.raises(LedgerError, match="'R-1' was booked before"):
        pay(any_engine, "R-1", 6_000)

    assert premium_row(any_engine, "P-1").paid_cents == 5_000
    assert counts(any_engine)["Payment"] == 1


def test_the_same_payment_reference_for_another_contract_is_a_conflict(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", JAN, 12_000)])
    seed_contract(any_engine, "K-2", premiums=[("P-2", JAN, 12_000)])
    pay(any_engine, "R-1", 5_000)

    with pytest.raises(LedgerError, match="another contract or amount"):
        pay(any_engine, "R-1", 5_000, contract="K-2")

    assert premium_row(any_engine, "P-2").paid_cents == 0


def test_an_overpayment_is_kept_as_credit_on_the_contract(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", JAN, 12_000)])

    result = pay(any_engine, "R-1", 20_000)

    assert (result.allocated_cents, result.credit_cents, result.balance_cents) == (12_000, 8_000, 0)
    assert contract_row(any_engine).credit_cents == 8_000
    with session_scope(any_engine) as session:
        assert service.arrears(session, "K-1", AT.date()).credit_cents == 8_000


def test_a_payment_for_premiums_not_yet_due_is_all_credit(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-4", date(2026, 4, 1), 12_000)])

    result = pay(any_engine, "R-1", 12_000)

    assert (result.allocated_cents, result.credit_cents) == (0, 12_000)
    assert premium_row(any_engine, "P-4").paid_cents == 0


def test_a_payment_naming_a_premium_goes_to_that_premium_first(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", JAN, 12_000), ("P-2", FEB, 12_000)])

    pay(any_engine, "R-1", 12_000, designated_premium="P-2")

    assert premium_row(any_engine, "P-1").paid_cents == 0
    assert premium_row(any_engine, "P-2").status == PremiumStatus.PAID


def test_a_payment_naming_another_contracts_premium_is_rejected_and_writes_nothing(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", JAN, 12_000)])
    seed_contract(any_engine, "K-2", premiums=[("P-2", JAN, 12_000)])
    before = counts(any_engine)

    with pytest.raises(LedgerError, match="'P-2' does not belong to contract K-1"):
        pay(any_engine, "R-1", 12_000, designated_premium="P-2")

    assert counts(any_engine) == before
    assert premium_row(any_engine, "P-1").paid_cents == 0
    assert premium_row(any_engine, "P-2").paid_cents == 0
    assert contract_row(any_engine, "K-1").credit_cents == 0


def test_a_payment_naming_an_unknown_premium_is_rejected_and_writes_nothing(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", JAN, 12_000)])
    before = counts(any_engine)

    with pytest.raises(NotFound, match="'P-9'"):
        pay(any_engine, "R-1", 12_000, designated_premium="P-9")

    assert counts(any_engine) == before


@pytest.mark.parametrize(
    ("ref", "cents", "message"), [("R-1", 0, "got 0"), ("R-1", -5, "got -5"), ("", 100, "reference")]
)
def test_a_payment_with_no_amount_or_no_reference_is_rejected(
    any_engine: Engine, ref: str, cents: int, message: str
) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", JAN, 12_000)])

    with pytest.raises(LedgerError, match=message):
        pay(any_engine, ref, cents)

    assert counts(any_engine)["Payment"] == 0


# --- reversal --------------------------------------------------------------------------------


def test_reversing_a_payment_re_opens_its_premiums_and_fees_and_removes_its_credit(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", JAN, 12_000), ("P-2", FEB, 12_000)])
    fee = add_fee(any_engine, "fee-notice", 150)
    pay(any_engine, "R-1", 30_000)
    assert contract_row(any_engine).credit_cents == 30_000 - 24_150

    with session_scope(any_engine) as session:
        payment, reopened, changed = service.reverse_payment(session, "R-1", "AM04")

    assert changed and sorted(reopened) == ["P-1", "P-2"]
    assert payment.returned and payment.return_reason == "AM04"
    for pid in ("P-1", "P-2"):
        p = premium_row(any_engine, pid)
        assert (p.status, p.paid_cents) == (PremiumStatus.OPEN, 0)
    assert contract_row(any_engine).credit_cents == 0
    with session_scope(any_engine) as session:
        assert session.get(Fee, fee.id).paid_cents == 0  # type: ignore[union-attr]
        assert service.arrears(session, "K-1", AT.date()).balance_cents == 24_150


def test_a_second_reversal_of_the_same_payment_changes_nothing(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", JAN, 12_000)])
    pay(any_engine, "R-1", 5_000)
    pay(any_engine, "R-2", 9_000)
    with session_scope(any_engine) as session:
        service.reverse_payment(session, "R-1", "AM04")
    after_first = (premium_row(any_engine, "P-1").model_dump(), contract_row(any_engine).credit_cents)

    with session_scope(any_engine) as session:
        _, reopened, changed = service.reverse_payment(session, "R-1", "AM04")

    assert (changed, reopened) == (False, [])
    assert (premium_row(any_engine, "P-1").model_dump(), contract_row(any_engine).credit_cents) == after_first
    # R-2 paid 7,000 to P-1; its 2,000 credit paid the part R-1 had covered once R-1 came back
    assert premium_row(any_engine, "P-1").paid_cents == 9_000
    assert contract_row(any_engine).credit_cents == 0


def test_reversing_an_unknown_payment_is_not_found(any_engine: Engine) -> None:
    with pytest.raises(NotFound, match="'R-404'"), session_scope(any_engine) as session:
        service.reverse_payment(session, "R-404", "AM04")


# --- contract status -------------------------------------------------------------------------


def set_status(engine: Engine, to: ContractStatus, key: str, at: datetime = AT) -> bool:
    with session_scope(engine) as session:
        return service.set_contract_status(
            session, contract_number="K-1", to_status=to, reason="test", key=key, at=at, case_id="case-K-1"
        )


def test_a_status_change_writes_history_once_per_key(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1")

    assert set_status(any_engine, ContractStatus.SUSPENDED, "suspend-1") is True
    assert set_status(any_engine, ContractStatus.SUSPENDED, "suspend-1") is False
    assert set_status(any_engine, ContractStatus.ACTIVE, "suspend-1") is False  # key already used

    with session_scope(any_engine) as session:
        history = service.status_history(session, "K-1")
    assert [(h.from_status, h.to_status, h.idempotency_key) for h in history] == [
        (ContractStatus.ACTIVE, ContractStatus.SUSPENDED, "suspend-1")
    ]
    assert contract_row(any_engine).status == ContractStatus.SUSPENDED


def test_setting_the_status_a_contract_already_has_writes_no_history(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1")

    assert set_status(any_engine, ContractStatus.ACTIVE, "reactivate-1") is False

    with session_scope(any_engine) as session:
        assert service.status_history(session, "K-1") == []
        assert service.count_rows(session, ContractStatusChange) == 0


def test_status_history_is_ordered_by_effective_time(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1")
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    set_status(any_engine, ContractStatus.SUSPENDED, "s-1", t0)
    set_status(any_engine, ContractStatus.ACTIVE, "a-1", t0 + timedelta(days=3))
    set_status(any_engine, ContractStatus.SUSPENDED, "s-2", t0 + timedelta(days=40))

    with session_scope(any_engine) as session:
        history = service.status_history(session, "K-1")

    assert [h.idempotency_key for h in history] == ["s-1", "a-1", "s-2"]
    assert [h.to_status for h in history] == [ContractStatus.SUSPENDED, ContractStatus.ACTIVE, ContractStatus.SUSPENDED]
    assert [h.effective_at.replace(tzinfo=UTC) for h in history] == [
        t0,
        t0 + timedelta(days=3),
        t0 + timedelta(days=40),
    ]


# --- arrears ---------------------------------------------------------------------------------


def test_arrears_are_open_premiums_due_by_the_date_plus_open_fees_and_report_credit(any_engine: Engine) -> None:
    seed_contract(
        any_engine,
        "K-1",
        premiums=[("P-1", JAN, 12_000), ("P-2", FEB, 12_000), ("P-3", MAR, 12_000), ("P-4", date(2026, 4, 1), 12_000)],
    )
    add_fee(any_engine, "fee-1", 150)
    pay(any_engine, "R-1", 12_000 + 150 + 2_000)  # fee, P-1 and 2,000 of P-2

    with session_scope(any_engine) as session:
        owed = service.arrears(session, "K-1", MAR)  # P-3 is due on the day: included; P-4 is future

    assert [(i.premium_id, i.open_cents, i.due_date) for i in owed.items] == [
        ("P-2", 10_000, FEB),
        ("P-3", 12_000, MAR),
    ]
    assert owed.fees_open_cents == 0
    assert owed.balance_cents == 22_000
    assert owed.credit_cents == 0
    assert owed.items[0].period == service.period_label(premium_row(any_engine, "P-2"))
    assert (owed.contract_status, owed.agent_code, owed.has_email, owed.has_phone) == ("active", "A-7", True, True)


def test_arrears_include_open_fees_and_credit(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-4", date(2026, 4, 1), 12_000)], email=None)
    pay(any_engine, "R-1", 500)  # nothing due yet: all credit
    add_fee(any_engine, "fee-1", 150)

    with session_scope(any_engine) as session:
        owed = service.arrears(session, "K-1", MAR)

    assert owed.items == []
    assert (owed.fees_open_cents, owed.balance_cents, owed.credit_cents) == (150, 150, 500)
    assert owed.has_email is False


# --- the sweep -------------------------------------------------------------------------------


def test_the_sweep_finds_only_open_unblocked_premiums_due_before_the_date_on_live_contracts(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", JAN, 12_000), ("P-paid", JAN, 100), ("P-today", MAR, 12_000)])
    seed_contract(any_engine, "K-2", premiums=[("P-2", FEB, 12_000)])
    seed_contract(any_engine, "K-3", premiums=[("P-3", JAN, 12_000)])
    seed_contract(any_engine, "K-4", premiums=[("P-4", JAN, 12_000)])
    pay(any_engine, "R-paid", 12_100, contract="K-1")  # pays P-1 and P-paid; P-today (due on as_of) stays open
    seed_contract(any_engine, "K-1", premiums=[("P-1b", FEB, 9_000)])
    with session_scope(any_engine) as session:
        service.set_contract_status(
            session, contract_number="K-3", to_status=ContractStatus.TERMINATED, reason="test", key="t-3", at=AT
        )
        service.set_contract_status(
            session, contract_number="K-4", to_status=ContractStatus.SUSPENDED, reason="test", key="s-4", at=AT
        )
        found = service.overdue_premiums(session, MAR)

    assert [(number, pid) for _, number, pid, _ in found] == [("K-2", "P-2"), ("K-4", "P-4"), ("K-1", "P-1b")]
    ids = [row_id for row_id, *_ in found]
    assert ids == sorted(ids)


def test_the_sweep_pages_by_row_id(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[(f"P-{i}", JAN, 1_000 + i) for i in range(7)])

    seen: list[str] = []
    after = 0
    with session_scope(any_engine) as session:
        while page := service.overdue_premiums(session, MAR, after_id=after, limit=3):
            assert len(page) <= 3
            seen += [pid for _, _, pid, _ in page]
            after = page[-1][0]

    assert seen == [f"P-{i}" for i in range(7)]


def test_written_off_and_blocked_premiums_leave_the_sweep(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", JAN, 12_000)])
    seed_contract(any_engine, "K-2", premiums=[("P-2", JAN, 12_000)])
    seed_contract(any_engine, "K-3", premiums=[("P-3", JAN, 12_000)])
    add_fee(any_engine, "fee-1", 150)

    with session_scope(any_engine) as session:
        assert service.write_off(session, "K-1", MAR) == 12_150
        assert service.block_dunning(session, "K-2", MAR, "cancelled: booked in error") == ["P-2"]
    with session_scope(any_engine) as session:
        found = service.overdue_premiums(session, MAR)
        owed = service.arrears(session, "K-1", MAR)

    assert [pid for _, _, pid, _ in found] == ["P-3"]
    assert premium_row(any_engine, "P-1").status == PremiumStatus.WRITTEN_OFF
    assert (owed.balance_cents, owed.items) == (0, [])


# --- idempotent records ----------------------------------------------------------------------


def test_a_fee_is_booked_once_per_key_and_belongs_to_the_oldest_open_premium(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-2", FEB, 12_000), ("P-1", JAN, 12_000)])

    first = add_fee(any_engine, "case-K-1/notice/fee", 150)
    again = add_fee(any_engine, "case-K-1/notice/fee", 150)

    assert again.id == first.id
    assert first.premium_id == premium_row(any_engine, "P-1").id
    assert counts(any_engine)["Fee"] == 1


def test_a_message_is_added_once_per_key(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1")
    contract_id = contract_row(any_engine).id

    def message() -> Message:
        return Message(
            idempotency_key="case-K-1/notice/letter",
            case_id="case-K-1",
            contract_id=contract_id,
            channel="letter",
            kind="qualified_notice",
            recipient="Heidestraße 17, 51147 Köln",
            body_text="Mahnung",
            total_cents=12_150,
            created_at=AT,
        )

    with session_scope(any_engine) as session:
        first, created = service.add_message(session, message())
    with session_scope(any_engine) as session:
        again, created_again = service.add_message(session, message())
        assert service.count_rows(session, Message) == 1

    assert (created, created_again) == (True, False)
    assert again.id == first.id


def test_an_agent_task_is_added_once_per_key(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1")
    contract_id = contract_row(any_engine).id
    assert contract_id is not None

    def task() -> AgentTask:
        return AgentTask(
            idempotency_key="case-K-1/agency",
            case_id="case-K-1",
            contract_id=contract_id,
            agent_code="A-7",
            open_cents=12_150,
            created_at=AT,
            due_at=AT + timedelta(hours=24),
        )

    with session_scope(any_engine) as session:
        first, created = service.add_agent_task(session, task())
    with session_scope(any_engine) as session:
        again, created_again = service.add_agent_task(session, task())
        assert service.count_rows(session, AgentTask) == 1
        assert service.close_agent_tasks(session, "case-K-1", "paid") == 1
    with session_scope(any_engine) as session:
        assert service.close_agent_tasks(session, "case-K-1", "paid") == 0

    assert (created, created_again) == (True, False)
    assert again.id == first.id


def test_a_court_application_is_added_once_per_case_and_approved_once(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1")
    contract_id = contract_row(any_engine).id
    assert contract_id is not None

    def application(total: int) -> CourtApplication:
        return CourtApplication(
            case_id="case-K-1", contract_id=contract_id, record={"total_cents": total}, prepared_at=AT
        )

    with session_scope(any_engine) as session:
        first = service.add_court_application(session, application(12_150))
    with session_scope(any_engine) as session:
        again = service.add_court_application(session, application(99_999))
        assert service.count_rows(session, CourtApplication) == 1
    assert again.id == first.id and again.record == {"total_cents": 12_150}

    with session_scope(any_engine) as session:
        approved = service.approve_court_application(session, "case-K-1", "Frau Richter", AT)
    with session_scope(any_engine) as session:
        twice = service.approve_court_application(session, "case-K-1", "Herr Anders", AT + timedelta(hours=1))
    assert approved.status == twice.status == "approved"
    assert twice.approved_by == "Frau Richter"


# --- concurrency -----------------------------------------------------------------------------


def run_together(*jobs: Callable[[], object]) -> list[object]:
    """Start every job at the same moment, each in its own thread; re-raise the first error."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)
    errors: list[BaseException] = []

    def runner(i: int, job: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = job()
        except BaseException as error:  # noqa: BLE001 - re-raised in the main thread
            errors.append(error)

    threads = [threading.Thread(target=runner, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("round_", range(3))
def test_two_payments_booked_at_the_same_time_never_over_allocate_a_premium(any_engine: Engine, round_: int) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", JAN, 12_000)])
    amounts = [8_000 + round_ * 1_000, 7_000]

    results = run_together(*(lambda ref=f"R-{i}", cents=c: pay(any_engine, ref, cents) for i, c in enumerate(amounts)))

    assert all(r.booked for r in results)  # type: ignore[attr-defined]
    p1 = premium_row(any_engine, "P-1")
    total = sum(amounts)
    assert p1.paid_cents == min(total, 12_000)
    assert p1.status == PremiumStatus.PAID
    assert contract_row(any_engine).credit_cents == total - 12_000
    assert sum(r.credit_cents for r in results) == total - 12_000  # type: ignore[attr-defined]
    with session_scope(any_engine) as session:
        allocated = sum(a.amount_cents for a in session.exec(select(Allocation)))
    assert allocated == 12_000


def test_a_reversal_racing_a_new_payment_loses_no_booking(any_engine: Engine, request: pytest.FixtureRequest) -> None:
    """A direct-debit return (reverse_payment) reads the premium, then a new payment for the same
    contract commits, then the reversal writes. On SQLite the reversal holds the write lock, so the
    payment waits; on PostgreSQL it must lock the contract as book_payment does."""
    seed_contract(any_engine, "K-1", premiums=[("P-1", JAN, 12_000)])
    pay(any_engine, "R-debit", 5_000)

    reversal_has_read = threading.Event()
    payment_done = threading.Event()

    def reverse() -> None:
        with session_scope(any_engine) as session:

            @event.listens_for(session, "before_flush")
            def _pause(session_: Session, *_: Any) -> None:
                if any(isinstance(o, Premium) for o in session_.dirty) and not reversal_has_read.is_set():
                    reversal_has_read.set()
                    payment_done.wait(timeout=1.0)  # SQLite: the payment is blocked behind us, give up waiting

            service.reverse_payment(session, "R-debit", "AM04")

    def book_after_read() -> None:
        assert reversal_has_read.wait(timeout=10)
        pay(any_engine, "R-transfer", 3_000)
        payment_done.set()

    run_together(reverse, book_after_read)

    p1 = premium_row(any_engine, "P-1")
    with session_scope(any_engine) as session:
        live = session.exec(
            select(Allocation)
            .join(Payment, col(Payment.id) == col(Allocation.payment_id))
            .where(col(Payment.returned).is_(False))
        ).all()
    assert p1.paid_cents == sum(a.amount_cents for a in live if a.target == "premium")
    assert p1.paid_cents == 3_000


def test_credit_pays_a_premium_booked_later_so_nobody_is_dunned_for_money_already_paid(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", JAN, 10_000)])
    pay(any_engine, "R-1", 13_000)  # 3,000 more than due: credit
    with session_scope(any_engine) as session:
        service.book_premium(
            session,
            external_id="P-2",
            contract_number="K-1",
            period_start=JAN + timedelta(days=31),
            period_end=JAN + timedelta(days=59),
            due_date=JAN + timedelta(days=31),
            amount_cents=2_500,
        )
    assert premium_row(any_engine, "P-2").status == "paid"
    assert contract_row(any_engine).credit_cents == 500
    with session_scope(any_engine) as session:  # the credit's cents stay traceable to R-1
        payment = service.find_payment(session, "R-1")
        assert payment is not None and payment.credit_cents == 500
        _, reopened, _ = service.reverse_payment(session, "R-1", "AM04")
    assert sorted(set(reopened)) == ["P-1", "P-2"]
    assert (premium_row(any_engine, "P-1").paid_cents, premium_row(any_engine, "P-2").paid_cents) == (0, 0)
    assert contract_row(any_engine).credit_cents == 0


def test_a_payment_just_after_midnight_in_berlin_pays_the_premium_due_that_day(any_engine: Engine) -> None:
    seed_contract(any_engine, "K-1", premiums=[("P-1", date(2026, 11, 23), 10_000)])
    with session_scope(any_engine) as session:  # 23:30 UTC on the 22nd is 00:30 on the 23rd in Berlin
        result = service.book_payment(
            session,
            contract_number="K-1",
            external_ref="R-1",
            amount_cents=10_000,
            received_at=datetime(2026, 11, 22, 23, 30, tzinfo=UTC),
            source="bank",
        )
    assert (result.allocated_cents, result.credit_cents) == (10_000, 0)
    assert premium_row(any_engine, "P-1").status == "paid"
