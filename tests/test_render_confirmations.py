"""What a customer is told once everything is paid depends on what happened to the contract
(DOMAIN §2): never "cover restored" to someone whose cover never lapsed, never "termination void"
after the cure month. Each confirmation is checked on every channel, in the PDF as printed."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from channels.gsm7 import is_gsm7, sms_segments
from channels.render import RenderError, render_message
from models.messages import CONFIRMATION_KINDS, Channel, MessageKind, RenderedMessage
from tests.test_render import PAY_URL, pdf_pages, situation, squash

# Statements each situation must make, and statements that would be false in it.
MUST_SAY: dict[MessageKind, list[str]] = {
    MessageKind.PAID_IN_FULL: [
        "Alle offenen Beträge zu Ihrem Vertrag VS-2026-004711",
        "Ihr Beitragskonto ist ausgeglichen",
        "Ihr Vertrag und Ihr Versicherungsschutz bestehen unverändert fort",
    ],
    MessageKind.REACTIVATION: [
        "Ihr Beitragskonto ist ausgeglichen",
        "Ihr Versicherungsschutz besteht wieder",
        "ab dem Eingang Ihrer Zahlung am 11.12.2026 um 10:42 Uhr",
        "zwischen dem Ablauf der Zahlungsfrist am 08.12.2026 und Ihrer Zahlung",
        "nach § 38 Abs. 2 VVG kein Versicherungsschutz",
    ],
    MessageKind.TERMINATION_VOID: [
        "Ihr Beitragskonto ist ausgeglichen",
        "Unsere Kündigung mit Wirkung zum 14.12.2026 ist damit unwirksam, Ihr Vertrag besteht fort",
        "innerhalb eines Monats nach der Kündigung",
        "§ 38 Abs. 3 VVG",
        "ab dem Eingang Ihrer Zahlung am 08.01.2027 um 15:20 Uhr",
        "nach § 38 Abs. 2 VVG kein Versicherungsschutz",
    ],
    MessageKind.PAID_AFTER_TERMINATION: [
        "vielen Dank für Ihre Zahlung, die am 20.01.2027 um 09:00 Uhr bei uns eingegangen ist",
        "Ihr Beitragskonto ist ausgeglichen",
        "Die Kündigung Ihres Vertrags mit Wirkung zum 14.12.2026 bleibt bestehen",
        "nach Ablauf der Monatsfrist des § 38 Abs. 3 VVG eingegangen, die am 14.01.2027 endete",
        "Ihr Vertrag ist deshalb zum 14.12.2026 beendet",
        "durch die Zahlung lebt der Versicherungsschutz nicht wieder auf",
        "ein neuer Vertrag nötig",
        "Wenden Sie sich dazu bitte an uns.",
    ],
}
MUST_NOT_SAY: dict[MessageKind, list[str]] = {
    MessageKind.PAID_IN_FULL: [
        "besteht wieder",
        "kein Versicherungsschutz",
        "wieder wie vereinbart versichert",
        "Zahlungsfrist",
        "§ 38",
        "Kündigung",
    ],
    MessageKind.REACTIVATION: ["Kündigung", "unverändert"],
    MessageKind.TERMINATION_VOID: ["bleibt bestehen", "beendet", "unverändert"],
    MessageKind.PAID_AFTER_TERMINATION: [
        "unwirksam",
        "besteht wieder",
        "besteht fort",
        "wieder wie vereinbart versichert",
        "unverändert",
    ],
}
# Nothing is owed: no amounts to pay, no pay link, no bank details, no GiroCode.
NEVER_IN_A_CONFIRMATION = [PAY_URL, "Zahlungslink", "Überweisung", "GiroCode", "1.357,56"]


def strip_tags(html: str) -> str:
    return squash(re.sub(r"<[^>]+>", " ", html))


def readable_parts(channel: Channel, message: RenderedMessage) -> list[str]:
    """Everything the customer can read: text and HTML of an e-mail, text copy and PDF of a letter."""
    if channel is Channel.EMAIL:
        return [squash(message.subject), squash(message.text), strip_tags(message.html)]
    return [squash(message.subject), squash(message.text), " ".join(pdf_pages(message))]


def test_there_is_one_confirmation_per_situation() -> None:
    assert set(MUST_SAY) == set(MUST_NOT_SAY) == set(CONFIRMATION_KINDS)


@pytest.mark.parametrize("channel", [Channel.EMAIL, Channel.LETTER])
@pytest.mark.parametrize("kind", sorted(CONFIRMATION_KINDS))
def test_each_confirmation_states_what_happened_and_nothing_that_did_not(kind: MessageKind, channel: Channel) -> None:
    # The outbox passes the pay link only for dunning kinds; even if one slipped in, none is printed.
    message = render_message(channel, situation(kind, pay_url=PAY_URL))

    parts = readable_parts(channel, message)
    body = " ".join(parts[1:])
    for phrase in MUST_SAY[kind]:
        for part in parts[1:]:
            assert phrase in part, (kind, channel, phrase, part)
    for phrase in MUST_NOT_SAY[kind] + NEVER_IN_A_CONFIRMATION:
        assert phrase not in body, (kind, channel, phrase)
    assert "data:image" not in message.html  # no GiroCode (for a letter: NEVER_IN_A_CONFIRMATION, in its PDF)


@pytest.mark.parametrize("kind", sorted(CONFIRMATION_KINDS))
def test_a_credit_is_mentioned_only_when_there_is_one(kind: MessageKind) -> None:
    with_credit = render_message(Channel.LETTER, situation(kind, credit_cents=2345))
    without = render_message(Channel.EMAIL, situation(kind, credit_cents=0))
    assert "Das Guthaben von 23,45 € bleibt Ihrem Vertrag gutgeschrieben" in " ".join(pdf_pages(with_credit))
    assert "Guthaben" not in without.text


def test_the_subjects_say_the_outcome() -> None:
    subjects = {kind: render_message(Channel.EMAIL, situation(kind)).subject for kind in CONFIRMATION_KINDS}
    assert subjects[MessageKind.PAID_IN_FULL] == "Vielen Dank für Ihre Zahlung – Vertrag VS-2026-004711"
    assert subjects[MessageKind.REACTIVATION] == "Ihr Versicherungsschutz besteht wieder – Vertrag VS-2026-004711"
    assert subjects[MessageKind.TERMINATION_VOID] == "Kündigung unwirksam – Ihr Vertrag VS-2026-004711 besteht fort"
    assert subjects[MessageKind.PAID_AFTER_TERMINATION] == "Ihre Zahlung zum gekündigten Vertrag VS-2026-004711"


def test_paid_in_full_under_a_first_premium_plan_promises_no_unchanged_cover() -> None:
    """§37 VVG: cover may only have begun with the payment, so the message stays with the contract."""
    for channel in (Channel.EMAIL, Channel.LETTER, Channel.SMS):
        text = squash(render_message(channel, situation(MessageKind.PAID_IN_FULL, legal_basis="vvg37")).text)
        assert "Versicherungsschutz" not in text
        assert ("Ihr Vertrag läuft wie vereinbart weiter" in text) or channel is Channel.SMS


def test_the_moment_of_payment_is_printed_in_the_plans_time_zone() -> None:
    summer = datetime(2027, 7, 1, 22, 30, tzinfo=UTC)  # 00:30 the next day in Berlin (CEST)
    berlin = render_message(Channel.EMAIL, situation(MessageKind.REACTIVATION, paid_at=summer)).text
    assert "am 02.07.2027 um 00:30 Uhr" in squash(berlin)
    london = situation(MessageKind.REACTIVATION, paid_at=summer, timezone="Europe/London")
    assert "am 01.07.2027 um 23:30 Uhr" in squash(render_message(Channel.EMAIL, london).text)


def test_the_agent_to_ask_for_new_cover_is_named_with_the_contact_details() -> None:
    context = situation(
        MessageKind.PAID_AFTER_TERMINATION,
        agent_name="Max Vermittler",
        contact_lines=["Telefon 0221 123456", "max.vermittler@beispiel-versicherung.de"],
    )
    for channel in (Channel.EMAIL, Channel.LETTER):
        for part in readable_parts(channel, render_message(channel, context))[1:]:
            assert "Wenden Sie sich dazu bitte an Max Vermittler: Telefon 0221 123456" in part
            assert "max.vermittler@beispiel-versicherung.de" in part


# --- refused -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [MessageKind.REACTIVATION, MessageKind.TERMINATION_VOID])
def test_a_confirmation_of_restored_cover_without_the_moment_of_payment_is_refused(kind: MessageKind) -> None:
    with pytest.raises(RenderError, match="paid_at"):
        render_message(Channel.EMAIL, situation(kind, paid_at=None))


def test_a_moment_of_payment_without_time_zone_is_refused() -> None:
    naive = datetime(2026, 12, 11, 9, 42)
    with pytest.raises(RenderError, match="time zone"):
        render_message(Channel.EMAIL, situation(MessageKind.REACTIVATION, paid_at=naive))
    with pytest.raises(RenderError, match="timezone"):
        render_message(Channel.EMAIL, situation(MessageKind.REACTIVATION, timezone="Mars/Olympus"))


@pytest.mark.parametrize("kind", [MessageKind.TERMINATION_VOID, MessageKind.PAID_AFTER_TERMINATION])
def test_a_confirmation_about_a_termination_without_its_date_is_refused(kind: MessageKind) -> None:
    with pytest.raises(RenderError, match="terminated_on"):
        render_message(Channel.LETTER, situation(kind, terminated_on=None))


def test_a_termination_is_never_called_void_for_a_payment_after_the_cure_month() -> None:
    late = datetime(2027, 1, 14, 23, 30, tzinfo=UTC)  # 15.01.2027 00:30 in Berlin: one day too late
    with pytest.raises(RenderError, match="paid_after_termination"):
        render_message(Channel.EMAIL, situation(MessageKind.TERMINATION_VOID, paid_at=late))
    in_time = datetime(2027, 1, 14, 22, 30, tzinfo=UTC)  # 23:30 on the last day
    with pytest.raises(RenderError, match="termination_void"):
        render_message(Channel.EMAIL, situation(MessageKind.PAID_AFTER_TERMINATION, paid_at=in_time))
    assert render_message(Channel.EMAIL, situation(MessageKind.TERMINATION_VOID, paid_at=in_time)).text


# --- SMS -----------------------------------------------------------------------------------

SMS_SAYS: dict[MessageKind, str] = {
    MessageKind.PAID_IN_FULL: "Danke, alles bezahlt! Ihr Versicherungsschutz besteht unverändert.",
    MessageKind.REACTIVATION: "Danke, alles bezahlt! Ihr Versicherungsschutz besteht ab Ihrer Zahlung wieder.",
    MessageKind.TERMINATION_VOID: "Danke, alles bezahlt! Die Kündigung ist unwirksam, Ihr Vertrag läuft weiter.",
    MessageKind.PAID_AFTER_TERMINATION: "Danke, alles bezahlt! Die Kündigung Ihres Vertrags bleibt bestehen.",
}


@pytest.mark.parametrize("credit_cents", [0, 2500])
@pytest.mark.parametrize("kind", sorted(CONFIRMATION_KINDS))
def test_each_confirmation_sms_is_one_gsm7_segment_without_amounts_or_link(
    kind: MessageKind, credit_cents: int
) -> None:
    long_host_url = "https://zahlung.beispiel-versicherung.de/z/" + "A" * 22  # a 40-character host
    text = render_message(Channel.SMS, situation(kind, credit_cents=credit_cents, pay_url=long_host_url)).text

    assert text.startswith("Beispiel Versicherung AG: ")
    assert SMS_SAYS[kind] in text
    for other, says in SMS_SAYS.items():
        if other is not kind:
            assert says not in text
    assert is_gsm7(text) and sms_segments(text) == 1, (len(text), text)
    assert "http" not in text and "€" not in text and not re.search(r"\d+,\d\d", text)
    assert ("Guthaben" in text) == (credit_cents > 0)
