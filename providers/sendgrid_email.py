"""SendGrid: e-mail with `custom_args` (case id and step only), the mail's own headers (RFC 8058
one-click unsubscribe on marketing mail), click and open tracking off unless the mail asks for it
(marketing mail without pay links), SendGrid's own subscription footer always off (the engine has
its own unsubscribe link), and the signed Event Webhook (ECDSA P-256 over timestamp + body, checked
with the SDK's EventWebhook).

The SDK does not look at the timestamp: `verify_events` rejects a signature older (or newer)
than the replay window, so a captured webhook cannot be replayed later.

SendGrid has no idempotency key for sending. A retried activity asks the Email Activity API
(`GET /v3/messages`, an add-on) for a message with the same case id and step; without the add-on
the lookup answers 403 and the e-mail is sent again (at least once rather than never).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any
from urllib.error import URLError

from python_http_client.exceptions import HTTPError  # type: ignore[import-untyped]
from sendgrid import SendGridAPIClient
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.mail import (
    ClickTracking,
    CustomArg,
    Email,
    Header,
    Mail,
    OpenTracking,
    SubscriptionTracking,
    TrackingSettings,
)

from providers.base import (
    OutgoingEmail,
    ProviderError,
    ProviderUnavailable,
    RecipientInvalid,
    WebhookRejected,
    classify,
)

NAME = "sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
TIMEOUT_SECONDS = 20
# SendGrid's event names as the campaign's per-step events (models/campaign_requests.py EMAIL_EVENTS).
CAMPAIGN_EVENTS = {
    "processed": "processed",
    "delivered": "delivered",
    "deferred": "deferred",
    "open": "open",
    "click": "click",
    "bounce": "bounce",
    "dropped": "dropped",
    "spamreport": "spam_report",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}
log = logging.getLogger(__name__)


class SendGridEmail:
    name = NAME
    external = True

    def __init__(
        self,
        api_key: str,
        from_email: str,
        webhook_public_key: str,
        *,
        from_name: str = "",
        api_host: str = "",
        tolerance_seconds: int = 300,
    ) -> None:
        self.sender = Email(from_email, from_name or None)
        self.client = SendGridAPIClient(api_key, host=api_host) if api_host else SendGridAPIClient(api_key)
        self.client.client.timeout = TIMEOUT_SECONDS
        self.webhook = EventWebhook(webhook_public_key) if webhook_public_key else None
        self.tolerance_seconds = tolerance_seconds

    def mail(self, email: OutgoingEmail) -> Mail:
        message = Mail(
            from_email=self.sender,
            to_emails=email.to,
            subject=email.subject,
            plain_text_content=email.text,
            html_content=email.html or None,
        )
        message.custom_arg = [CustomArg("case_id", email.case_id), CustomArg("step", email.step)]
        for name, value in email.headers.items():
            message.header = Header(name, value)
        # Pay links must reach the customer unchanged (no redirect through a tracking domain): tracking
        # only where the mail asks for it (marketing mail with consent, no pay link in it).
        message.tracking_settings = TrackingSettings(
            click_tracking=ClickTracking(email.track, email.track),
            open_tracking=OpenTracking(email.track),
            subscription_tracking=SubscriptionTracking(False),
        )
        return message

    def send_email(self, email: OutgoingEmail) -> str:
        try:
            response = self.client.send(self.mail(email))
        except HTTPError as error:
            raise as_provider_error(error) from error
        except (URLError, OSError) as error:
            raise ProviderUnavailable(NAME, None, type(error).__name__) from error
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        if not message_id:
            raise ProviderUnavailable(NAME, response.status_code, "accepted without an X-Message-Id header")
        return str(message_id)

    def find_email(self, email: OutgoingEmail, since: datetime) -> str | None:
        query = f"(unique_args['case_id']=\"{email.case_id}\") AND (unique_args['step']=\"{email.step}\")"
        try:
            response = self.client.client.messages.get(query_params={"query": query, "limit": 10})
        except HTTPError as error:
            if error.status_code in (401, 403, 404):
                log.warning("SendGrid Email Activity lookup unavailable (HTTP %s): sending again", error.status_code)
                return None
            raise as_provider_error(error) from error
        except (URLError, OSError) as error:
            raise ProviderUnavailable(NAME, None, type(error).__name__) from error
        found = json.loads(response.body or b"{}").get("messages") or []
        for message in found:
            if isinstance(message, dict) and message.get("msg_id"):
                return str(message["msg_id"]).split(".", 1)[0]
        return None

    def verify_events(
        self, body: bytes, signature: str | None, timestamp: str | None, now: int
    ) -> list[dict[str, Any]]:
        """The events, if the ECDSA signature over timestamp + body is valid and recent."""
        if self.webhook is None:
            raise WebhookRejected("no SendGrid webhook verification key configured")
        if not signature or not timestamp:
            raise WebhookRejected(f"{SIGNATURE_HEADER} and {TIMESTAMP_HEADER} headers are required")
        if not timestamp.isdigit():
            raise WebhookRejected(f"{TIMESTAMP_HEADER} must be unix seconds, got {timestamp[:20]!r}")
        age = now - int(timestamp)
        if abs(age) > self.tolerance_seconds:
            raise WebhookRejected(
                f"{TIMESTAMP_HEADER} is {abs(age)} s {'old' if age > 0 else 'in the future'}; "
                f"at most {self.tolerance_seconds} s are accepted"
            )
        try:
            payload = body.decode("utf-8")
            valid = self.webhook.verify_signature(payload, signature, timestamp)
        except (ValueError, UnicodeDecodeError):  # undecodable base64 or DER
            valid = False
        if not valid:
            raise WebhookRejected(f"{SIGNATURE_HEADER} does not match the body (wrong key or altered body)")
        events = json.loads(payload)
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise WebhookRejected("body is not a list of SendGrid events")
        return events


def as_provider_error(error: HTTPError) -> ProviderError:
    status = int(error.status_code) if isinstance(error.status_code, int) else None
    try:
        errors = json.loads(error.body or b"{}").get("errors") or []
    except (ValueError, AttributeError):
        errors = []
    detail = "; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict)) or f"HTTP {status}"
    fields = [str(e.get("field") or "") for e in errors if isinstance(e, dict)]
    if status == 400 and any(f.startswith("personalizations") and ".to" in f for f in fields):
        return RecipientInvalid(NAME, status, detail)
    return classify(NAME, status, detail)
