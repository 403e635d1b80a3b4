"""Proof of dispatch and delivery per qualified notice: the print service (or staff) reports
facts, claims handlers read them per contract."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from core.limits import MAX_STAFF_NAME_CHARS
from ledger import evidence
from models.evidence import EvidenceKind
from models.inputs import Line, PastMoment
from web.deps import RowId, db_session

router = APIRouter(prefix="/api", tags=["notices"])


class EvidenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: EvidenceKind
    at: PastMoment  # with a UTC offset, at most 10 years ago, not in the future (docs/input-rules.md)
    source: Literal["print-service", "post", "sendgrid", "twilio", "staff"]
    reference: Line = Field(default="", max_length=200)  # tracking number of registered mail, event id
    recorded_by: Annotated[Line, Field(min_length=1, max_length=MAX_STAFF_NAME_CHARS)]


class EvidenceOut(BaseModel):
    kind: EvidenceKind
    at: datetime
    source: str
    reference: str
    recorded_by: str


class NoticeOut(BaseModel):
    message_id: int
    case_id: str | None
    channel: str
    created_at: datetime
    total_cents: int | None
    content_sha256: str
    proven: str
    evidence: list[EvidenceOut]


@router.post("/messages/{message_id}/evidence")
def add_evidence(message_id: RowId, body: EvidenceIn, session: Session = Depends(db_session)) -> dict[str, object]:
    fact, created = evidence.record(
        session, message_id, body.kind, body.at, body.source, body.reference, body.recorded_by
    )
    return {"message_id": message_id, "evidence_id": fact.id, "created": created}


@router.get("/contracts/{contract_number}/notices", response_model=list[NoticeOut])
def list_notices(contract_number: str, session: Session = Depends(db_session)) -> list[NoticeOut]:
    return [
        NoticeOut(
            message_id=p.message_id,
            case_id=p.case_id,
            channel=p.channel,
            created_at=p.created_at,
            total_cents=p.total_cents,
            content_sha256=p.content_sha256,
            proven=p.proven,
            evidence=[
                EvidenceOut(kind=e.kind, at=e.at, source=e.source, reference=e.reference, recorded_by=e.recorded_by)
                for e in p.evidence
            ],
        )
        for p in evidence.notices(session, contract_number)
    ]
