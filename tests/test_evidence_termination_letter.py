"""A termination letter takes effect on receipt and its cure month runs from there (§38(3) VVG), so
its dispatch and delivery are proven like a qualified notice's, and it is listed among the contract's
notices with the hash of what was sent."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from ledger import evidence
from ledger.db import session_scope
from ledger.service import LedgerError
from models.evidence import EvidenceKind
from models.ledger import Message
from tests.conftest import seed_contract
from tests.test_evidence import PDF, add_message


def test_a_termination_letter_is_a_notice_whose_receipt_is_proven(engine: Engine) -> None:
    seed_contract(engine, premiums=[])
    created = datetime.now(UTC) - timedelta(days=2)
    notice = add_message(engine, "qualified_notice", "letter", created - timedelta(days=30))
    termination = add_message(engine, "termination_letter", "letter", created)
    add_message(engine, "reactivation", "letter", created)  # a confirmation proves nothing: not listed

    with session_scope(engine) as session:
        _, stored = evidence.record(
            session, termination, EvidenceKind.DELIVERED, created + timedelta(days=1), "post", "RR1DE", "print-api"
        )
        assert stored
        message = session.get(Message, termination)
        assert message is not None
        evidence.record_provider_fact(session, message, EvidenceKind.DISPATCHED, created, "print-service", "job-1")

    with session_scope(engine) as session:
        proofs = evidence.notices(session, "K-100001")
    assert [(p.message_id, p.kind) for p in proofs] == [
        (notice, "qualified_notice"),
        (termination, "termination_letter"),
    ]
    letter = proofs[1]
    assert letter.proven == "delivered"
    assert letter.content_sha256 == hashlib.sha256(PDF).hexdigest()
    assert [(e.kind, e.reference) for e in letter.evidence] == [
        (EvidenceKind.DISPATCHED, "job-1"),
        (EvidenceKind.DELIVERED, "RR1DE"),
    ]


def test_evidence_for_a_confirmation_is_refused(engine: Engine) -> None:
    seed_contract(engine, premiums=[])
    created = datetime.now(UTC) - timedelta(days=1)
    confirmation = add_message(engine, "termination_void", "letter", created)
    with session_scope(engine) as session, pytest.raises(LedgerError, match="not a qualified notice"):
        evidence.record(session, confirmation, EvidenceKind.DISPATCHED, created, "post", "", "mia")
