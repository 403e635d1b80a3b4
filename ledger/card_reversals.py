"""A card payment taken back: a Stripe refund or dispute (chargeback), and what the ledger does
about it. The companion of ledger/debit_returns.py for money paid through a pay link.

- The payment is booked as `stripe:<payment intent>` (`payment_ref`).
- A refund or dispute reverses that payment like a returned direct debit: what it paid is open
  again. A partial refund keeps the rest paid: it is booked again as `stripe:<pi>:kept:<refunded>`.
- A later, larger refund of the same payment reverses the earlier "kept" booking too; an older,
  smaller refund arriving late changes nothing; the same event twice changes nothing.
- A dispute withdraws the whole charge until it is decided: all of it is open again.

Runs inside the caller's transaction; the caller tells the cases after the commit (ledger/inbound.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, or_, select

from ledger import service
from models.ledger import Contract, Payment

SOURCE = "stripe"


def payment_ref(payment_intent: str) -> str:
    """The ledger reference of a payment made through a Stripe pay link."""
    return f"{SOURCE}:{payment_intent}"


@dataclass(frozen=True)
class Reversal:
    contract_number: str
    premiums: list[str]  # premiums the payment had paid, open again
    changed: bool  # False: nothing changed (a repeat, or an older refund arriving late)


def reverse_card_payment(session: Session, intent: str, amount_cents: int, kept_cents: int, reason: str) -> Reversal:
    """Refund or dispute: undo what the payment paid; a partial refund keeps `kept_cents` booked.

    The original payment (and any earlier "kept" re-booking) is reversed like a returned direct
    debit; the part the customer keeps paid is booked again as `stripe:<pi>:kept:<refunded>`.
    """
    base = payment_ref(intent)
    found = list(
        session.exec(
            select(Payment).where(
                or_(Payment.external_ref == base, col(Payment.external_ref).startswith(f"{base}:kept:"))
            )
        )
    )
    if not found:
        raise service.NotFound(f"payment_ref {base!r} is not in the ledger")
    refunded = amount_cents - kept_cents
    kept_ref = f"{base}:kept:{refunded}"
    later = [p for p in found if ":kept:" in p.external_ref and int(p.external_ref.rsplit(":", 1)[1]) > refunded]
    contract = session.get(Contract, found[0].contract_id)
    assert contract is not None
    if later:
        return Reversal(contract.contract_number, [], False)
    reopened: list[str] = []
    changed = False
    for payment in found:
        if payment.external_ref != kept_ref and not payment.returned:
            _, premiums, did = service.reverse_payment(session, payment.external_ref, reason)
            reopened += [p for p in premiums if p not in reopened]
            changed = changed or did
    if kept_cents > 0 and service.find_payment(session, kept_ref) is None:
        original = next(p for p in found if p.external_ref == base)
        service.book_payment(
            session,
            contract_number=contract.contract_number,
            external_ref=kept_ref,
            amount_cents=kept_cents,
            received_at=original.received_at,
            source=SOURCE,
        )
        changed = True
    return Reversal(contract.contract_number, reopened, changed)
