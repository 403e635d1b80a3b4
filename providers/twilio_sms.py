"""Twilio: SMS with a status callback, the callback verified with the SDK's RequestValidator.

Twilio has no idempotency key for sending messages. A retried activity therefore first asks
Twilio for messages to the same number created since the first attempt began and takes one
with the same body as already sent (`find_sms`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.rest import Client

from providers.base import (
    OutgoingSms,
    ProviderError,
    ProviderUnavailable,
    RecipientInvalid,
    classify,
)

NAME = "twilio"
# Error codes that mean "this number cannot receive SMS" (permanent): the contact data is wrong.
# https://www.twilio.com/docs/api/errors — 21211 invalid 'To', 21214 not reachable, 21610 opted out
# (STOP), 21614 not a mobile number, 30005 unknown destination, 30006 landline/unreachable carrier.
INVALID_NUMBER_CODES = {21211, 21214, 21610, 21614, 30005, 30006}
FINAL_FAILURES = {"failed", "undelivered"}


class TwilioSms:
    name = NAME
    external = True

    def __init__(self, account_sid: str, auth_token: str, sender: str, *, api_base: str = "") -> None:
        self.auth_token = auth_token
        self.sender = sender
        self.client = Client(account_sid, auth_token)
        if api_base:
            self.client.api.base_url = api_base.rstrip("/")

    def _sender(self) -> dict[str, str]:
        if self.sender.startswith("MG"):
            return {"messaging_service_sid": self.sender}
        return {"from_": self.sender}

    def send_sms(self, sms: OutgoingSms, status_callback: str) -> str:
        try:
            message = self.client.messages.create(
                to=sms.to, body=sms.body, status_callback=status_callback, **self._sender()
            )
        except TwilioRestException as error:
            raise as_provider_error(error) from error
        except TwilioException as error:  # connection problems surface as plain TwilioException
            raise ProviderUnavailable(NAME, None, type(error).__name__) from error
        except OSError as error:
            raise ProviderUnavailable(NAME, None, type(error).__name__) from error
        return str(message.sid)

    def find_sms(self, sms: OutgoingSms, since: datetime) -> str | None:
        try:
            recent = self.client.messages.list(to=sms.to, limit=50)
        except TwilioRestException as error:
            raise as_provider_error(error) from error
        except (TwilioException, OSError) as error:
            raise ProviderUnavailable(NAME, None, type(error).__name__) from error
        floor = since if since.tzinfo else since.replace(tzinfo=UTC)
        for message in recent:
            created = message.date_created
            if message.body == sms.body and (created is None or created >= floor.replace(microsecond=0)):
                return str(message.sid)
        return None

    def verify_callback(self, url: str, params: Mapping[str, str], signature: str | None, settings: str | None) -> bool:
        """True if `X-Twilio-Signature` matches the full callback URL and the posted fields."""
        if not signature:
            return False
        validator = RequestValidator(self.auth_token)
        return bool(validator.validate(url, dict(params), signature, get_signature_algorithm(settings)))


def as_provider_error(error: TwilioRestException) -> ProviderError:
    detail = f"{error.msg or 'error'} (code {error.code})" if error.code else (error.msg or "error")
    if error.code in INVALID_NUMBER_CODES:
        return RecipientInvalid(NAME, error.status, detail)
    return classify(NAME, error.status, detail)
