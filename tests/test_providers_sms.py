"""Every SMS template, rendered exactly as Twilio will receive it (a real pay link of the configured
length, the longest case ids the engine makes), is GSM-7 and one segment: the pay-link SMS must be
one segment, and the receipts and confirmations are held to the same rule."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from activities.messaging import sms_pay_url
from channels.gsm7 import is_gsm7, sms_segments
from channels.render import render_message
from core.tokens import derive_token_id, pay_link_url
from infra.config import Settings
from models.messages import CONFIRMATION_KINDS, Channel, Creditor, MessageContext, MessageKind

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
SMS_KINDS = sorted({MessageKind(path.name.split(".")[0]) for path in TEMPLATES.glob("*/*.sms.txt")})
LANGUAGES = sorted({path.parent.name for path in TEMPLATES.glob("*/*.sms.txt")})
# A production-like public address: the SMS must still fit with it.
PUBLIC_BASE_URL = "https://zahlung.beispiel-versicherung.de"
CASE_ID = "dunning-VS-2026-004711/20261122T060000"


def pay_url(settings: Settings) -> str:
    """The link exactly as the outbox puts it into an SMS (activities/messaging.py)."""
    token_id = derive_token_id(settings.link_secret, CASE_ID, f"{CASE_ID}:receipt:stripe:pi_3QxYzAbCdEfGhIjK")
    return sms_pay_url(PUBLIC_BASE_URL, pay_link_url(PUBLIC_BASE_URL, settings.link_secret, token_id), token_id)


def test_the_signed_long_link_would_not_fit(settings: Settings) -> None:
    """Why SMS carry the short form: with the signed link the pay-link SMS needs two segments."""
    token_id = derive_token_id(settings.link_secret, CASE_ID, f"{CASE_ID}:pay_link_sms")
    context = sms_context(settings, MessageKind.PAY_LINK_SMS, "de", 17_050)
    long_url = pay_link_url(PUBLIC_BASE_URL, settings.link_secret, token_id)
    text = render_message(Channel.SMS, context.model_copy(update={"pay_url": long_url})).text
    assert sms_segments(text) == 2


def test_the_templates_cover_the_sms_kinds_the_engine_sends() -> None:
    assert {MessageKind.PAY_LINK_SMS, MessageKind.PAYMENT_RECEIPT} | CONFIRMATION_KINDS <= set(SMS_KINDS)
    assert MessageKind.TERMINATION_LETTER not in SMS_KINDS  # text form only


def sms_context(settings: Settings, kind: MessageKind, language: str, open_cents: int) -> MessageContext:
    return MessageContext(
        kind=kind,
        language=language,
        letter_date=date(2026, 11, 22),
        case_id=CASE_ID,
        contract_number="VS-2026-004711",
        salutation_name="Erika Mustermann",
        total_cents=open_cents,
        credit_cents=2_500,
        paid_at=datetime(2027, 1, 8, 14, 20, tzinfo=UTC),  # confirmations: when the clearing payment came
        terminated_on=date(2026, 12, 14),  # confirmations after a termination
        pay_url=pay_url(settings) if open_cents else "",
        creditor=Creditor(name=settings.creditor_name, iban=settings.creditor_iban),
    )


CASES = [
    (kind, language, open_cents)
    for kind in SMS_KINDS
    for language in LANGUAGES
    for open_cents in (0, 17_050)
    if not (kind == MessageKind.PAY_LINK_SMS and open_cents == 0)  # never sent with nothing open
]


@pytest.mark.parametrize(("kind", "language", "open_cents"), CASES)
def test_every_sms_template_is_one_gsm7_segment(
    settings: Settings, language: str, kind: MessageKind, open_cents: int
) -> None:
    context = sms_context(settings, kind, language, open_cents)
    text = render_message(Channel.SMS, context).text

    assert is_gsm7(text), text
    segments = sms_segments(text)
    assert segments == 1, f"{language}/{kind}: {segments} segments, {len(text)} characters: {text!r}"
    if kind == MessageKind.PAY_LINK_SMS and open_cents:
        assert context.pay_url in text
    if kind in CONFIRMATION_KINDS:
        assert "http" not in text  # nothing to pay: no link
