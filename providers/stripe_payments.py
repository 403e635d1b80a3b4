"""Stripe: Checkout Sessions for the stable pay link and the customer portal, and the verified webhook.

The session is created when the customer clicks the link, for the balance open at that moment,
with a deterministic idempotency key (the SDK's own key is random and would not protect a
retried request). Case and contract go into the session's and the PaymentIntent's metadata, so
every later event (refund, dispute) can be traced back without personal data. A portal checkout
paying several contracts has one line item per contract and its allocation ("K-1:12000,K-2:5050")
in the metadata, from which the webhook books each contract's share on that contract; it may name
the payment methods offered (card, or SEPA direct debit).
"""

from __future__ import annotations

import json
from typing import Any

import stripe

from providers.base import (
    CheckoutLine,
    CheckoutRequest,
    HostedCheckout,
    ProviderError,
    ProviderUnavailable,
    WebhookRejected,
    classify,
)

NAME = "stripe"


class StripePayments:
    name = NAME
    hosted = True

    def __init__(
        self,
        api_key: str,
        webhook_secret: str,
        *,
        api_base: str = "",
        payment_method_types: list[str] | None = None,
        tolerance_seconds: int = 300,
        max_network_retries: int = 2,
    ) -> None:
        self.webhook_secret = webhook_secret
        self.payment_method_types = payment_method_types or []
        self.tolerance_seconds = tolerance_seconds
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,  # the SDK retries with the same idempotency key
        )

    def create_checkout(self, request: CheckoutRequest) -> HostedCheckout:
        metadata = {"case_id": request.case_id, "contract_number": request.contract_number}
        lines = request.lines or (
            CheckoutLine(request.contract_number, request.case_id, request.amount_cents, request.description),
        )
        if len(lines) > 1:
            # The webhook books each contract's share on its own contract from this (contract numbers
            # and cents only; Stripe keeps at most 500 characters per value).
            allocation = ",".join(f"{line.contract_number}:{line.amount_cents}" for line in lines)
            if len(allocation) > 500:
                raise ValueError(f"{len(lines)} contracts do not fit one checkout's metadata; pay them in parts")
            metadata["allocation"] = allocation
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [line_item(line, request.currency, tagged=bool(request.lines)) for line in lines],
            "client_reference_id": request.case_id,
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "expires_at": request.expires_at,
        }
        method_types = list(request.payment_method_types) or self.payment_method_types
        if method_types:
            params["payment_method_types"] = method_types
        try:
            session = self.client.v1.checkout.sessions.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.StripeError as error:
            raise as_provider_error(error) from error
        if not session.url:
            raise ProviderUnavailable(NAME, None, f"checkout session {session.id} came back without a url")
        return HostedCheckout(
            session_id=session.id,
            url=session.url,
            amount_cents=session.amount_total or request.amount_cents,
            expires_at=session.expires_at,
        )

    def verify_event(self, body: bytes, header: str | None, now: int) -> dict[str, Any]:
        """The event, if the `Stripe-Signature` header proves it came from Stripe recently.

        The SDK checks the HMAC and that the timestamp is not older than the tolerance; a
        timestamp from the future beyond the tolerance is rejected here as well.
        """
        try:
            stripe.WebhookSignature.verify_header(body, header, self.webhook_secret, self.tolerance_seconds)
        except stripe.SignatureVerificationError as error:
            raise WebhookRejected(f"Stripe-Signature rejected: {error.user_message or error}") from None
        timestamp = int(dict(p.split("=", 1) for p in (header or "").split(",") if "=" in p).get("t", "0"))
        if timestamp > now + self.tolerance_seconds:
            raise WebhookRejected(f"Stripe-Signature timestamp is {timestamp - now} s in the future")
        try:
            event = json.loads(body)
        except json.JSONDecodeError:
            raise WebhookRejected("body is not valid JSON") from None
        if not isinstance(event, dict) or not all(isinstance(event.get(k), str) for k in ("id", "type")):
            raise WebhookRejected("body is not a Stripe event (id and type missing)")
        return event


def line_item(line: CheckoutLine, currency: str, *, tagged: bool) -> dict[str, Any]:
    """One line of the checkout page; `tagged`: it names its case and contract (several contracts at once)."""
    product: dict[str, Any] = {"name": line.description}
    if tagged:
        product["metadata"] = {"case_id": line.case_id, "contract_number": line.contract_number}
    return {
        "quantity": 1,
        "price_data": {"currency": currency, "unit_amount": line.amount_cents, "product_data": product},
    }


def as_provider_error(error: stripe.StripeError) -> ProviderError:
    detail = error.user_message or type(error).__name__
    code = getattr(error, "code", None)
    if code:
        detail = f"{detail} ({code})"
    if isinstance(error, stripe.APIConnectionError):
        return ProviderUnavailable(NAME, None, detail)
    return classify(NAME, error.http_status, detail)
