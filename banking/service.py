"""Importing bank statements into the ledger: match, book once, queue the rest for a person.

Matching follows DOMAIN.md §6, in order: (1) the structured creditor reference (ISO 11649 "RF…",
which letters and GiroCodes carry for the contract); (2) the end-to-end id of a pay link; (3) a
contract number in the free text (exactly one contract named); (4) a debtor IBAN known for the
contract and an amount equal to its open balance (exactly one such contract). Anything else —
ambiguous, another currency, a reversal, an amount above the per-line cap — waits in the manual
queue until staff book it to a contract or dismiss it. A statement for any account other than the
insurer's own (settings.creditor_iban) is refused as a whole: its lines are not our money.
Lines are keyed by the bank's entry reference, so importing the same statement (or an
overlapping one) again books nothing twice; payments are keyed `bank:<ref>`.

All functions here run inside one transaction the caller owns; the caller tells the cases
about the payments only after the commit (see banking/inbound.py).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from enum import StrEnum
from typing import Any

from sqlalchemy import UnaryExpression, func
from sqlmodel import Session, col, select

from banking.camt import StatementLine as ParsedLine
from core.money import format_eur
from ledger import service
from ledger.service import LedgerError, NotFound
from models.banking import DebtorAccount, LineStatus, MatchRule, StatementImport, StatementLine
from models.ledger import Contract, PayLink

# Contract numbers as customers type them in free text: letters, optional separator, digits.
CONTRACT_IN_TEXT = re.compile(r"\b([A-Z]{1,4})[-/ ]?(\d{3,12})\b")


@dataclass(frozen=True)
class Booked:
    contract_number: str
    payment_ref: str
    amount_cents: int
    received_at: datetime | None = None  # the bank's booking day: cover returns from then (§38(2) VVG)


@dataclass
class ImportReport:
    import_id: int
    lines: int = 0
    booked: int = 0
    queued: int = 0
    ignored: int = 0
    duplicates: int = 0
    payments: list[Booked] = field(default_factory=list)  # to tell the cases after commit

    def as_dict(self) -> dict[str, object]:
        return {
            "import_id": self.import_id,
            "lines": self.lines,
            "booked": self.booked,
            "queued": self.queued,
            "ignored": self.ignored,
            "duplicates": self.duplicates,
        }


def payment_ref(line: StatementLine) -> str:
    return f"bank:{line.entry_ref}"


def _contract_by_compact_number(session: Session, compact: str) -> Contract | None:
    """A contract whose number, without separators, is `compact` (RF payloads drop them)."""
    candidates = {compact}
    split = re.fullmatch(r"([A-Z]+)(\d+)", compact)
    if split:
        candidates |= {f"{split[1]}-{split[2]}", f"{split[1]}/{split[2]}", f"{split[1]} {split[2]}"}
    found = session.exec(select(Contract).where(col(Contract.contract_number).in_(candidates))).all()
    if len(found) == 1:
        return found[0]
    stripped = func.upper(func.replace(func.replace(func.replace(Contract.contract_number, "-", ""), "/", ""), " ", ""))
    found = session.exec(select(Contract).where(stripped == compact)).all()
    return found[0] if len(found) == 1 else None


def _by_creditor_reference(session: Session, line: StatementLine) -> Contract | None:
    if not line.creditor_reference:
        return None
    return _contract_by_compact_number(session, line.creditor_reference[4:])


def _by_end_to_end(session: Session, line: StatementLine) -> Contract | None:
    if not line.end_to_end_id:
        return None
    link = session.exec(select(PayLink).where(PayLink.token_id == line.end_to_end_id)).first()
    return session.get(Contract, link.contract_id) if link else None


def _by_text(session: Session, line: StatementLine) -> tuple[Contract | None, str]:
    named = {f"{m[1]}{m[2]}" for m in CONTRACT_IN_TEXT.finditer(line.remittance.upper())}
    contracts = {c.id: c for compact in named if (c := _contract_by_compact_number(session, compact)) is not None}
    if len(contracts) > 1:
        numbers = ", ".join(sorted(c.contract_number for c in contracts.values()))
        return None, f"the text names several contracts ({numbers})"
    return (next(iter(contracts.values())) if contracts else None), ""


def _by_iban_and_amount(session: Session, line: StatementLine) -> tuple[Contract | None, str]:
    if not line.debtor_iban:
        return None, ""
    known = session.exec(select(DebtorAccount).where(DebtorAccount.iban == line.debtor_iban)).all()
    today = line.booking_date or service.ledger_date(datetime.now(UTC))
    exact = []
    for account in known:
        contract = session.get(Contract, account.contract_id)
        assert contract is not None
        if service.arrears(session, contract.contract_number, today).balance_cents == line.amount_cents:
            exact.append(contract)
    if len(exact) > 1:
        return None, "the account pays for several contracts with this exact amount open"
    if not exact and known:
        return None, "the account is known, but no contract has exactly this amount open"
    return (exact[0] if exact else None), ""


def match(session: Session, line: StatementLine) -> tuple[Contract | None, MatchRule | None, str]:
    """The contract a credit line pays, the rule that found it, or why a person must look."""
    if (contract := _by_creditor_reference(session, line)) is not None:
        return contract, MatchRule.CREDITOR_REFERENCE, ""
    if (contract := _by_end_to_end(session, line)) is not None:
        return contract, MatchRule.END_TO_END_ID, ""
    contract, why_not = _by_text(session, line)
    if contract is not None:
        return contract, MatchRule.CONTRACT_IN_TEXT, ""
    by_iban, iban_why_not = _by_iban_and_amount(session, line)
    if by_iban is not None:
        return by_iban, MatchRule.IBAN_AND_AMOUNT, ""
    return None, None, why_not or iban_why_not or "no reference, pay link, contract number or known account matched"


def _received_at(line: StatementLine) -> datetime:
    # Noon UTC of the booking day is that same day in Germany, summer or winter.
    return datetime.combine(line.booking_date, time(12), tzinfo=UTC) if line.booking_date else datetime.now(UTC)


def _book(session: Session, line: StatementLine, contract: Contract, rule: MatchRule, premium_id: str | None) -> Booked:
    if line.currency != contract.currency:
        raise LedgerError(f"line is in {line.currency}, contract {contract.contract_number} in {contract.currency}")
    service.book_payment(
        session,
        contract_number=contract.contract_number,
        external_ref=payment_ref(line),
        amount_cents=line.amount_cents,
        received_at=_received_at(line),
        source="bank",
        designated_premium=premium_id,
    )
    line.status, line.matched_by, line.reason = LineStatus.BOOKED, rule, ""
    line.contract_id, line.payment_ref = contract.id, payment_ref(line)
    if line.debtor_iban and contract.id is not None:
        _learn_account(session, contract.id, line.debtor_iban, line.entry_ref)
    session.add(line)
    return Booked(contract.contract_number, payment_ref(line), line.amount_cents, _received_at(line))


def _learn_account(session: Session, contract_id: int, iban: str, source: str) -> None:
    exists = session.exec(
        select(DebtorAccount).where(DebtorAccount.contract_id == contract_id, DebtorAccount.iban == iban)
    ).first()
    if exists is None:
        session.add(DebtorAccount(contract_id=contract_id, iban=iban, learned_from=source))


def compact_iban(iban: str) -> str:
    return iban.replace(" ", "").upper()


def check_account(lines: list[ParsedLine], creditor_iban: str) -> None:
    """Every line must be for the insurer's account; else nothing of the file is imported."""
    ours = compact_iban(creditor_iban)
    foreign = sorted({compact_iban(line.account_iban) or "(no IBAN)" for line in lines} - {ours})
    if foreign:
        raise LedgerError(
            f"the statement is for account {', '.join(foreign)}, not the creditor account {ours}; nothing imported"
        )


def import_statement(
    session: Session,
    data: bytes,
    lines: list[ParsedLine],
    imported_by: str,
    now: datetime,
    *,
    creditor_iban: str,
    line_cap_cents: int,
) -> ImportReport:
    """Import the lines in the caller's transaction. Refused as a whole (LedgerError, nothing
    written) when a line is for another account than `creditor_iban` or a line changed since an
    earlier import; a credit above `line_cap_cents` is queued for a person, never booked by a rule."""
    check_account(lines, creditor_iban)
    record = StatementImport(
        file_sha256=hashlib.sha256(data).hexdigest(), imported_at=now, imported_by=imported_by, lines=len(lines)
    )
    session.add(record)
    session.flush()
    assert record.id is not None
    report = ImportReport(import_id=record.id, lines=len(lines))
    for parsed in lines:
        existing = session.exec(select(StatementLine).where(StatementLine.entry_ref == parsed.entry_ref)).first()
        if existing is not None:
            if existing.amount_cents != parsed.amount_cents or existing.credit != parsed.credit:
                raise LedgerError(
                    f"entry {parsed.entry_ref} was imported before with another amount or direction; nothing imported"
                )
            report.duplicates += 1
            if existing.status == LineStatus.BOOKED and existing.contract_id is not None:
                contract = session.get(Contract, existing.contract_id)
                assert contract is not None and existing.payment_ref is not None
                ref, cents = existing.payment_ref, existing.amount_cents
                report.payments.append(Booked(contract.contract_number, ref, cents, _received_at(existing)))
            continue
        line = StatementLine(
            entry_ref=parsed.entry_ref,
            import_id=record.id,
            account_iban=parsed.account_iban,
            amount_cents=parsed.amount_cents,
            currency=parsed.currency,
            credit=parsed.credit,
            reversal=parsed.reversal,
            booking_date=parsed.booking_date,
            end_to_end_id=parsed.end_to_end_id,
            creditor_reference=parsed.creditor_reference,
            remittance=parsed.remittance,
            debtor_iban=parsed.debtor_iban,
            status=LineStatus.QUEUED,
        )
        session.add(line)
        session.flush()
        if not parsed.credit:
            line.status, line.reason = LineStatus.IGNORED, "money out (debit): not a customer payment"
            report.ignored += 1
        elif parsed.reversal:
            line.reason = "reversal of an earlier booking: a person must find what it reverses"
            report.queued += 1
        elif parsed.amount_cents > line_cap_cents:
            line.reason = (
                f"amount above the per-line cap of {format_eur(line_cap_cents)} (CAMT_LINE_CAP_CENTS): "
                "a person must check it before it is booked"
            )
            report.queued += 1
        else:
            contract, rule, why = match(session, line)
            if contract is None or rule is None:
                line.reason = why
                report.queued += 1
            elif line.currency != contract.currency:
                line.reason = f"matched {contract.contract_number}, but the line is in {line.currency}"
                report.queued += 1
            else:
                report.payments.append(_book(session, line, contract, rule, None))
                report.booked += 1
        session.add(line)
    record.booked, record.queued, record.ignored, record.duplicates = (
        report.booked,
        report.queued,
        report.ignored,
        report.duplicates,
    )
    session.add(record)
    session.flush()
    return report


def _queued_line(session: Session, line_id: int) -> StatementLine:
    line = session.get(StatementLine, line_id, with_for_update=True)
    if line is None:
        raise NotFound(f"statement line {line_id} not found")
    if line.status != LineStatus.QUEUED:
        raise LedgerError(f"statement line {line_id} is {line.status.value}, not waiting in the manual queue")
    return line


def assign_line(
    session: Session, line_id: int, contract_number: str, staff: str, now: datetime, premium_id: str | None = None
) -> Booked:
    """A person books a queued line to a contract; the account is remembered for next time."""
    line = _queued_line(session, line_id)
    contract = service.get_contract(session, contract_number)
    booked = _book(session, line, contract, MatchRule.STAFF, premium_id)
    line.resolved_by, line.resolved_at = staff, now
    session.add(line)
    return booked


def dismiss_line(session: Session, line_id: int, reason: str, staff: str, now: datetime) -> StatementLine:
    line = _queued_line(session, line_id)
    line.status, line.reason, line.resolved_by, line.resolved_at = LineStatus.DISMISSED, reason, staff, now
    session.add(line)
    return line


class QueueOrder(StrEnum):
    """How the manual queue is sorted; every order pages with limit/offset over all queued lines."""

    NEWEST = "newest"  # latest booking date first (within a day: statement order)
    OLDEST = "oldest"
    LARGEST = "largest"  # highest amount first
    SMALLEST = "smallest"
    IMPORTED = "imported"  # most recently imported first: no booking date can push a line down


QUEUE_PAGE = 100
QUEUE_PAGE_MAX = 500


def queue(
    session: Session, limit: int = QUEUE_PAGE, offset: int = 0, order: QueueOrder = QueueOrder.NEWEST
) -> list[StatementLine]:
    """One page of the manual queue; `queue_size` counts all of it."""
    if not 1 <= limit <= QUEUE_PAGE_MAX or offset < 0:
        raise LedgerError(f"limit must be 1..{QUEUE_PAGE_MAX} and offset >= 0, got {limit} and {offset}")
    booking, amount, line_id = col(StatementLine.booking_date), col(StatementLine.amount_cents), col(StatementLine.id)
    sorts: dict[QueueOrder, tuple[UnaryExpression[Any], ...]] = {
        QueueOrder.NEWEST: (booking.desc().nulls_last(), line_id.asc()),
        QueueOrder.OLDEST: (booking.asc().nulls_last(), line_id.asc()),
        QueueOrder.LARGEST: (amount.desc(), line_id.asc()),
        QueueOrder.SMALLEST: (amount.asc(), line_id.asc()),
        QueueOrder.IMPORTED: (line_id.desc(),),
    }
    return list(
        session.exec(
            select(StatementLine)
            .where(StatementLine.status == LineStatus.QUEUED)
            .order_by(*sorts[order])
            .offset(offset)
            .limit(limit)
        ).all()
    )


def queue_size(session: Session) -> int:
    return int(
        session.exec(
            select(func.count()).select_from(StatementLine).where(StatementLine.status == LineStatus.QUEUED)
        ).one()
    )
