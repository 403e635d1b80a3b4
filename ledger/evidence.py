"""Notices and the proof that they went out and arrived (DOMAIN.md §2: the insurer must prove
receipt). A claims handler or a court asks: which notice, with which content, sent when, and
what confirms it arrived? This answers per contract, from the outbox and the evidence facts.

"Notice" here means every declaration whose legal effect hangs on its receipt: the qualified
notice (its deadline runs from receipt) and the termination letter (it takes effect on receipt,
and the month in which paying voids it runs from there)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from ledger.service import LedgerError, NotFound, get_contract
from models.evidence import EvidenceKind, NoticeEvidence
from models.ledger import Message
from models.messages import TEXT_FORM_KINDS

NOTICE_KINDS = {kind.value for kind in TEXT_FORM_KINDS}  # declarations whose receipt must be provable
SOURCES = {"print-service", "post", "sendgrid", "twilio", "staff"}


@dataclass
class NoticeProof:
    message_id: int
    case_id: str | None
    kind: str  # qualified_notice | termination_letter
    channel: str
    created_at: datetime
    total_cents: int | None
    content_sha256: str  # of the PDF for letters, of the text otherwise: what exactly was said
    evidence: list[NoticeEvidence] = field(default_factory=list)

    @property
    def proven(self) -> str:
        """'delivered', 'dispatched', 'undeliverable' or 'none' — the strongest fact known."""
        kinds = {e.kind for e in self.evidence}
        for kind in (EvidenceKind.UNDELIVERABLE, EvidenceKind.DELIVERED, EvidenceKind.DISPATCHED):
            if kind in kinds:
                return kind.value
        return "none"


def _content_hash(message: Message) -> str:
    return hashlib.sha256(message.pdf if message.pdf else message.body_text.encode()).hexdigest()


def record(
    session: Session,
    message_id: int,
    kind: EvidenceKind,
    at: datetime,
    source: str,
    reference: str,
    recorded_by: str,
) -> tuple[NoticeEvidence, bool]:
    """Add a fact about a notice; the same fact (message, kind, reference) again changes nothing."""
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound(f"message {message_id} not found")
    if message.kind not in NOTICE_KINDS:
        raise LedgerError(f"message {message_id} is a {message.kind}, not a qualified notice or termination letter")
    if source not in SOURCES:
        raise LedgerError(f"source must be one of {sorted(SOURCES)}, got {source!r}")
    if at.tzinfo is None:
        raise LedgerError("at must carry a time zone offset")
    created = message.created_at if message.created_at.tzinfo else message.created_at.replace(tzinfo=UTC)
    if at < created:
        raise LedgerError(f"at {at.isoformat()} is before the notice was created ({created.isoformat()})")
    if at > datetime.now(UTC):
        raise LedgerError(f"at {at.isoformat()} is in the future")
    return _store(session, message_id, kind, at, source, reference, recorded_by)


def _store(
    session: Session,
    message_id: int,
    kind: EvidenceKind,
    at: datetime,
    source: str,
    reference: str,
    recorded_by: str,
) -> tuple[NoticeEvidence, bool]:
    existing = session.exec(
        select(NoticeEvidence).where(
            NoticeEvidence.message_id == message_id, NoticeEvidence.kind == kind, NoticeEvidence.reference == reference
        )
    ).first()
    if existing is not None:
        return existing, False
    fact = NoticeEvidence(
        message_id=message_id,
        kind=kind,
        at=at,
        source=source,
        reference=reference,
        recorded_by=recorded_by,
        recorded_at=datetime.now(UTC),
    )
    session.add(fact)
    session.flush()
    return fact, True


def notices(session: Session, contract_number: str) -> list[NoticeProof]:
    contract = get_contract(session, contract_number)
    rows = session.exec(
        select(Message)
        .where(Message.contract_id == contract.id, col(Message.kind).in_(NOTICE_KINDS))
        .order_by(col(Message.id))
    ).all()
    proofs = []
    for message in rows:
        assert message.id is not None
        facts = session.exec(
            select(NoticeEvidence).where(NoticeEvidence.message_id == message.id).order_by(col(NoticeEvidence.at))
        ).all()
        proofs.append(
            NoticeProof(
                message_id=message.id,
                case_id=message.case_id,
                kind=message.kind,
                channel=message.channel,
                created_at=message.created_at,
                total_cents=message.total_cents,
                content_sha256=_content_hash(message),
                evidence=list(facts),
            )
        )
    return proofs


def record_provider_fact(
    session: Session, message: Message, kind: EvidenceKind, at: datetime, source: str, reference: str
) -> None:
    """A provider accepted / delivered / bounced a message: if it is a notice, that is evidence."""
    if message.kind not in NOTICE_KINDS or message.id is None:
        return
    moment = at if at.tzinfo else at.replace(tzinfo=UTC)
    created = message.created_at if message.created_at.tzinfo else message.created_at.replace(tzinfo=UTC)
    # A provider's clock may run behind the moment the outbox stored the message: the fact stands.
    _store(session, message.id, kind, max(moment, created), source, reference, recorded_by=source)
