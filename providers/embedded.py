"""The embedded default: the outbox is the delivery, the engine's own pay page takes payments.

Nothing leaves the machine: e-mails and SMS stay in the `messages` table (shown at /outbox),
and pay links open `/pay/{token}` with the built-in TestPay provider (web/public/pay.py, web/public/testpay.py).
"""

from __future__ import annotations

from datetime import datetime

from providers.base import CheckoutRequest, HostedCheckout, OutgoingEmail, OutgoingSms


class OutboxEmail:
    name = "outbox"
    external = False

    def send_email(self, email: OutgoingEmail) -> str:
        return ""  # stored in the outbox already: nothing else to do

    def find_email(self, email: OutgoingEmail, since: datetime) -> str | None:
        return None


class OutboxSms:
    name = "outbox"
    external = False

    def send_sms(self, sms: OutgoingSms, status_callback: str) -> str:
        return ""

    def find_sms(self, sms: OutgoingSms, since: datetime) -> str | None:
        return None


class TestPayPages:
    """The engine's own pay page (customer picks the amount) and the TestPay provider."""

    name = "testpay"
    hosted = False
    __test__ = False  # not a pytest test class despite the name

    def create_checkout(self, request: CheckoutRequest) -> HostedCheckout:
        raise NotImplementedError("TestPay checkouts are opened by the pay page itself (web/public/pay.py)")
