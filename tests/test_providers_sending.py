"""Outbox.send_message through the real Twilio and SendGrid SDKs against the local fakes:
success, provider 4xx/5xx, a retry after the provider already accepted, refused recipients."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.exceptions import ApplicationError

from activities.messaging import Outbox
from channels.gsm7 import sms_segments
from core.tokens import derive_token_id
from dev.fakes.server import FakeProviders
from infra.config import Settings
from ledger.db import session_scope
from models.ledger import Customer, Message
from models.messages import Channel, MessageKind
from models.providers import DeliveryStatus, ProviderDelivery
from tests.conftest import seed_contract
from tests.providers_fakes import (
    CASE_ID,
    CONTRACT,
    PERSONAL_DATA,
    PREMIUMS,
    engine,
    fake,
    migrated_ledger,
    provider_settings,
    send_request,
)

__all__ = ["engine", "fake", "migrated_ledger"]  # fixtures, imported for pytest


@pytest.fixture
def outbox(engine: Engine, settings: Settings, fake: FakeProviders) -> Outbox:
    seed_contract(engine, CONTRACT, premiums=PREMIUMS)
    return Outbox(engine, provider_settings(settings, fake))


def rows(engine: Engine) -> tuple[list[Message], list[ProviderDelivery]]:
    with session_scope(engine) as session:
        return list(session.exec(select(Message))), list(session.exec(select(ProviderDelivery)))


def customer(engine: Engine) -> Customer:
    with session_scope(engine) as session:
        return session.exec(select(Customer)).one()


def test_sms_goes_through_twilio_with_a_status_callback(outbox: Outbox, fake: FakeProviders, engine: Engine) -> None:
    sent = outbox.send_message(send_request(MessageKind.PAY_LINK_SMS, [Channel.SMS], "pay_link_sms"))

    assert sent.channel == Channel.SMS and sent.total_cents == 17_050
    assert len(fake.sms) == 1
    sms = fake.sms[0]
    assert sms["to"] == "+4915112345678" and sms["from"] == "+15005550006"
    assert sms["status_callback"] == "http://testserver/webhooks/twilio/status"
    token_id = derive_token_id(outbox.settings.link_secret, CASE_ID, f"{CASE_ID}:pay_link_sms")
    assert sms["body"].endswith(f"http://testserver/p/{token_id}")  # the short form (one segment)
    assert sms_segments(sms["body"]) == 1
    messages, deliveries = rows(engine)
    assert [(m.channel, m.status) for m in messages] == [("sms", "sent")]
    assert messages[0].body_text == sms["body"]
    (delivery,) = deliveries
    assert (delivery.provider, delivery.status, delivery.provider_message_id) == ("twilio", "accepted", sms["sid"])
    assert delivery.message_key == f"{CASE_ID}:pay_link_sms:sms" and delivery.is_primary


def test_email_goes_through_sendgrid_with_case_and_step_only_and_click_tracking_off(
    outbox: Outbox, fake: FakeProviders, engine: Engine
) -> None:
    outbox.send_message(send_request(MessageKind.REMINDER, [Channel.EMAIL, Channel.LETTER], "reminder"))

    (mail,) = fake.emails
    assert mail["custom_args"] == {"case_id": CASE_ID, "step": "reminder:email"}
    assert mail["tracking_settings"]["click_tracking"] == {"enable": False, "enable_text": False}
    assert mail["personalizations"][0]["to"] == [{"email": "erika@example.org"}]
    assert not any(value in str(mail["custom_args"]) for value in PERSONAL_DATA)
    messages, deliveries = rows(engine)
    assert [(m.channel, m.status) for m in messages] == [("email", "sent")]
    assert deliveries[0].provider_message_id == mail["msg_id"]
    assert "170,50" in mail["content"][0]["value"]  # the ledger's balance, as rendered


def test_a_retry_after_twilio_accepted_but_the_answer_was_lost_sends_nothing_twice(
    outbox: Outbox, fake: FakeProviders, engine: Engine
) -> None:
    fake.fail_next("twilio", 500, after_work=True)
    request = send_request(MessageKind.PAY_LINK_SMS, [Channel.SMS], "pay_link_sms")

    with pytest.raises(ApplicationError) as first:
        outbox.send_message(request)
    assert first.value.type == "ProviderUnavailable" and not first.value.non_retryable
    assert len(fake.sms) == 1  # Twilio has it
    assert rows(engine)[1][0].status == DeliveryStatus.SENDING

    outbox.send_message(request)  # Temporal's retry

    assert len(fake.sms) == 1
    (delivery,) = rows(engine)[1]
    assert delivery.status == DeliveryStatus.ACCEPTED and delivery.provider_message_id == fake.sms[0]["sid"]


def test_a_retry_after_sendgrid_accepted_but_the_answer_was_lost_sends_nothing_twice(
    outbox: Outbox, fake: FakeProviders, engine: Engine
) -> None:
    fake.fail_next("sendgrid", 502, after_work=True)
    request = send_request(MessageKind.REMINDER, [Channel.EMAIL], "reminder")

    with pytest.raises(ApplicationError):
        outbox.send_message(request)
    outbox.send_message(request)

    assert len(fake.emails) == 1
    (delivery,) = rows(engine)[1]
    assert delivery.provider_message_id == fake.emails[0]["msg_id"]


def test_provider_5xx_is_retried_and_the_retry_sends_once(outbox: Outbox, fake: FakeProviders, engine: Engine) -> None:
    fake.fail_next("twilio", 503)
    request = send_request(MessageKind.PAY_LINK_SMS, [Channel.SMS], "pay_link_sms")

    with pytest.raises(ApplicationError) as first:
        outbox.send_message(request)
    assert not first.value.non_retryable and "503" in str(first.value)
    assert fake.sms == [] and rows(engine)[0][0].status == "queued"

    outbox.send_message(request)
    outbox.send_message(request)  # a late duplicate attempt changes nothing either

    assert len(fake.sms) == 1
    assert rows(engine)[0][0].status == "sent"


def test_provider_4xx_is_a_clear_non_retryable_error(outbox: Outbox, fake: FakeProviders, engine: Engine) -> None:
    fake.fail_next("sendgrid", 401, message="The provided authorization grant is invalid")

    with pytest.raises(ApplicationError) as error:
        outbox.send_message(send_request(MessageKind.REMINDER, [Channel.EMAIL], "reminder"))

    assert error.value.non_retryable and error.value.type == "ProviderRejected"
    assert "sendgrid refused the request (HTTP 401): The provided authorization grant is invalid" in str(error.value)
    assert fake.emails == []
    assert customer(engine).email_valid  # a bad API key says nothing about the customer's address


def test_twilio_refusing_the_number_marks_it_invalid_and_the_step_goes_out_as_a_letter(
    outbox: Outbox, fake: FakeProviders, engine: Engine
) -> None:
    fake.fail_next("twilio", 400, code=21211, message="The 'To' number is not a valid phone number.")

    sent = outbox.send_message(send_request(MessageKind.PAY_LINK_SMS, [Channel.SMS], "pay_link_sms"))

    assert sent.channel == Channel.LETTER
    assert not customer(engine).phone_valid
    messages, deliveries = rows(engine)
    assert sorted((m.channel, m.status) for m in messages) == [("letter", "sent"), ("sms", "failed")]
    assert deliveries[0].status == DeliveryStatus.FAILED and deliveries[0].error == "rejected/400"


def test_sendgrid_refusing_the_address_marks_it_invalid_and_falls_back(
    outbox: Outbox, fake: FakeProviders, engine: Engine
) -> None:
    fake.fail_next(
        "sendgrid", 400, message="Does not contain a valid address.", field_name="personalizations.0.to.0.email"
    )

    sent = outbox.send_message(send_request(MessageKind.REMINDER, [Channel.EMAIL, Channel.LETTER], "reminder"))

    assert sent.channel == Channel.LETTER
    assert not customer(engine).email_valid


def test_the_embedded_default_keeps_everything_in_the_outbox(engine: Engine, settings: Settings) -> None:
    seed_contract(engine, CONTRACT, premiums=PREMIUMS)
    outbox = Outbox(engine, settings)

    outbox.send_message(send_request(MessageKind.PAY_LINK_SMS, [Channel.SMS], "pay_link_sms"))

    messages, deliveries = rows(engine)
    assert [(m.channel, m.status) for m in messages] == [("sms", "sent")]
    assert deliveries == []


def test_a_provider_switched_on_without_credentials_is_a_clear_configuration_error() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN"):
        Settings(sms_provider="twilio", twilio_from="+15005550006")
