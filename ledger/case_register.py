"""The case register (models/analytics.py): one row per dunning case, opened by the case's first
arrears read and ended by its `close_case` activity. Both writes are idempotent: the case id is
unique, a retried activity finds the row it wrote."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from models.analytics import CaseRecord
from models.ledger import Contract, ContractStatus, ContractStatusChange, Payment


def opened_at_of(case_id: str) -> datetime | None:
    """The start moment the case id carries (`dunning-<contract>/<YYYYmmddTHHMMSS>`), or None."""
    try:
        return datetime.strptime(case_id.rsplit("/", 1)[1], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except (IndexError, ValueError):
        return None


def find(session: Session, case_id: str) -> CaseRecord | None:
    return session.exec(select(CaseRecord).where(CaseRecord.case_id == case_id)).first()


def open_case(
    session: Session, *, case_id: str, contract: Contract, plan_id: str | None, opened_at: datetime, claimed_cents: int
) -> CaseRecord:
    """The case's row, written once: the first read's balance is what the case claimed at opening."""
    existing = find(session, case_id)
    if existing is not None:
        return existing
    record = CaseRecord(
        case_id=case_id,
        contract_id=contract.id or 0,
        plan_id=plan_id,
        opened_at=opened_at,
        claimed_cents=claimed_cents,
    )
    session.add(record)
    session.flush()
    return record


def close_case(
    session: Session, *, case_id: str, contract: Contract, action: str, stage: str | None, now: datetime
) -> CaseRecord:
    """End the case's row (once): how it ended, where it stood, when the clearing payment came."""
    record = find(session, case_id)
    if record is None:  # a case from before the register: opened_at from its id, claimed unknown
        record = CaseRecord(
            case_id=case_id,
            contract_id=contract.id or 0,
            plan_id=contract.dunning_plan,
            opened_at=opened_at_of(case_id) or now,
        )
        session.add(record)
    if record.closed_at is not None:
        return record
    record.closed_at = now
    record.outcome = action
    record.stage_at_close = stage
    record.contract_status_at_close = ContractStatus(contract.status).value
    record.suspended = (
        session.exec(
            select(func.count())
            .select_from(ContractStatusChange)
            .where(
                ContractStatusChange.case_id == case_id,
                ContractStatusChange.to_status == ContractStatus.SUSPENDED,
            )
        ).one()
        > 0
    )
    if action == "paid":
        record.paid_at = session.exec(
            select(func.max(Payment.received_at)).where(
                Payment.contract_id == contract.id,
                col(Payment.returned).is_(False),
                col(Payment.received_at) <= now,
            )
        ).one()
    session.add(record)
    session.flush()
    return record
