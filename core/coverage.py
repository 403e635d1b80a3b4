"""Was a contract covered at a given moment? Answered from its status history alone.

A claims handler asks this for the date of an insured event: cover is suspended from the moment
the notice deadline passed with arrears and restored from the moment the arrears were paid
(§38(2) VVG); events in between are not covered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from models.ledger import ContractStatus


@dataclass(frozen=True)
class StatusChange:
    effective_at: datetime
    from_status: ContractStatus | None
    to_status: ContractStatus
    reason: str = ""


@dataclass(frozen=True)
class CoverageAnswer:
    covered: bool
    status: ContractStatus
    since: datetime | None  # when that status began (None: since the contract's start)
    reason: str


def status_at(history: Sequence[StatusChange], moment: datetime) -> CoverageAnswer:
    """The status in force at `moment`; a change takes effect at its own instant."""
    if moment.tzinfo is None:
        raise ValueError(f"moment must carry a time zone, got {moment.isoformat()}")
    ordered = sorted(history, key=lambda c: c.effective_at)
    current = ordered[0].from_status if ordered and ordered[0].from_status else ContractStatus.ACTIVE
    since: datetime | None = None
    reason = "no status change before this moment"
    for change in ordered:
        if change.effective_at > moment:
            break
        current, since, reason = change.to_status, change.effective_at, change.reason
    return CoverageAnswer(covered=current == ContractStatus.ACTIVE, status=current, since=since, reason=reason)
