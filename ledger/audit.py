"""The audit trail (issue #12): who changed what, when, from where. Rows are only ever inserted;
the contract page shows a contract's rows, newest first."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, col, select

from models.auth import AuditEvent


def record(
    session: Session,
    *,
    actor_kind: str,
    actor: str,
    via: str,
    action: str,
    contract_number: str | None = None,
    detail: dict[str, object] | None = None,
    source: str = "",
    status_code: int | None = None,
) -> AuditEvent:
    event = AuditEvent(
        at=datetime.now(UTC),
        actor_kind=actor_kind,
        actor=actor,
        via=via,
        action=action,
        contract_number=contract_number,
        detail=detail or {},
        source=source,
        status_code=status_code,
    )
    session.add(event)
    session.flush()
    return event


def for_contract(session: Session, contract_number: str, limit: int = 200) -> list[AuditEvent]:
    query = (
        select(AuditEvent)
        .where(AuditEvent.contract_number == contract_number)
        .order_by(col(AuditEvent.id).desc())
        .limit(limit)
    )
    return list(session.exec(query))
