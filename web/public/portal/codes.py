"""One-time codes of the portal (issue #14): for the step-up (to the address or number on file) and to
confirm a new e-mail address or mobile number (to the new one). Six digits from `secrets`, stored only
as SHA-256 (models/portal.PortalChallenge), sent like the engine's own messages: a row in the outbox
(kind `portal_code`), handed to the e-mail or SMS provider when one is configured. The code itself is
never logged."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlmodel import select

from activities.messaging import Outbox
from ledger.db import session_scope
from models.ledger import Message
from models.messages import Channel, RenderedMessage

CODE_KIND = "portal_code"  # the outbox's kind for one-time codes
CODE_DIGITS = 6


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def matches(entered: str, stored_hash: str) -> bool:
    """In constant time."""
    return hmac.compare_digest(code_hash(entered), stored_hash)


def message_key(case_id: str, challenge_id: int) -> str:
    """The outbox row's idempotency key: the case and the challenge, nothing personal."""
    return f"{case_id}:portal-code:{challenge_id}"


def send_code(
    outbox: Outbox,
    *,
    key: str,
    case_id: str,
    contract_id: int,
    channel: Channel,
    to: str,
    subject: str,
    text: str,
    now: datetime,
) -> int:
    """Send a one-time code like the engine's messages: a row in the outbox (once per `key`), handed
    to the provider when the channel goes to one. Raises ProviderError when the provider refuses."""
    queued = outbox.external(channel)
    with session_scope(outbox.engine) as db:
        existing = db.exec(select(Message).where(Message.idempotency_key == key)).first()
        message = existing or Message(
            idempotency_key=key,
            case_id=case_id,
            contract_id=contract_id,
            channel=channel,
            kind=CODE_KIND,
            recipient=to,
            subject=subject,
            body_text=text,
            created_at=now,
            sent_at=None if queued else now,
            status="queued" if queued else "sent",
        )
        db.add(message)
        db.flush()
        message_id, status = message.id or 0, message.status
    if status == "queued":
        outbox.deliver(message_id, key, case_id, channel, RenderedMessage(subject=subject, text=text), to, request=None)
    return message_id
