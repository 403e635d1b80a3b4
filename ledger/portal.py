"""What the customer portal reads from the ledger (issue #14): a customer's contracts in dunning."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, col, select

from core.references import mask_contract_number
from ledger import service
from models.case import Arrears
from models.ledger import Contract, Customer, PayLink


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
            )
        )
    return found
