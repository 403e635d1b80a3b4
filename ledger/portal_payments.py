"""What a customer pays in the portal (issue #14), and what the ledger says afterwards.

- `options`: what can be paid now — everything at once, one contract's open balance, or the
  instalment due now when the contract's case holds an instalment plan (what is due so far minus
  what was paid since the plan was agreed). Each option has a form value carrying its amount, so a
  page that went stale or an edited amount is refused (`pick`), never charged.
- `shares`: a checkout covering several contracts keeps one `Share` per contract — its amount, and a
  snapshot of the contract's status when the checkout opened. A provider's webhook books one payment
  per share on the share's own contract (`share_ref`), so no contract's money lands on another.
- `outcome`: the result page reads the ledger at that moment: booked or not yet, what remains open,
  and whether cover came back — only when the contract's history shows it (DOMAIN.md §2: never
  "cover restored" to someone whose cover never lapsed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from core.instalments import due_so_far
from core.references import mask_contract_number
from ledger import service
from ledger.portal import PortalContract
from models.case import Hold, HoldKind
from models.ledger import Contract, ContractStatus, ContractStatusChange, Payment

# Stripe metadata values hold at most 500 characters: the allocation of a checkout must fit.
MAX_ALLOCATION_TEXT = 500


class ChoiceRefused(ValueError):
    """The customer's choice cannot be paid as posted; `code` selects the portal's text."""

    def __init__(self, code: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


# --- what can be paid now -------------------------------------------------------------------------


@dataclass(frozen=True)
class InstalmentDue:
    number: int  # 1-based, as the customer counts
    count: int
    due: date
    amount_cents: int  # what is due now: due so far minus paid since the plan was agreed


def instalment_due_now(hold: Hold | None, balance_cents: int) -> InstalmentDue | None:
    """The instalment the case waits for, if the plan still needs money for it (else None)."""
    if hold is None or hold.kind != HoldKind.INSTALMENTS or not hold.schedule or balance_cents <= 0:
        return None
    index = min(hold.instalment, len(hold.schedule) - 1)
    paid_since = hold.balance_at_promise_cents - balance_cents
    due = min(due_so_far(hold.schedule, index) - paid_since, balance_cents)
    if due <= 0:
        return None
    return InstalmentDue(index + 1, len(hold.schedule), hold.schedule[index].due, due)


@dataclass(frozen=True)
class Option:
    """One thing the customer may pay: `key` names it without a contract number (it may go in a URL)."""

    key: str  # "all", "c<n>" (contract n of the list, from 1), "i<n>" (its instalment due now)
    kind: str  # all | contract | instalment
    parts: tuple[tuple[PortalContract, int], ...]  # (contract, cents)
    instalment: InstalmentDue | None = None

    @property
    def total_cents(self) -> int:
        return sum(cents for _, cents in self.parts)

    @property
    def value(self) -> str:
        """The form value: the key and the amount the page showed."""
        return f"{self.key}:{self.total_cents}"

    @property
    def currencies(self) -> list[str]:
        """The currencies of its contracts: one for every option `options` makes."""
        return sorted({contract.currency for contract, _ in self.parts})

    @property
    def currency(self) -> str:
        """The one currency a checkout for this option is in; refused when its contracts book in several
        (euros and kroner cannot be one payment)."""
        found = self.currencies
        if len(found) != 1:
            raise ChoiceRefused(
                "currencies",
                f"contracts in {' and '.join(found)} cannot be paid in one checkout",
                currencies=" / ".join(found),
            )
        return found[0]


def options(contracts: list[PortalContract], instalments: dict[str, InstalmentDue]) -> list[Option]:
    """Everything at once (when anything is open and all of it is in one currency), then per contract its
    balance and its instalment due."""
    owing = [c for c in contracts if c.arrears.balance_cents > 0]
    if not owing:
        return []
    found: list[Option] = []
    if len({c.currency for c in owing}) == 1:  # euros and kroner are never one payment
        found.append(Option("all", "all", tuple((c, c.arrears.balance_cents) for c in owing)))
    for number, contract in enumerate(contracts, start=1):
        if contract.arrears.balance_cents <= 0:
            continue
        if len(owing) > 1:
            found.append(Option(f"c{number}", "contract", ((contract, contract.arrears.balance_cents),)))
        due = instalments.get(contract.contract_number)
        if due is not None:
            found.append(Option(f"i{number}", "instalment", ((contract, due.amount_cents),), due))
    return found


def option_by_key(found: list[Option], key: str) -> Option:
    for option in found:
        if option.key == key:
            return option
    raise ChoiceRefused("unknown_choice", f"there is nothing to pay under {key[:20]!r}", choice=key[:20])


def pick(found: list[Option], value: str) -> Option:
    """The option the form posted; refused when unknown or when its amount is not the one open now."""
    key, _, cents_text = value.strip().partition(":")
    if not key:
        raise ChoiceRefused("no_choice", "choose what to pay")
    option = option_by_key(found, key)
    if not cents_text.isdigit() or len(cents_text) > 12 or int(cents_text) != option.total_cents:
        raise ChoiceRefused(
            "amount_changed",
            f"the amount {cents_text[:14]!r} does not match the {option.total_cents} cents open now",
            amount_cents=option.total_cents,
        )
    if option.total_cents <= 0:
        raise ChoiceRefused("nothing_open", "nothing is open")
    _ = option.currency  # refused when its contracts book in more than one currency
    return option


# --- one checkout, shared among contracts -----------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """One contract's part of a portal checkout, with the contract as it stood when the checkout opened."""

    contract_number: str
    case_id: str
    amount_cents: int
    status_before: str
    history_mark: int  # id of the contract's newest status change then (0: none yet)

    def to_json(self) -> dict[str, object]:
        return {
            "contract_number": self.contract_number,
            "case_id": self.case_id,
            "amount_cents": self.amount_cents,
            "status_before": self.status_before,
            "history_mark": self.history_mark,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Share:
        return cls(
            contract_number=str(data["contract_number"]),
            case_id=str(data.get("case_id", "")),
            amount_cents=int(str(data["amount_cents"])),
            status_before=str(data.get("status_before", "")),
            history_mark=int(str(data.get("history_mark", 0))),
        )


def _history_mark(session: Session, contract_id: int) -> int:
    newest = session.exec(
        select(ContractStatusChange.id)
        .where(ContractStatusChange.contract_id == contract_id)
        .order_by(col(ContractStatusChange.id).desc())
    ).first()
    return int(newest or 0)


def share_now(session: Session, contract_number: str, case_id: str, amount_cents: int) -> Share:
    """One contract's share with the contract as it stands now (a pay link pays one contract)."""
    row = service.get_contract(session, contract_number)
    assert row.id is not None
    return Share(
        contract_number=contract_number,
        case_id=case_id,
        amount_cents=amount_cents,
        status_before=str(row.status),
        history_mark=_history_mark(session, row.id),
    )


def shares(session: Session, option: Option) -> list[Share]:
    return [share_now(session, contract.contract_number, contract.case_id, cents) for contract, cents in option.parts]


def allocation_text(found: list[Share]) -> str:
    """`K-1:12000,K-2:5050`: contract numbers and cents only, for a provider's metadata."""
    return ",".join(f"{s.contract_number}:{s.amount_cents}" for s in found)


def parse_allocation(text: str, total_cents: int) -> list[tuple[str, int]]:
    """The allocation a provider sent back; ValueError naming the problem (nothing may be booked then)."""
    parts: list[tuple[str, int]] = []
    for item in text.split(","):
        contract_number, _, cents = item.rpartition(":")
        if not contract_number or not cents.isdigit() or len(cents) > 12 or int(cents) <= 0:
            raise ValueError(f"allocation item {item[:60]!r} is not <contract number>:<cents>")
        parts.append((contract_number, int(cents)))
    if len({c for c, _ in parts}) != len(parts):
        raise ValueError("allocation names a contract twice")
    if sum(cents for _, cents in parts) != total_cents:
        raise ValueError(f"allocation adds up to {sum(c for _, c in parts)} cents, the payment is {total_cents}")
    return parts


def unknown_contracts(session: Session, contract_numbers: list[str]) -> list[str]:
    known = set(
        session.exec(select(Contract.contract_number).where(col(Contract.contract_number).in_(contract_numbers)))
    )
    return [n for n in contract_numbers if n not in known]


def wrong_currency(session: Session, contract_numbers: list[str], currency: str) -> list[str]:
    """The known contracts among `contract_numbers` that book in another currency than `currency`
    (a payment is booked in its contract's currency: a DKK contract takes no euros)."""
    rows = session.exec(
        select(Contract.contract_number, Contract.currency).where(col(Contract.contract_number).in_(contract_numbers))
    )
    return sorted(f"{number} ({booked})" for number, booked in rows if booked.upper() != currency.upper())


def share_ref(base_ref: str, contract_number: str, share_count: int) -> str:
    """The ledger reference of one share: the provider's reference alone for a single contract (so a
    refund finds it as before), with the contract number appended when the checkout had several."""
    return base_ref if share_count == 1 else f"{base_ref}:{contract_number}"


# --- after paying ---------------------------------------------------------------------------------


class Cover:
    RESTORED = "restored"  # suspended (or terminated) before, active again since this payment
    NEVER_INTERRUPTED = "never_interrupted"  # active when the checkout opened and all along since
    RESTORING = "restoring"  # paid in full, the contract is still recorded suspended: the case is on it
    SUSPENDED = "suspended"  # something remains open: cover returns when it is paid
    TERMINATED = "terminated"
    ACTIVE = "active"  # active now, but its history since the checkout is not one of the above


@dataclass(frozen=True)
class ShareOutcome:
    contract_number: str
    masked: str
    product: str
    paid_cents: int
    booked: bool  # False: the provider's confirmation has not been booked yet
    balance_cents: int  # open on the contract now
    cover: str  # a Cover value
    restored_at: datetime | None  # cover back since (the reactivation's effective time)


def outcome(session: Session, share: Share, payment_ref: str | None, as_of: date, product: str = "") -> ShareOutcome:
    """What the ledger shows for one share now; `payment_ref` None: the provider has not confirmed yet."""
    contract = service.get_contract(session, share.contract_number)
    assert contract.id is not None
    booked = False
    if payment_ref is not None:
        payment = session.exec(select(Payment).where(Payment.external_ref == payment_ref)).first()
        booked = payment is not None and payment.contract_id == contract.id and not payment.returned
    balance = service.arrears(session, share.contract_number, as_of).balance_cents
    since = session.exec(
        select(ContractStatusChange)
        .where(ContractStatusChange.contract_id == contract.id, col(ContractStatusChange.id) > share.history_mark)
        .order_by(col(ContractStatusChange.id))
    ).all()
    status = ContractStatus(contract.status)
    cover, restored_at = Cover.ACTIVE, None
    if status == ContractStatus.ACTIVE:
        back = [c for c in since if c.to_status == ContractStatus.ACTIVE and c.from_status != ContractStatus.ACTIVE]
        if booked and back:
            cover, restored_at = Cover.RESTORED, back[-1].effective_at
        elif share.status_before == ContractStatus.ACTIVE and not since:
            cover = Cover.NEVER_INTERRUPTED
    elif status == ContractStatus.SUSPENDED:
        cover = Cover.RESTORING if booked and balance <= 0 else Cover.SUSPENDED
    else:
        cover = Cover.TERMINATED
    return ShareOutcome(
        contract_number=share.contract_number,
        masked=mask_contract_number(share.contract_number),
        product=product,
        paid_cents=share.amount_cents,
        booked=booked,
        balance_cents=balance,
        cover=cover,
        restored_at=restored_at,
    )
