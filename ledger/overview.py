"""The staff overview's contract list: each contract with its open amount (the same rule as
`service.arrears`: open premiums due by the date plus unpaid fees not written off), in two grouped queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func
from sqlmodel import Session, col, select

from ledger import service
from models.ledger import Contract, Fee, Premium, PremiumStatus

LIST_LIMIT = 200  # rows a staff list shows


@dataclass(frozen=True)
class ContractRow:
    contract_number: str
    status: str
    open_cents: int


def contracts_overview(session: Session, as_of: date, limit: int = LIST_LIMIT) -> tuple[list[ContractRow], int]:
    """Contracts with their open amount (same rule as `service.arrears`), in two grouped queries."""
    contracts = list(session.exec(select(Contract).order_by(col(Contract.contract_number)).limit(limit)))
    ids = [c.id for c in contracts]
    premiums_open: dict[int, int] = {
        int(contract_id): int(total or 0)
        for contract_id, total in session.exec(
            select(Premium.contract_id, func.sum(col(Premium.amount_cents) - col(Premium.paid_cents)))
            .where(
                col(Premium.contract_id).in_(ids), Premium.status == PremiumStatus.OPEN, col(Premium.due_date) <= as_of
            )
            .group_by(col(Premium.contract_id))
        )
    }
    fees_open: dict[int, int] = {
        int(contract_id): int(total or 0)
        for contract_id, total in session.exec(
            select(Fee.contract_id, func.sum(col(Fee.amount_cents) - col(Fee.paid_cents)))
            .where(
                col(Fee.contract_id).in_(ids),
                col(Fee.written_off).is_(False),
                col(Fee.paid_cents) < col(Fee.amount_cents),
            )
            .group_by(col(Fee.contract_id))
        )
    }
    rows = [
        ContractRow(
            contract_number=c.contract_number,
            status=str(c.status),
            open_cents=premiums_open.get(c.id or 0, 0) + fees_open.get(c.id or 0, 0),
        )
        for c in contracts
    ]
    return rows, service.count_rows(session, Contract)
