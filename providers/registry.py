"""Provider adapters behind one small interface per job (issue #5).

`build_providers(settings)` picks them by configuration; the embedded outbox and the TestPay pay
page are the default, Stripe, Twilio and SendGrid are switched on one by one (README "Real
providers").
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import Settings
from providers.base import EmailSender, PaymentProvider, SmsSender
from providers.embedded import OutboxEmail, OutboxSms, TestPayPages


@dataclass(frozen=True)
class Providers:
    email: EmailSender
    sms: SmsSender
    payments: PaymentProvider


def build_providers(settings: Settings) -> Providers:
    email: EmailSender = OutboxEmail()
    sms: SmsSender = OutboxSms()
    payments: PaymentProvider = TestPayPages()
    if settings.email_provider == "sendgrid":
        from providers.sendgrid_email import SendGridEmail

        email = SendGridEmail(
            settings.sendgrid_api_key,
            settings.sendgrid_from_email,
            settings.sendgrid_webhook_public_key,
            from_name=settings.sendgrid_from_name or settings.creditor_name,
            api_host=settings.sendgrid_api_host,
            tolerance_seconds=settings.webhook_tolerance_seconds,
        )
    if settings.sms_provider == "twilio":
        from providers.twilio_sms import TwilioSms

        sms = TwilioSms(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            settings.twilio_from,
            api_base=settings.twilio_api_base,
        )
    if settings.payment_provider == "stripe":
        from providers.stripe_payments import StripePayments

        payments = StripePayments(
            settings.stripe_api_key,
            settings.stripe_webhook_secret,
            api_base=settings.stripe_api_base,
            payment_method_types=settings.stripe_payment_method_types,
            tolerance_seconds=settings.webhook_tolerance_seconds,
        )
    return Providers(email=email, sms=sms, payments=payments)
