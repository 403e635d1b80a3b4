"""Proof that a qualified notice reached the customer (§38 VVG: the insurer must prove receipt).

Each notice is an outbox message; its evidence is a list of facts from outside the engine: the
print service posted the letter (with its tracking number for registered mail), the letter came
back undeliverable, the e-mail provider delivered or bounced it. Facts are only added, never
changed; the same fact reported twice is stored once.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel


class EvidenceKind(StrEnum):
    DISPATCHED = "dispatched"  # handed to the post / print service / provider
    DELIVERED = "delivered"  # delivery confirmed (registered mail, provider event)
    UNDELIVERABLE = "undeliverable"  # came back, bounced, unknown address


class NoticeEvidence(SQLModel, table=True):
    __tablename__ = "notice_evidence"
    __table_args__ = (UniqueConstraint("message_id", "kind", "reference"),)
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id", index=True)
    kind: EvidenceKind
    at: datetime  # when it happened (not when it was recorded)
    source: str  # print-service | post | sendgrid | twilio | staff
    reference: str = ""  # tracking number, provider event id
    recorded_by: str
    recorded_at: datetime
