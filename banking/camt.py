"""Bank statements (camt.053, ISO 20022) read into plain statement lines.

Parsing is pycamt's (lxml with entity resolution and network access off); this module turns its
dictionaries into typed lines, exact to the cent, each with the key that de-duplicates it: the
bank's entry reference (AcctSvcrRef), per transaction where one entry carries several (a batch).
A statement that cannot be read is rejected as a whole, naming the problem: nothing is imported.
That includes amounts not written as plain decimals (an exponent such as 1E17, more than 11 digits
before the point) and booking dates outside 10 years back to 31 days ahead (a junk line dated
0001-01-01 must not sort ahead of real ones in the manual queue).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from lxml.etree import XMLSyntaxError
from pycamt.parser import Camt053ParseError, Camt053Parser

from core.money import parse_amount
from core.references import is_valid_rf_reference
from ledger.service import LedgerError

# ISO 20022 amounts are plain decimals; at most 11 digits before the point keeps every amount far
# inside the ledger's ceiling (models/inputs.MAX_LEDGER_CENTS) and any 64-bit column.
PLAIN_AMOUNT = re.compile(r"-?[0-9]{1,11}(\.[0-9]{1,5})?")
BOOKING_DATE_PAST = timedelta(days=10 * 366)
BOOKING_DATE_FUTURE = timedelta(days=31)


class StatementError(LedgerError):
    """The file is not a readable camt.053 statement; the message names the problem (HTTP 422)."""


@dataclass(frozen=True)
class StatementLine:
    entry_ref: str  # de-duplication key: the bank's entry reference (+ position inside a batch)
    account_iban: str  # the insurer's account the statement is for
    amount_cents: int
    currency: str
    credit: bool  # money in (CRDT) or out (DBIT)
    reversal: bool
    booking_date: date | None
    end_to_end_id: str | None
    creditor_reference: str | None  # structured reference (ISO 11649 "RF…") if the payer gave one
    remittance: str  # unstructured remittance text, all lines joined
    debtor_iban: str | None


def _date(text: str | None, what: str, ref: str, today: date) -> date | None:
    if not text:
        return None
    try:
        value = date.fromisoformat(text[:10])
    except ValueError:
        raise StatementError(f"entry {ref}: {what} {text[:40]!r} is not a date") from None
    earliest, latest = today - BOOKING_DATE_PAST, today + BOOKING_DATE_FUTURE
    if not earliest <= value <= latest:
        raise StatementError(
            f"entry {ref}: {what} {value} is outside {earliest}..{latest} (10 years back, 31 days ahead)"
        )
    return value


def _amount(text: str | None, ref: str) -> int:
    if not PLAIN_AMOUNT.fullmatch((text or "").strip()):
        raise StatementError(
            f"entry {ref}: amount {(text or '')[:40]!r} is not a plain decimal "
            "(digits, at most 11 before the point, no exponent)"
        )
    try:
        amount = parse_amount(text or "")
    except ValueError as error:
        raise StatementError(f"entry {ref}: {error}") from None
    if amount <= 0:
        raise StatementError(f"entry {ref}: amount {text!r} must be positive (the indicator gives the direction)")
    return amount


def _fallback_ref(row: dict[str, str]) -> str:
    """A stable key for an entry without a bank reference: the same file gives the same keys."""
    fields = ("AccountIBAN", "BookingDate", "Amount", "EndToEndId", "RemittanceInformationFull", "DebtorIBAN")
    digest = hashlib.sha256("|".join(row.get(f) or "" for f in fields).encode()).hexdigest()[:24]
    return f"noref-{digest}"


def parse_camt053(data: bytes, today: date | None = None) -> list[StatementLine]:
    """The statement's lines; `today` (default: the UTC date now) bounds the booking dates."""
    today = today or datetime.now(UTC).date()
    if not data.strip():
        raise StatementError("the statement file is empty")
    try:
        parser = Camt053Parser(data)
    except XMLSyntaxError as error:
        raise StatementError(f"not well-formed XML: {error}") from None
    if not parser.version.startswith("camt.053"):
        raise StatementError("not a camt.053 bank statement (root element names no camt.053 version)")
    try:
        rows: list[dict[str, str]] = parser.get_transactions()
    except (Camt053ParseError, AttributeError) as error:
        raise StatementError(f"camt.053 statement without readable entries ({error or 'no Stmt element'})") from None

    per_entry = Counter(row.get("TransactionID") or _fallback_ref(row) for row in rows)
    position: Counter[str] = Counter()
    lines: list[StatementLine] = []
    for row in rows:
        base = row.get("TransactionID") or _fallback_ref(row)
        position[base] += 1
        ref = base if per_entry[base] == 1 else f"{base}#{position[base]}"
        indicator = (row.get("CreditDebitIndicator") or "").upper()
        if indicator not in {"CRDT", "DBIT"}:
            raise StatementError(f"entry {ref}: credit/debit indicator {indicator!r} is neither CRDT nor DBIT")
        currency = row.get("Currency") or ""
        if not currency:
            raise StatementError(f"entry {ref}: amount without currency")
        # pycamt puts a structured reference (Strd/CdtrRefInf/Ref) in RemittanceInformation, else the first Ustrd
        unstructured = row.get("RemittanceInformationFull") or ""
        reference = _rf_in(row.get("RemittanceInformation") or "") or _rf_in(unstructured)
        lines.append(
            StatementLine(
                entry_ref=ref[:200],
                account_iban=(row.get("AccountIBAN") or "").replace(" ", ""),
                amount_cents=_amount(row.get("Amount"), ref),
                currency=currency.upper(),
                credit=indicator == "CRDT",
                reversal=(row.get("ReversalIndicator") or "").lower() == "true",
                booking_date=_date(row.get("BookingDate"), "booking date", ref, today),
                end_to_end_id=_meaningful(row.get("EndToEndId")),
                creditor_reference=reference,
                remittance=unstructured[:500],
                debtor_iban=(row.get("DebtorIBAN") or "").replace(" ", "").upper() or None,
            )
        )
    return lines


def _meaningful(end_to_end_id: str | None) -> str | None:
    """Banks write NOTPROVIDED where the payer gave no end-to-end id."""
    if not end_to_end_id or end_to_end_id.strip().upper() == "NOTPROVIDED":
        return None
    return end_to_end_id.strip()


def _rf_in(text: str) -> str | None:
    """Structured references sometimes arrive in the free text; take a valid one from there."""
    compact = text.upper().replace(" ", "")
    start = compact.find("RF")
    while start != -1:
        for end in range(min(len(compact), start + 25), start + 4, -1):
            if is_valid_rf_reference(compact[start:end]):
                return compact[start:end]
        start = compact.find("RF", start + 2)
    return None
