"""Behaviour of message rendering: templates, money formatting, §38 layout, SMS cost, escaping."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import segno.helpers
from pypdf import PdfReader

from channels.gsm7 import gsm7_septets, is_gsm7, sms_segments, to_gsm7
from channels.render import (
    TEMPLATES_DIR,
    RenderError,
    epc_fields,
    format_datum,
    format_eur,
    girocode_svg,
    render_message,
    supported_channels,
)
from models.messages import (
    MESSAGE_KINDS,
    Channel,
    Creditor,
    LineItem,
    MessageContext,
    MessageKind,
    RenderedMessage,
)

PAY_URL_PREFIX = "https://pay.beispiel-versicherung.de/p/"
PAY_URL = PAY_URL_PREFIX + "x7Kp2QvL9mZt4RwB8nYc3HdF6sJ0aGeU1iO5"[: 70 - len(PAY_URL_PREFIX)]

# The channels each kind may use, from the catalogue's message rows (models/messages.py): every kind
# has templates for exactly those (also checked in all languages by tests/test_step_catalogue.py).
EXPECTED_CHANNELS: dict[MessageKind, set[Channel]] = {kind: set(spec.channels) for kind, spec in MESSAGE_KINDS.items()}

# One case's timeline: notice deadline 08.12.2026; terminated with effect from 14.12.2026, void if
# everything is paid by 14.01.2027. Payments are stored in UTC and printed in Berlin time.
TERMINATED_ON = date(2026, 12, 14)
CURE_UNTIL = date(2027, 1, 14)
CLEARED: dict[str, Any] = {"items": [], "total_cents": 0, "paid_cents": 135756}  # as the outbox fills confirmations

# What each kind needs beyond the §38 sample case, for the situation it is sent in.
SITUATIONS: dict[MessageKind, dict[str, Any]] = {
    MessageKind.PAID_IN_FULL: CLEARED  # paid before the deadline
    | {"letter_date": date(2026, 12, 1), "paid_at": datetime(2026, 12, 1, 9, 15, tzinfo=UTC)},
    MessageKind.REACTIVATION: CLEARED | {"letter_date": date(2026, 12, 11)},  # paid while suspended
    MessageKind.TERMINATION_LETTER: {
        "letter_date": date(2026, 12, 9),
        "terminated_on": TERMINATED_ON,
        "cure_until": CURE_UNTIL,
    },
    MessageKind.TERMINATION_VOID: CLEARED
    | {
        "letter_date": date(2027, 1, 8),
        "paid_at": datetime(2027, 1, 8, 14, 20, tzinfo=UTC),  # 15:20 in Berlin
        "terminated_on": TERMINATED_ON,
        "cure_until": CURE_UNTIL,
    },
    MessageKind.PAID_AFTER_TERMINATION: CLEARED
    | {
        "letter_date": date(2027, 1, 20),
        "paid_at": datetime(2027, 1, 20, 8, 0, tzinfo=UTC),  # 09:00 in Berlin
        "terminated_on": TERMINATED_ON,
        "cure_until": CURE_UNTIL,
        "agent_name": "",  # no agent: the customer is sent to the insurer
    },
}

ALL_TEMPLATE_PAIRS = [(kind, channel) for kind, channels in EXPECTED_CHANNELS.items() for channel in sorted(channels)]


def make_context(**overrides: Any) -> MessageContext:
    """A realistic §38 case: two monthly premiums and a letter fee, amounts with thousands."""
    items = [
        LineItem(
            label="Beitrag 01.10.2026 – 31.10.2026",
            due_date=date(2026, 10, 1),
            amount_cents=12150,
        ),
        LineItem(
            label="Beitrag 01.11.2026 – 30.11.2026",
            due_date=date(2026, 11, 2),
            amount_cents=123456,
        ),
        LineItem(label="Mahnkosten", amount_cents=150, kind="fee"),
    ]
    values: dict[str, Any] = {
        "kind": MessageKind.QUALIFIED_NOTICE,
        "letter_date": date(2026, 11, 20),
        "case_id": "case-2026-000123",
        "contract_number": "VS-2026-004711",
        "product": "Hausratversicherung",
        "salutation_name": "Erika Mustermann",
        "address_lines": ["Heidestraße 17", "51147 Köln"],
        "items": items,
        "total_cents": sum(item.amount_cents for item in items),
        "paid_cents": 5000,
        "paid_at": datetime(2026, 12, 11, 9, 42, tzinfo=UTC),  # the payment that cleared it: 10:42 in Berlin
        "deadline": date(2026, 12, 8),
        "pay_url": PAY_URL,
        "payment_reference": "RF18539007547034",
        "creditor": Creditor(
            name="Beispiel Versicherung AG",
            iban="DE02120300000000202051",
            bic="BYLADEM1001",
            address_lines=["Musterstraße 1", "10115 Berlin"],
        ),
        "agent_name": "Max Vermittler",
        "task_url": "https://intranet.beispiel-versicherung.de/tasks/42",
    }
    values.update(overrides)
    return MessageContext(**values)


def situation(kind: MessageKind, **overrides: Any) -> MessageContext:
    """The sample case as it stands when a message of this kind goes out."""
    return make_context(**(SITUATIONS.get(kind, {}) | {"kind": kind} | overrides))


@pytest.fixture
def sample_context() -> MessageContext:
    return make_context()


def squash(text: str) -> str:
    """Whitespace-insensitive form: PDF extraction and babel's no-break space both vary."""
    return " ".join(text.split())


def pdf_pages(message: RenderedMessage) -> list[str]:
    assert message.pdf is not None
    reader = PdfReader(io.BytesIO(message.pdf))
    return [squash(page.extract_text()) for page in reader.pages]


# --- every template -------------------------------------------------------------------------


def test_each_kind_offers_exactly_the_planned_channels() -> None:
    assert set(EXPECTED_CHANNELS) == set(MessageKind), "every kind needs its row here"
    for kind, channels in EXPECTED_CHANNELS.items():
        assert supported_channels(kind) == channels, kind


@pytest.mark.parametrize(("kind", "channel"), ALL_TEMPLATE_PAIRS)
def test_every_template_renders_for_a_sample_context(kind: MessageKind, channel: Channel) -> None:
    message = render_message(channel, situation(kind))

    assert message.text.strip()
    assert "None" not in message.text
    if channel is Channel.SMS:
        assert message.subject == "" and message.html == "" and message.pdf is None
        return
    assert message.subject and "\n" not in message.subject
    if channel is Channel.LETTER:
        # A letter is its PDF (Typst, PDF/A-2b: tests/test_letter_pdf.py) and its text copy; no HTML.
        assert message.pdf is not None and message.pdf.startswith(b"%PDF") and message.html == ""
    else:
        assert message.html.lstrip().startswith("<!DOCTYPE html>")
        assert message.pdf is None


@pytest.mark.parametrize(("kind", "channel"), ALL_TEMPLATE_PAIRS)
def test_no_message_loads_anything_from_outside(kind: MessageKind, channel: Channel) -> None:
    message = render_message(channel, situation(kind))
    assert "<link" not in message.html
    assert not re.search(r"""src=["'](?!data:)""", message.html)
    assert "url(" not in message.html


def test_a_kind_without_template_for_the_channel_is_refused(
    sample_context: MessageContext,
) -> None:
    with pytest.raises(RenderError):
        render_message(Channel.SMS, sample_context)  # a §38 notice is never an SMS
    handover = sample_context.model_copy(update={"kind": MessageKind.AGENT_HANDOVER})
    with pytest.raises(RenderError):
        render_message(Channel.LETTER, handover)


def test_a_language_without_folder_falls_back_to_german(
    sample_context: MessageContext,
) -> None:
    german = render_message(Channel.EMAIL, sample_context)
    for language in ("fr", "de-AT", "../../etc", ""):
        other = render_message(Channel.EMAIL, sample_context.model_copy(update={"language": language}))
        assert other.text == german.text


# --- money, dates, consistency ---------------------------------------------------------------


def test_eur_formats_integer_cents_german_style() -> None:
    assert squash(format_eur(123456)) == "1.234,56 €"
    assert squash(format_eur(5)) == "0,05 €"
    assert squash(format_eur(0)) == "0,00 €"
    assert squash(format_eur(-150)) == "-1,50 €"


def test_eur_refuses_floats_so_no_amount_is_ever_rounded_twice() -> None:
    with pytest.raises(TypeError):
        format_eur(12.5)  # type: ignore[arg-type]


def test_datum_formats_day_month_year_and_refuses_none() -> None:
    assert format_datum(date(2026, 11, 22)) == "22.11.2026"
    assert format_datum(date(2026, 1, 5)) == "05.01.2026"
    with pytest.raises(TypeError):
        format_datum(None)  # type: ignore[arg-type]


def test_messages_whose_only_point_is_a_link_are_refused_without_it() -> None:
    with pytest.raises(RenderError, match="pay_url"):
        render_message(Channel.SMS, make_context(kind=MessageKind.PAY_LINK_SMS, pay_url=""))
    with pytest.raises(RenderError, match="task_url"):
        render_message(Channel.EMAIL, make_context(kind=MessageKind.AGENT_HANDOVER, task_url=""))


def test_a_total_that_differs_from_its_items_is_refused() -> None:
    context = make_context(total_cents=135757)
    with pytest.raises(RenderError, match="sum of items"):
        render_message(Channel.EMAIL, context)


def test_a_qualified_notice_without_deadline_or_items_is_refused() -> None:
    with pytest.raises(RenderError, match="deadline"):
        render_message(Channel.EMAIL, make_context(deadline=None))
    with pytest.raises(RenderError, match="itemised"):
        render_message(Channel.EMAIL, make_context(items=[], total_cents=100))


# --- qualified notice (§38 VVG) --------------------------------------------------------------


CONSEQUENCE_PHRASES = [
    "Rechtsfolgen, wenn Sie nicht bis zum 08.12.2026 zahlen (§ 38 VVG)",
    "sind wir von der Leistung frei",
    "keinen Versicherungsschutz",
    "ohne Einhaltung einer Kündigungsfrist kündigen",
    "die nach Ihrer Zahlung eintreten, wieder Versicherungsschutz",
]


def test_qualified_notice_pdf_states_items_total_deadline_and_consequences_on_page_one(
    sample_context: MessageContext,
) -> None:
    pages = pdf_pages(render_message(Channel.LETTER, sample_context))
    first = pages[0]

    for item in sample_context.items:
        assert item.label in first
        assert squash(format_eur(item.amount_cents)) in first
    assert "01.10.2026" in first and "02.11.2026" in first
    assert "Offener Gesamtbetrag 1.357,56 €" in first
    assert "bis zum 08.12.2026" in first
    for phrase in CONSEQUENCE_PHRASES:
        assert phrase in first, phrase


def test_qualified_notice_consequences_come_right_after_the_table(
    sample_context: MessageContext,
) -> None:
    first = pdf_pages(render_message(Channel.LETTER, sample_context))[0]
    table_end = first.index("Offener Gesamtbetrag 1.357,56 €")
    box_start = first.index("Wichtig: Rechtsfolgen")
    assert 0 < box_start - table_end < 40


def test_a_long_arrears_list_moves_the_consequences_above_it_to_keep_them_on_page_one() -> None:
    items = [
        LineItem(
            label=f"Beitrag {month:02d}/2025",
            due_date=date(2025, month, 1),
            amount_cents=2000 + month,
        )
        for month in range(1, 13)
    ] + [
        LineItem(
            label=f"Beitrag {month:02d}/2026",
            due_date=date(2026, month, 1),
            amount_cents=3000 + month,
        )
        for month in range(1, 13)
    ]
    context = make_context(items=items, total_cents=sum(i.amount_cents for i in items))
    message = render_message(Channel.LETTER, context)
    pages = pdf_pages(message)

    assert pages[0].index("Wichtig: Rechtsfolgen") < pages[0].index("Position Fällig am Betrag")
    assert squash(message.text).index("WICHTIG: RECHTSFOLGEN") < squash(message.text).index("Beitrag 01/2025")
    assert len(pages) >= 2
    for phrase in CONSEQUENCE_PHRASES:
        assert phrase in pages[0], phrase
    everything = " ".join(pages)
    for item in items:
        assert f"{item.label} {format_datum(item.due_date or date.min)}" in everything
    assert squash(format_eur(context.total_cents)) in everything


def test_qualified_notice_email_carries_the_same_items_total_and_consequences(
    sample_context: MessageContext,
) -> None:
    message = render_message(Channel.EMAIL, sample_context)
    for part in (squash(message.text), squash(re.sub(r"<[^>]+>", " ", message.html))):
        assert "1.357,56 €" in part
        assert "1.234,56 €" in part and "121,50 €" in part and "1,50 €" in part
        assert "bis zum 08.12.2026" in part
        assert "ohne Einhaltung einer Kündigungsfrist kündigen" in part
    assert 'id="legal-consequences"' in message.html
    assert "§ 38 VVG" in message.subject


# --- GiroCode --------------------------------------------------------------------------------


def test_girocode_uses_the_rf_reference_and_then_no_free_text(
    sample_context: MessageContext,
) -> None:
    fields = epc_fields(sample_context)
    assert fields is not None
    assert fields["reference"] == "RF18539007547034"
    assert fields["text"] is None
    assert fields["amount"] == Decimal("1357.56")
    assert fields["iban"] == "DE02120300000000202051"


def test_girocode_without_rf_reference_carries_the_contract_number_as_text() -> None:
    fields = epc_fields(make_context(payment_reference=""))
    assert fields is not None
    assert fields["reference"] is None
    assert fields["text"] == "Vertrag VS-2026-004711"


def test_letters_show_a_girocode_only_when_something_is_owed(
    sample_context: MessageContext,
) -> None:
    fields = epc_fields(sample_context)
    assert fields is not None
    svg = girocode_svg(sample_context)
    assert svg == segno.helpers.make_epc_qr(**fields).svg_inline(scale=4, border=0) and svg.startswith("<svg")
    notice = " ".join(pdf_pages(render_message(Channel.LETTER, sample_context)))
    assert "scannen Sie den GiroCode mit Ihrer Banking-App" in notice and notice.count("GiroCode") == 2  # + caption

    cleared = sample_context.model_copy(update={"kind": MessageKind.REACTIVATION, "items": [], "total_cents": 0})
    assert epc_fields(cleared) is None and girocode_svg(cleared) == ""
    assert "GiroCode" not in " ".join(pdf_pages(render_message(Channel.LETTER, cleared)))


# --- SMS -------------------------------------------------------------------------------------


def sms_template_paths() -> list[Path]:
    return sorted(TEMPLATES_DIR.glob("*/*.sms.txt"))


def test_sms_template_sources_use_only_the_gsm7_alphabet() -> None:
    paths = sms_template_paths()
    assert paths
    for path in paths:
        source = path.read_text(encoding="utf-8").strip()
        bad = sorted({ch for ch in source if not is_gsm7(ch)})
        assert not bad, f"{path.name}: {bad}"


@pytest.mark.parametrize(
    "kind",
    [kind for kind, channels in EXPECTED_CHANNELS.items() if Channel.SMS in channels],
)
@pytest.mark.parametrize("credit_cents", [0, 2500])
@pytest.mark.parametrize("total_cents_zero", [False, True])
def test_every_sms_is_gsm7_single_segment_and_states_no_amounts(
    kind: MessageKind, credit_cents: int, total_cents_zero: bool
) -> None:
    update: dict[str, Any] = {"credit_cents": credit_cents}
    if total_cents_zero:
        update.update(items=[], total_cents=0)
    else:
        update.update(items=make_context().items, total_cents=make_context().total_cents)
    context = situation(kind, **update)
    text = render_message(Channel.SMS, context).text

    assert is_gsm7(text)
    assert sms_segments(text) == 1, (len(text), text)
    assert "€" not in text and "EUR" not in text
    assert not re.search(r"\d+,\d\d", text)


def test_pay_link_sms_fits_one_segment_with_a_70_character_url() -> None:
    assert len(PAY_URL) == 70
    text = render_message(Channel.SMS, make_context(kind=MessageKind.PAY_LINK_SMS)).text
    assert PAY_URL in text
    assert len(text) <= 160
    assert sms_segments(text) == 1


def test_sms_output_is_forced_into_gsm7_even_if_data_is_not() -> None:
    creditor = make_context().creditor.model_copy(update={"name": "Beispiel’s Versicherung – AG"})
    text = render_message(Channel.SMS, make_context(kind=MessageKind.PAY_LINK_SMS, creditor=creditor)).text
    assert is_gsm7(text)
    assert text.startswith("Beispiel's Versicherung - AG:")


# --- GSM-7 arithmetic ------------------------------------------------------------------------


def test_gsm7_alphabet_accepts_umlauts_and_rejects_typographic_characters() -> None:
    assert is_gsm7("Grüße aus Köln, Straße Ä Ö Ü ä ö ü ß é @ £ $ _")
    assert is_gsm7("Preis: 10 € [inkl.] {x} ~ | ^ \\")
    for char in ("„", "“", "–", "—", "…", "😀", "ç", "`", "\u00a0"):
        assert not is_gsm7(f"ab{char}cd"), repr(char)


def test_gsm7_plain_text_segments_at_160_and_153() -> None:
    assert sms_segments("") == 1
    assert sms_segments("a" * 160) == 1
    assert sms_segments("a" * 161) == 2
    assert sms_segments("a" * 306) == 2
    assert sms_segments("a" * 307) == 3


def test_euro_sign_costs_two_septets() -> None:
    assert gsm7_septets("10 €") == 5
    assert sms_segments("€" * 80) == 1
    assert sms_segments("a" * 159 + "€") == 2
    # 81 euro signs = 162 septets; an ESC pair never straddles parts: 76 + 5 signs.
    assert sms_segments("€" * 81) == 2
    # 153 septets per part, but a pair that would end on septet 154 moves to the next part.
    assert sms_segments("a" * 152 + "€" + "a" * 152) == 3


def test_emoji_or_typographic_quotes_switch_to_ucs2_limits() -> None:
    assert sms_segments("Hallo 👋") == 1
    assert sms_segments("a" * 70 + "„") == 2  # 71 UCS-2 units
    assert sms_segments("„" + "a" * 69) == 1
    assert sms_segments("a" * 134 + "“") == 3  # 135 units > 2 * 67
    # An emoji takes a surrogate pair: 68 + 2 = 70 units still fits one segment.
    assert sms_segments("a" * 68 + "😀") == 1
    assert sms_segments("a" * 69 + "😀") == 2


def test_to_gsm7_maps_typographic_look_alikes() -> None:
    assert to_gsm7("„Hallo“ – 10\u00a0€…") == '"Hallo" - 10 €...'
    assert to_gsm7("Danke 👍") == "Danke ?"


# --- escaping and privacy --------------------------------------------------------------------


def test_html_escapes_a_customer_name_carrying_markup() -> None:
    evil = 'Erika <script>alert("x")</script> & Co'
    context = make_context(
        kind=MessageKind.REMINDER,
        salutation_name=evil,
        address_lines=["<b>Heidestraße</b> 17", "51147 Köln"],
    )
    message = render_message(Channel.EMAIL, context)
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in message.html
    assert "<b>Heidestraße</b>" not in message.html
    assert evil in message.text  # plain text is not HTML, so no entities there


def test_a_letter_prints_customer_data_carrying_markup_as_typed() -> None:
    # Data goes to Typst as JSON, never as markup: neither HTML nor Typst syntax does anything.
    evil = 'Erika *Muster* #panic("x") <b>&</b> $x$ @ref'
    context = make_context(
        kind=MessageKind.REMINDER, salutation_name=evil, address_lines=["_Heide_straße 17 \\", "51147 Köln"]
    )
    message = render_message(Channel.LETTER, context)
    first = pdf_pages(message)[0]
    assert f"Guten Tag {evil}," in first
    assert "_Heide_straße 17 \\" in first
    assert evil in message.text


def test_agent_handover_names_case_contract_amount_and_task_but_no_customer_contact(
    sample_context: MessageContext,
) -> None:
    context = sample_context.model_copy(update={"kind": MessageKind.AGENT_HANDOVER})
    message = render_message(Channel.EMAIL, context)
    for part in (message.text, message.html):
        assert "case-2026-000123" in part
        assert "VS-2026-004711" in part
        assert "1.357,56" in part
        assert context.task_url in part
        assert "Max Vermittler" in part
        assert "Erika" not in part and "Mustermann" not in part
        for line in context.address_lines:
            assert line not in part
        assert context.pay_url not in part


def test_reactivation_mentions_a_credit_only_when_there_is_one() -> None:
    cleared = {"kind": MessageKind.REACTIVATION, "items": [], "total_cents": 0}
    with_credit = render_message(Channel.EMAIL, make_context(**cleared, credit_cents=2345))
    without = render_message(Channel.EMAIL, make_context(**cleared, credit_cents=0))
    assert "Guthaben von 23,45 €" in squash(with_credit.text)
    assert "Guthaben" not in without.text
    assert "Versicherungsschutz besteht wieder" in without.text


def test_payment_receipt_states_amount_received_and_remaining_balance(
    sample_context: MessageContext,
) -> None:
    context = sample_context.model_copy(update={"kind": MessageKind.PAYMENT_RECEIPT})
    text = squash(render_message(Channel.EMAIL, context).text)
    assert "Zahlung von 50,00 €" in text
    assert "noch ein Betrag von 1.357,56 € offen" in text
    assert PAY_URL in text


def test_reminder_charges_no_fee_wording_and_has_a_pay_link() -> None:
    items = [LineItem(label="Beitrag November 2026", due_date=date(2026, 11, 2), amount_cents=4990)]
    context = make_context(kind=MessageKind.REMINDER, items=items, total_cents=4990, deadline=None)
    for channel in (Channel.EMAIL, Channel.LETTER):
        message = render_message(channel, context)
        readable = message.html if channel is Channel.EMAIL else " ".join(pdf_pages(message))
        assert PAY_URL in message.text and PAY_URL in readable
        assert "49,90 €" in squash(message.text)
        assert "gebühr" not in message.text.lower()
        assert "§ 38" not in message.text


def test_a_first_premium_notice_states_the_section_37_consequences_instead(sample_context: MessageContext) -> None:
    context = sample_context.model_copy(update={"legal_basis": "vvg37"})
    letter = render_message(Channel.LETTER, context)
    first = pdf_pages(letter)[0]
    assert "solange der Erstbeitrag nicht bezahlt ist (§ 37 VVG)" in first
    assert "vom Vertrag zurücktreten" in first and "bis zum 08.12.2026" in first
    assert "§ 38 VVG" not in first and "ohne Einhaltung einer Kündigungsfrist" not in first
    assert "§ 37 VVG" in letter.subject
    email = render_message(Channel.EMAIL, context)
    assert "§ 37 VVG" in email.subject and "ERSTBEITRAG NICHT BEZAHLT" in email.text
    assert "Zahlungsaufforderung nach § 37 VVG in Textform" in email.text
