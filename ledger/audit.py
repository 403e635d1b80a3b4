"""The audit trail (issue #12): who changed what, when, from where. Rows are only ever inserted;
the contract page shows a contract's rows, newest first."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from models.auth import AuditEvent

# The contract a web request changed, for code below the handler that has no request
# (ledger/inbound.py: a payment from a webhook, a billing event, a TestPay checkout). The audit
# middleware (web/auth/audit.py) opens one per request and reads it when the response is sent.
TOUCHED: ContextVar[dict[str, Any] | None] = ContextVar("audit_touched", default=None)


def touched_contract(contract_number: str) -> None:
    """Record that the current request changed this contract (the first one named wins)."""
    current = TOUCHED.get()
    if current is not None:
        current.setdefault("contract_number", contract_number)


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
