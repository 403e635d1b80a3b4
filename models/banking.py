"""Bank statement lines (camt.053) and the debtor accounts learned from them.

Every line is stored once, keyed by the bank's entry reference, whatever happens to it: booked
to a contract, waiting in the manual queue, ignored (money out), or dismissed by a person.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel


class LineStatus(StrEnum):
    BOOKED = "booked"  # matched and booked as a payment
    QUEUED = "queued"  # waits for a person (manual queue)
    IGNORED = "ignored"  # not a customer payment (money out)
    DISMISSED = "dismissed"  # a person decided it is not ours to book (e.g. sent back)


class MatchRule(StrEnum):
    """How a line found its contract, in the order DOMAIN.md §6 tries them."""

    CREDITOR_REFERENCE = "creditor_reference"
    END_TO_END_ID = "end_to_end_id"
    CONTRACT_IN_TEXT = "contract_in_text"
    IBAN_AND_AMOUNT = "iban_and_amount"
    STAFF = "staff"


class StatementImport(SQLModel, table=True):
    __tablename__ = "statement_imports"
    id: int | None = Field(default=None, primary_key=True)
    file_sha256: str = Field(index=True)
    imported_at: datetime
    imported_by: str
    lines: int = 0
    booked: int = 0
    queued: int = 0
    ignored: int = 0
    duplicates: int = 0


class StatementLine(SQLModel, table=True):
    __tablename__ = "statement_lines"
    id: int | None = Field(default=None, primary_key=True)
    entry_ref: str = Field(unique=True)  # the bank's entry reference: a line is imported once
    import_id: int = Field(foreign_key="statement_imports.id", index=True)
    account_iban: str
    amount_cents: int
    currency: str
    credit: bool
    reversal: bool = False
    booking_date: date | None = None
    end_to_end_id: str | None = None
    creditor_reference: str | None = None
    remittance: str = ""
    debtor_iban: str | None = None
    status: LineStatus = Field(index=True)
    reason: str = ""  # why it is queued/ignored/dismissed, in words staff understand
    matched_by: MatchRule | None = None
    contract_id: int | None = Field(default=None, foreign_key="contracts.id")
    payment_ref: str | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None


class DebtorAccount(SQLModel, table=True):
    """An account a contract's premiums were paid from: the last matching rule (IBAN + amount)."""

    __tablename__ = "debtor_accounts"
    __table_args__ = (UniqueConstraint("contract_id", "iban"),)
    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contracts.id", index=True)
    iban: str = Field(index=True)
    learned_from: str  # the statement line (entry reference) or "staff"
