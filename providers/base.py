"""One small interface per job: send an e-mail, send an SMS, open a hosted checkout.

Adapters translate the providers' SDK errors into two kinds, so the activity decides once:

- `ProviderRejected` (HTTP 4xx except 408/409/429): the request itself is wrong (bad credentials,
  a refused recipient, a malformed message). Retrying changes nothing: non-retryable.
- `ProviderUnavailable` (5xx, 408/409/429, network): try again later with the same idempotency key.

`RecipientInvalid` is the 4xx for "this address/number cannot receive": the caller marks the
contact data invalid and falls back to the next channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class ProviderError(Exception):
    retryable = False

    def __init__(self, provider: str, status: int | None, detail: str) -> None:
        self.provider = provider
        self.status = status
        self.detail = detail
        where = f"HTTP {status}" if status is not None else "no HTTP answer"
        super().__init__(f"{provider} refused the request ({where}): {detail}")


class ProviderRejected(ProviderError):
    """4xx: the request is wrong; retrying the same request cannot help."""


class RecipientInvalid(ProviderRejected):
    """The provider refuses this recipient (invalid number, unsubscribed, bounced before)."""


class ProviderUnavailable(ProviderError):
    """5xx, rate limit, timeout or no connection: retry later (same idempotency key)."""

    retryable = True

    def __init__(self, provider: str, status: int | None, detail: str) -> None:
        super().__init__(provider, status, detail)
        where = f"HTTP {status}" if status is not None else "no HTTP answer"
        self.args = (f"{provider} is unavailable ({where}): {detail}",)


class WebhookRejected(ValueError):
    """A webhook that is not provably from the provider (or too old): nothing is processed."""


def classify(provider: str, status: int | None, detail: str) -> ProviderError:
    """The error kind for an HTTP status (None: no answer at all)."""
    if status is None or status >= 500 or status in (408, 409, 429):
        return ProviderUnavailable(provider, status, detail)
    return ProviderRejected(provider, status, detail)


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str
    case_id: str  # custom_args: the case (or campaign workflow) id and the step, nothing personal
    step: str
    # Extra mail headers, e.g. RFC 8058 one-click unsubscribe on marketing mail (List-Unsubscribe,
    # List-Unsubscribe-Post). Transactional mail (dunning, agents) carries none.
    headers: Mapping[str, str] = field(default_factory=dict)
    # Open and click tracking: only marketing mail with consent and without pay links. Off for
    # everything else, so a pay link reaches the customer unchanged (no tracking redirect).
    track: bool = False


@dataclass(frozen=True)
class OutgoingSms:
    to: str
    body: str
    case_id: str
    step: str


class EmailSender(Protocol):
    name: str
    external: bool  # False: the outbox is the delivery (embedded default)

    def send_email(self, email: OutgoingEmail) -> str:
        """Hand the e-mail over; returns the provider's message id."""
        ...

    def find_email(self, email: OutgoingEmail, since: datetime) -> str | None:
        """The provider's id of this e-mail if an earlier attempt got it accepted after `since`."""
        ...


class SmsSender(Protocol):
    name: str
    external: bool

    def send_sms(self, sms: OutgoingSms, status_callback: str) -> str:
        """Hand the SMS over, status callbacks to `status_callback`; returns the provider's id."""
        ...

    def find_sms(self, sms: OutgoingSms, since: datetime) -> str | None: ...


@dataclass(frozen=True)
class CheckoutLine:
    """One contract's share of a checkout that pays several (the customer portal, issue #14)."""

    contract_number: str
    case_id: str
    amount_cents: int
    description: str  # no personal data


@dataclass(frozen=True)
class CheckoutRequest:
    amount_cents: int
    currency: str
    case_id: str
    contract_number: str
    description: str  # what the customer sees on the checkout page (no personal data)
    success_url: str
    cancel_url: str
    idempotency_key: str
    expires_at: int  # unix seconds
    # Several contracts at once: one line item each (their amounts add up to amount_cents); empty:
    # one line for `contract_number`.
    lines: tuple[CheckoutLine, ...] = ()
    # The methods offered, e.g. ("card",) or ("sepa_debit",); empty: the adapter's configured default.
    payment_method_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.lines and sum(line.amount_cents for line in self.lines) != self.amount_cents:
            raise ValueError(
                f"checkout lines add up to {sum(line.amount_cents for line in self.lines)} cents, "
                f"amount_cents is {self.amount_cents}"
            )


@dataclass(frozen=True)
class HostedCheckout:
    session_id: str
    url: str
    amount_cents: int
    expires_at: int


class PaymentProvider(Protocol):
    name: str
    hosted: bool  # False: the engine's own pay page and TestPay (embedded default)

    def create_checkout(self, request: CheckoutRequest) -> HostedCheckout: ...
