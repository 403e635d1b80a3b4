"""Tables of the real providers (issue #5): what was handed to Stripe, Twilio and SendGrid.

A `ProviderDelivery` exists for every outbox message that went to a real e-mail or SMS provider.
It is written *before* the provider is called (status `sending`), so a retried activity knows
that an earlier attempt may have reached the provider and looks the message up there instead of
sending it twice. Webhooks move it on (`delivered`, `failed`). No personal data beyond what the
outbox row already holds: the provider's message id, a status and an error code.

A `ProviderCheckout` records each Stripe Checkout Session the stable pay link opened.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class DeliveryStatus:
    SENDING = "sending"  # handed to the provider, answer not yet recorded
    ACCEPTED = "accepted"  # the provider took it (message id known)
    DELIVERED = "delivered"
    FAILED = "failed"  # undeliverable (bounce, unknown number, spam report)


class ProviderDelivery(SQLModel, table=True):
    __tablename__ = "provider_deliveries"
    id: int | None = Field(default=None, primary_key=True)
    message_key: str = Field(unique=True)  # messages.idempotency_key: <case id>:<step>:<channel>
    message_id: int = Field(foreign_key="messages.id", index=True)
    case_id: str = Field(index=True)
    contract_id: int | None = Field(default=None, foreign_key="contracts.id")  # None: a campaign mail
    channel: str
    provider: str  # twilio | sendgrid
    provider_message_id: str | None = Field(default=None, index=True)
    status: str = DeliveryStatus.SENDING
    is_primary: bool = True  # the step's main channel (a failed copy needs no fallback)
    # The activity request (ids, amounts, channels, dates only): a fallback re-sends from it.
    request: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON))
    attempt_started_at: datetime
    accepted_at: datetime | None = None
    updated_at: datetime | None = None
    error: str | None = None  # provider status/error code, e.g. "undelivered/30005" or "bounce"


class ProviderCheckout(SQLModel, table=True):
    """A Stripe Checkout Session opened from a stable pay link, for the current open balance."""

    __tablename__ = "provider_checkouts"
    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(unique=True)
    provider: str = "stripe"
    pay_link_token_id: str = Field(index=True)
    contract_id: int = Field(foreign_key="contracts.id")
    case_id: str
    amount_cents: int
    idempotency_key: str
    created_at: datetime
    expires_at: datetime
    # Opened in the customer portal (issue #14): whose it is and how it is shared among contracts
    # (ledger/portal_payments.Share rows); the webhook fills in the PaymentIntent once it booked.
    customer_id: int | None = Field(default=None, foreign_key="customers.id")
    allocation: list[dict[str, object]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    payment_intent: str | None = None
