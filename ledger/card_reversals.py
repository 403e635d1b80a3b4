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

from dataclasses import dataclass, field

from sqlmodel import Session, col, or_, select

from ledger import service
from models.ledger import Contract, Payment

SOURCE = "stripe"


def payment_ref(payment_intent: str) -> str:
    """The ledger reference of a payment made through a Stripe pay link."""
    return f"{SOURCE}:{payment_intent}"


@dataclass(frozen=True)
class Reversal:
    contract_number: str  # the (first) contract the payment was booked on
    premiums: list[str]  # premiums the payment had paid, open again
    changed: bool  # False: nothing changed (a repeat, or an older refund arriving late)
    # A portal payment shared among several contracts: every contract and the premiums open again on it.
    shares: list[tuple[str, list[str]]] = field(default_factory=list)


def reverse_card_payment(session: Session, intent: str, amount_cents: int, kept_cents: int, reason: str) -> Reversal:
    """Refund or dispute: undo what the payment paid; a partial refund keeps `kept_cents` booked.

    The original payment (and any earlier "kept" re-booking) is reversed like a returned direct
    debit; the part the customer keeps paid is booked again as `stripe:<pi>:kept:<refunded>`. A
    payment the portal shared among several contracts (`stripe:<pi>:<contract>`) is reversed share
    by share: `reverse_shared_payment`.
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
        shares = _shares(session, base)
        if shares:
            return reverse_shared_payment(session, shares, amount_cents - kept_cents if kept_cents else None, reason)
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


def _shares(session: Session, base: str) -> list[tuple[Payment, str]]:
    """The shares of a portal payment among several contracts, in the order they were booked."""
    rows = session.exec(
        select(Payment, Contract.contract_number)
        .join(Contract, col(Contract.id) == col(Payment.contract_id))
        .where(col(Payment.external_ref).startswith(f"{base}:"))
        .order_by(col(Payment.id))
    ).all()
    return [(payment, number) for payment, number in rows if payment.external_ref == f"{base}:{number}"]


def reverse_shared_payment(
    session: Session, shares: list[tuple[Payment, str]], refunded_cents: int | None, reason: str
) -> Reversal:
    """A refund or dispute of one payment the portal booked as shares on several contracts.

    A dispute or a full refund (`refunded_cents` None) takes back every share. A partial refund takes
    back shares from the last booked to the first until the refunded amount is covered; of a share
    refunded in part, the rest stays paid (booked again as `<share>:kept:<refunded of it>`). The
    same refund twice, or a smaller one arriving after a larger one, changes nothing more.
    """
    total = sum(payment.amount_cents for payment, _ in shares)
    remaining = total if refunded_cents is None else min(refunded_cents, total)
    plan: list[tuple[Payment, str, int]] = []  # share, contract, how much of it is refunded
    for payment, number in reversed(shares):
        take = min(payment.amount_cents, remaining)
        remaining -= take
        plan.append((payment, number, take))
    touched: dict[str, list[str]] = {}
    changed = False
    for payment, number, take in reversed(plan):
        if take == 0:
            continue
        kept_refs = list(
            session.exec(select(Payment).where(col(Payment.external_ref).startswith(f"{payment.external_ref}:kept:")))
        )
        if any(int(k.external_ref.rsplit(":", 1)[1]) > take for k in kept_refs):
            continue  # a larger refund of this share came first
        reopened = touched.setdefault(number, [])
        for booked in [payment, *kept_refs]:
            if booked.returned or booked.external_ref == f"{payment.external_ref}:kept:{take}":
                continue
            _, premiums, did = service.reverse_payment(session, booked.external_ref, reason)
            reopened += [p for p in premiums if p not in reopened]
            changed = changed or did
        kept = payment.amount_cents - take
        kept_ref = f"{payment.external_ref}:kept:{take}"
        if kept > 0 and service.find_payment(session, kept_ref) is None:
            service.book_payment(
                session,
                contract_number=number,
                external_ref=kept_ref,
                amount_cents=kept,
                received_at=payment.received_at,
                source=SOURCE,
            )
            changed = True
    first = shares[0][1]
    return Reversal(first, touched.get(first, []), changed, shares=list(touched.items()))
