"""The case register: one row per dunning case, the facts collections analytics need that no other
ledger table records (issue #16): when a case opened and what it claimed then, how it ended, the
stage it had reached, when the clearing payment came and what became of the contract.

Written by the case's own ledger activities (migration 0016_case_register):
- the first arrears read of a case (`load_arrears` with the case id) opens the row: opened_at, the
  pinned plan, the balance claimed at opening (premiums due, fees and interest booked);
- `close_case` ends it: closed_at, the closing action (paid | write_off | cancel), the stage reached
  before closing, the clearing payment's time (paid cases), the contract status at the end and
  whether the contract was suspended during the case.

Cases that opened before the register existed get their row when they close (opened_at from the
case id, claimed unknown: NULL, so they stay out of the recovery curve).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel


class CaseRecord(SQLModel, table=True):
    __tablename__ = "case_records"
    __table_args__ = (
        # Every analytics query filters or groups by the opening moment (cohorts, the period filter).
        Index("ix_case_records_opened", "opened_at"),
        Index("ix_case_records_contract", "contract_id", "opened_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(unique=True)  # dunning-<contract>/<start>: the ledger's case key everywhere
    contract_id: int = Field(foreign_key="contracts.id")
    plan_id: str | None = None  # the plan the case pinned
    opened_at: datetime
    claimed_cents: int | None = None  # balance at the first read; None: opened before the register
    closed_at: datetime | None = None
    outcome: str | None = None  # paid | write_off | cancel (the CloseCase action); None: still open
    stage_at_close: str | None = None  # CaseStage value the case had reached when it closed
    paid_at: datetime | None = None  # paid cases: when the clearing payment was received
    contract_status_at_close: str | None = None  # active | suspended | terminated
    suspended: bool = False  # the contract was suspended during the case (then reactivated if kept)
