"""What the customer portal reads from the ledger (issue #14): a customer's contracts in dunning."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, col, select

from core.references import mask_contract_number
from ledger import service
from models.case import Arrears
from models.ledger import (
    Agent,
    Allocation,
    Contract,
    ContractStatusChange,
    Customer,
    Fee,
    Message,
    PayLink,
    Payment,
    Premium,
)
from models.messages import MESSAGE_KINDS, Audience


@dataclass(frozen=True)
class PortalContract:
    """One of the customer's contracts the portal shows: it has (or had) a dunning case."""

    contract_id: int
    contract_number: str  # never shown in full on a page before step-up; in URLs never
    masked: str
    product: str
    status: str
    case_id: str  # the newest case's id (from its pay links)
    arrears: Arrears
    currency: str = "EUR"  # the contract's (its plan's): every amount of it is in this currency


def customer_of_link(session: Session, link: PayLink) -> Customer:
    contract = session.get(Contract, link.contract_id)
    assert contract is not None  # foreign key
    customer = session.get(Customer, contract.customer_id)
    assert customer is not None  # foreign key
    return customer


def dunning_contracts(session: Session, customer_id: int, as_of: date) -> list[PortalContract]:
    """The customer's contracts that have a dunning case (a pay link was made for one), by number."""
    contracts = session.exec(
        select(Contract).where(Contract.customer_id == customer_id).order_by(col(Contract.contract_number))
    ).all()
    found: list[PortalContract] = []
    for contract in contracts:
        assert contract.id is not None
        link = session.exec(
            select(PayLink)
            .where(PayLink.contract_id == contract.id)
            .order_by(col(PayLink.created_at).desc(), col(PayLink.id).desc())
        ).first()
        if link is None:
            continue
        found.append(
            PortalContract(
                contract_id=contract.id,
                contract_number=contract.contract_number,
                masked=mask_contract_number(contract.contract_number),
                product=contract.product,
                status=contract.status,
                case_id=link.case_id,
                arrears=service.arrears(session, contract.contract_number, as_of),
                currency=contract.currency,
            )
        )
    return found


# --- what the overview shows per contract (issue #14) -------------------------------------------

# Messages the customer never sees in the portal: to the agent, and the portal's own one-time codes.
# Messages the customer never sees in the portal: mails to agents and supervisors (internal, whatever
# the catalogue adds: its audience says so), and one-time codes.
HIDDEN_KINDS = frozenset(
    {kind.value for kind, spec in MESSAGE_KINDS.items() if spec.audience == Audience.AGENT}
    | {"agent_escalation", "portal_code"}
)


@dataclass(frozen=True)
class OpenFee:
    label: str
    kind: str  # cost | interest
    open_cents: int


@dataclass(frozen=True)
class PaidPart:
    """What one share of a payment paid: a premium period, a fee or interest."""

    target: str  # premium | fee | interest
    label: str  # the premium's period, or the fee's label
    amount_cents: int


@dataclass(frozen=True)
class PaymentLine:
    received_at: datetime
    amount_cents: int
    source: str
    returned: bool
    credit_cents: int
    parts: list[PaidPart]


@dataclass(frozen=True)
class Document:
    """A notice, letter or e-mail sent for the contract."""

    message_id: int
    kind: str
    channel: str
    created_at: datetime
    has_pdf: bool
    subject: str
    text: str  # shown for messages without a PDF


@dataclass(frozen=True)
class StatusChange:
    to_status: str
    effective_at: datetime


def open_fees(session: Session, contract_id: int) -> list[OpenFee]:
    """The contract's unpaid costs and interest, each as the notice itemises it."""
    return [
        OpenFee(label=f.label, kind=f.kind, open_cents=f.amount_cents - f.paid_cents)
        for f in service.open_fees(session, contract_id)
    ]


def payments(session: Session, contract_id: int) -> list[PaymentLine]:
    """Every payment on the contract, newest first, with what each of its shares paid."""
    rows = session.exec(
        select(Payment)
        .where(Payment.contract_id == contract_id)
        .order_by(col(Payment.received_at).desc(), col(Payment.id).desc())
    ).all()
    lines: list[PaymentLine] = []
    for payment in rows:
        shares = session.exec(
            select(Allocation).where(Allocation.payment_id == payment.id).order_by(col(Allocation.id))
        ).all()
        parts: list[PaidPart] = []
        for share in shares:
            label = ""
            if share.target == "premium":
                premium = session.get(Premium, share.target_id)
                label = service.period_label(premium) if premium is not None else ""
            else:
                fee = session.get(Fee, share.target_id)
                label = fee.label if fee is not None else ""
            parts.append(PaidPart(target=share.target, label=label, amount_cents=share.amount_cents))
        lines.append(
            PaymentLine(
                received_at=payment.received_at,
                amount_cents=payment.amount_cents,
                source=payment.source,
                returned=payment.returned,
                credit_cents=payment.credit_cents,
                parts=parts,
            )
        )
    return lines


def documents(session: Session, contract_id: int) -> list[Document]:
    """Every notice and letter (with its PDF) and every e-mail sent to the customer for the contract."""
    rows = session.exec(
        select(Message)
        .where(Message.contract_id == contract_id, col(Message.kind).not_in(HIDDEN_KINDS))
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
    ).all()
    return [
        Document(
            message_id=m.id or 0,
            kind=m.kind,
            channel=m.channel,
            created_at=m.created_at,
            has_pdf=m.pdf is not None,
            subject=m.subject,
            text=m.body_text if m.pdf is None else "",
        )
        for m in rows
        if m.pdf is not None or m.channel == "email"
    ]


def customer_document(session: Session, customer_id: int, message_id: int) -> Message | None:
    """The message with its stored PDF, if it belongs to one of this customer's contracts (else None)."""
    message = session.get(Message, message_id)
    if message is None or message.pdf is None or message.contract_id is None or message.kind in HIDDEN_KINDS:
        return None
    contract = session.get(Contract, message.contract_id)
    if contract is None or contract.customer_id != customer_id:
        return None
    return message


def status_changes(session: Session, contract_id: int) -> list[StatusChange]:
    """The contract's status history, oldest first."""
    rows = session.exec(
        select(ContractStatusChange)
        .where(ContractStatusChange.contract_id == contract_id)
        .order_by(col(ContractStatusChange.effective_at), col(ContractStatusChange.id))
    ).all()
    return [StatusChange(to_status=str(r.to_status), effective_at=r.effective_at) for r in rows]


def agent_of(session: Session, contract_id: int) -> Agent | None:
    contract = session.get(Contract, contract_id)
    return service.get_agent(session, contract.agent_code) if contract is not None else None
