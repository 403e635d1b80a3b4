"""Bookkeeping of messages handed to a real provider (table `provider_deliveries`).

Every function runs inside the caller's transaction. Outcomes reported by webhooks move a
delivery forward only (`sending`/`accepted` → `delivered` → …, anything → `failed`), so a late or
repeated callback cannot undo a failure that already triggered a fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from ledger import evidence
from models.activities import SendMessage
from models.evidence import EvidenceKind
from models.ledger import Customer, Message
from models.messages import Channel, MessageKind
from models.providers import DeliveryStatus, ProviderDelivery

RANK = {DeliveryStatus.SENDING: 0, DeliveryStatus.ACCEPTED: 1, DeliveryStatus.DELIVERED: 2, DeliveryStatus.FAILED: 3}


def find_by_key(session: Session, message_key: str) -> ProviderDelivery | None:
    return session.exec(select(ProviderDelivery).where(ProviderDelivery.message_key == message_key)).first()


def find_by_provider_id(session: Session, provider: str, provider_message_id: str) -> ProviderDelivery | None:
    return session.exec(
        select(ProviderDelivery).where(
            ProviderDelivery.provider == provider, ProviderDelivery.provider_message_id == provider_message_id
        )
    ).first()


def accept(session: Session, delivery: ProviderDelivery, provider_message_id: str, at: datetime) -> None:
    delivery.provider_message_id = provider_message_id
    if RANK.get(delivery.status, 0) < RANK[DeliveryStatus.ACCEPTED]:
        delivery.status = DeliveryStatus.ACCEPTED
    delivery.accepted_at = at
    delivery.updated_at = at
    session.add(delivery)
    message = session.get(Message, delivery.message_id)
    if message is not None and message.status == "queued":
        message.status = "sent"
        message.sent_at = at
        session.add(message)
    if message is not None:  # proof of dispatch for a qualified notice (ledger/evidence.py)
        evidence.record_provider_fact(
            session, message, EvidenceKind.DISPATCHED, at, delivery.provider, provider_message_id
        )
    session.flush()


@dataclass(frozen=True)
class Outcome:
    changed: bool  # False: the delivery was already at this state or further
    contact_invalidated: bool
    fallback: SendMessage | None  # the step's message to send again on another channel


def record_outcome(
    session: Session,
    delivery: ProviderDelivery,
    status: str,
    error: str | None,
    at: datetime,
    *,
    contact_invalid: bool,
) -> Outcome:
    """A provider reported `status` for this delivery; on failure mark the contact and plan a fallback."""
    if RANK.get(status, 0) <= RANK.get(delivery.status, 0):
        return Outcome(changed=False, contact_invalidated=False, fallback=None)
    delivery.status = status
    delivery.error = error
    delivery.updated_at = at
    session.add(delivery)
    message = session.get(Message, delivery.message_id)
    if message is not None:
        message.status = {DeliveryStatus.DELIVERED: "delivered", DeliveryStatus.FAILED: "failed"}.get(
            status, message.status
        )
        session.add(message)
        fact = {DeliveryStatus.DELIVERED: EvidenceKind.DELIVERED, DeliveryStatus.FAILED: EvidenceKind.UNDELIVERABLE}
        if status in fact:  # proof of delivery (or of its failure) for a qualified notice
            evidence.record_provider_fact(
                session, message, fact[status], at, delivery.provider, delivery.provider_message_id or ""
            )
    invalidated = False
    fallback: SendMessage | None = None
    if status == DeliveryStatus.FAILED and message is not None and message.kind != MessageKind.AGENT_HANDOVER:
        if contact_invalid:
            invalidated = invalidate_contact(session, message, Channel(delivery.channel))
        if delivery.is_primary and delivery.request:
            fallback = fallback_request(SendMessage.model_validate(delivery.request), Channel(delivery.channel))
    session.flush()
    return Outcome(changed=True, contact_invalidated=invalidated, fallback=fallback)


def invalidate_contact(session: Session, message: Message, channel: Channel) -> bool:
    """Mark the customer's e-mail address or phone number unusable (only if it is still the one used)."""
    from models.ledger import Contract

    contract = session.get(Contract, message.contract_id) if message.contract_id else None
    customer = session.get(Customer, contract.customer_id) if contract else None
    if customer is None:
        return False
    if channel == Channel.SMS and customer.phone == message.recipient and customer.phone_valid:
        customer.phone_valid = False
    elif channel == Channel.EMAIL and customer.email == message.recipient and customer.email_valid:
        customer.email_valid = False
    else:
        return False
    session.add(customer)
    return True


def fallback_request(original: SendMessage, failed: Channel) -> SendMessage:
    """The same step without the failed channel: same key (so the fee and pay link stay the same,
    and the new channel's message gets its own key `<step>:<channel>`)."""
    return original.model_copy(
        update={
            "channels": [c for c in original.channels if c != failed] or [Channel.LETTER],
            "copies": [c for c in original.copies if c != failed],
        }
    )
