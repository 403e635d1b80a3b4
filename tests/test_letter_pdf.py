"""Letters as PDF/A-2b (Typst): archival identification, embedded fonts, the legal content of every
letter kind in the PDF's own text, the page-1 rule for the legal box, and data printed as typed."""

from __future__ import annotations

import html
import io
import re
from datetime import date

import pikepdf
import pytest
from pypdf import PdfReader

from channels.render import (
    FONTS_DIR,
    LETTER_PDF_STANDARD,
    RenderError,
    letter_data,
    render_message,
    supported_channels,
)
from models.messages import TEXT_FORM_KINDS, Channel, LineItem, MessageKind, RenderedMessage
from tests.test_render import PAY_URL, make_context, pdf_pages, situation, squash

LETTER_KINDS = [kind for kind in MessageKind if Channel.LETTER in supported_channels(kind)]

# What each letter must state in its PDF (beyond letterhead, address and footer, checked for all).
STATES: dict[MessageKind, list[str]] = {
    MessageKind.REMINDER: ["Zahlungserinnerung", "Offener Gesamtbetrag 1.357,56 €", PAY_URL],
    MessageKind.QUALIFIED_NOTICE: [
        "bis zum 08.12.2026",
        "Rechtsfolgen, wenn Sie nicht bis zum 08.12.2026 zahlen (§ 38 VVG)",
        "sind wir von der Leistung frei",
        "ohne Einhaltung einer Kündigungsfrist kündigen",
        "Offener Gesamtbetrag 1.357,56 €",
        "Verwendungszweck RF18539007547034",
    ],
    MessageKind.PAY_LINK_SMS: ["kein Versicherungsschutz", PAY_URL, "Offener Gesamtbetrag 1.357,56 €"],
    MessageKind.PAYMENT_RECEIPT: [
        "Zahlung von 50,00 €",
        "noch ein Betrag von 1.357,56 € offen",
        "Noch offen 1.357,56 €",
    ],
    MessageKind.TERMINATION_LETTER: [
        "nach § 38 Abs. 3 VVG fristlos",
        "Die Kündigung wird am 14.12.2026 wirksam",
        "So wird die Kündigung unwirksam (§ 38 Abs. 3 VVG)",
        "spätestens am 14.01.2027",
        "So zahlen Sie bis zum 14.01.2027",
        "Ihr Vertrag endet am 14.12.2026; eine spätere Zahlung ändert daran nichts.",
    ],
    MessageKind.PAID_IN_FULL: ["Ihr Vertrag und Ihr Versicherungsschutz bestehen unverändert fort"],
    MessageKind.REACTIVATION: ["Ihr Versicherungsschutz besteht wieder", "§ 38 Abs. 2 VVG"],
    MessageKind.TERMINATION_VOID: ["Kündigung mit Wirkung zum 14.12.2026 ist damit unwirksam"],
    MessageKind.PAID_AFTER_TERMINATION: ["Die Kündigung Ihres Vertrags mit Wirkung zum 14.12.2026 bleibt bestehen"],
    MessageKind.FINAL_REMINDER: ["Dies ist unsere letzte Mahnung", "§§ 688 ff. ZPO", "Ratenzahlung"],
}


def test_every_letter_kind_has_its_statements_here() -> None:
    assert set(STATES) == set(LETTER_KINDS)


@pytest.fixture(scope="module", params=LETTER_KINDS, ids=lambda kind: kind.value)
def letter(request: pytest.FixtureRequest) -> tuple[MessageKind, RenderedMessage]:
    kind: MessageKind = request.param
    return kind, render_message(Channel.LETTER, situation(kind))


def test_each_letter_identifies_itself_as_pdf_a_2b(letter: tuple[MessageKind, RenderedMessage]) -> None:
    kind, message = letter
    assert message.pdf is not None
    with pikepdf.open(io.BytesIO(message.pdf)) as pdf:
        meta = pdf.open_metadata()
        assert meta.pdfa_status == "2B" == LETTER_PDF_STANDARD.removeprefix("a-").upper()
        assert meta["pdfaid:part"] == "2" and meta["pdfaid:conformance"] == "B"
        assert meta["dc:title"] == message.subject
        intents = pdf.Root.OutputIntents
        assert len(intents) == 1 and intents[0].S == "/GTS_PDFA1" and "/DestOutputProfile" in intents[0]


def test_each_letter_embeds_every_font_it_uses(letter: tuple[MessageKind, RenderedMessage]) -> None:
    kind, message = letter
    assert message.pdf is not None
    names = set()
    with pikepdf.open(io.BytesIO(message.pdf)) as pdf:
        for page in pdf.pages:
            for font in page.Resources.Font.values():
                descriptors = [font.FontDescriptor] if "/FontDescriptor" in font else []
                descriptors += [child.FontDescriptor for child in font.get("/DescendantFonts", [])]
                assert descriptors, f"{kind}: font {font.get('/BaseFont')} has no descriptor"
                for descriptor in descriptors:
                    assert any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")), kind
                    names.add(str(descriptor.FontName).split("+")[-1])
    assert names == {"DejaVuSans", "DejaVuSans-Bold"}, names  # the bundled fonts, nothing from the system
    assert {p.name for p in FONTS_DIR.glob("*.ttf")} == {"DejaVuSans.ttf", "DejaVuSans-Bold.ttf"}


def test_each_letter_states_its_legal_content_in_the_pdf(letter: tuple[MessageKind, RenderedMessage]) -> None:
    kind, message = letter
    pages = pdf_pages(message)
    first, everything = pages[0], " ".join(pages)
    # Letterhead, sender line, address window, information block, salutation.
    for phrase in [
        "Beispiel Versicherung AG · Musterstraße 1 · 10115 Berlin",
        "Erika Mustermann",
        "Heidestraße 17",
        "51147 Köln",
        "Vertrag VS-2026-004711",
        "Guten Tag Erika Mustermann,",
        message.subject,
    ]:
        assert phrase in first, (kind, phrase)
    for phrase in STATES[kind]:
        assert phrase in everything, (kind, phrase)
    # Footer with bank details and page numbers on every page, closing at the end.
    for number, page in enumerate(pages, start=1):
        assert f"Seite {number} von {len(pages)}" in page, kind
        assert "Bankverbindung: IBAN DE02120300000000202051 · BIC BYLADEM1001" in page, kind
    assert "Mit freundlichen Grüßen Beispiel Versicherung AG" in pages[-1]
    assert "ohne Unterschrift gültig" in pages[-1]
    if kind in TEXT_FORM_KINDS:
        assert "Wichtig:" in first and "VVG)" in first, kind


# What only the e-mail says: its button, its text-form note, its footer; the letter's transfer line
# mentions the GiroCode instead ("Per Überweisung – oder scannen Sie den GiroCode …:").
EMAIL_ONLY = (
    "Jetzt ",
    "Falls der Knopf",
    "Diese E-Mail ist eine",
    "Mit freundlichen",
    "Diese Nachricht betrifft",
    "Beispiel Versicherung AG ·",
    "Vorgang case-",
    "Per Überweisung:",
    "in Textform",
)


@pytest.mark.parametrize("kind", LETTER_KINDS, ids=lambda kind: kind.value)
def test_each_letter_says_every_sentence_its_e_mail_says(kind: MessageKind) -> None:
    # The letter's Typst body is a second copy of the e-mail's HTML body: this keeps the two in step.
    context = situation(kind)
    email = render_message(Channel.EMAIL, context).html
    body = re.sub(r"</?(strong|b|a|span)\b[^>]*>", "", email[email.index("Guten Tag") :])
    lines = [squash(html.unescape(line)) for line in re.sub(r"<[^>]+>", "\n", body).split("\n")]
    sentences = [part for line in lines if line for part in re.split(r"(?<=[.!?:])\s+", line)]
    letter = " ".join(pdf_pages(render_message(Channel.LETTER, context)))
    checked = [sentence for sentence in sentences if not any(marker in sentence for marker in EMAIL_ONLY)]
    assert len(checked) >= 5
    for sentence in checked:
        assert sentence.replace("diese E-Mail", "dieses Schreiben") in letter, (kind, sentence)


def test_the_same_letter_renders_to_the_same_bytes() -> None:
    # Activities are retried; the creation date is the letter date, so the PDF does not change.
    context = situation(MessageKind.QUALIFIED_NOTICE)
    first, second = (render_message(Channel.LETTER, context).pdf for _ in range(2))
    assert first is not None and first == second
    with pikepdf.open(io.BytesIO(first)) as pdf:
        assert pdf.open_metadata()["xmp:CreateDate"].startswith("2026-11-20")


def test_a_long_arrears_list_moves_the_box_before_the_table_and_an_impossible_one_is_refused() -> None:
    def arrears(count: int, label: str = "Beitrag") -> list[LineItem]:
        return [
            LineItem(label=f"{label} {n:03d}", due_date=date(2024, 1 + n % 12, 1), amount_cents=1000 + n)
            for n in range(count)
        ]

    short = make_context(items=arrears(3), total_cents=sum(i.amount_cents for i in arrears(3)))
    first = pdf_pages(render_message(Channel.LETTER, short))[0]
    assert first.index("Position Fällig am Betrag") < first.index("Wichtig: Rechtsfolgen")

    items = arrears(30)
    moved = render_message(Channel.LETTER, make_context(items=items, total_cents=sum(i.amount_cents for i in items)))
    pages = pdf_pages(moved)
    assert len(pages) >= 2
    assert pages[0].index("Wichtig: Rechtsfolgen") < pages[0].index("Position Fällig am Betrag")
    assert "die nach Ihrer Zahlung eintreten, wieder Versicherungsschutz" in pages[0]

    # Before the box there is only the introduction; a product name that fills page 1 leaves no room.
    huge = make_context(product="Hausrat " * 900)
    with pytest.raises(RenderError, match="does not fit on the first page"):
        render_message(Channel.LETTER, huge)


def test_a_letter_with_a_character_its_font_cannot_print_is_refused_not_printed_as_a_blank() -> None:
    # PDF/A embeds every glyph; DejaVu Sans covers Latin, Greek and Cyrillic, not CJK.
    context = make_context(kind=MessageKind.REMINDER, salutation_name="Li 李 Müller-Ørsted")
    with pytest.raises(RenderError, match='the letter cannot be printed: the text `"李"` could not be displayed'):
        render_message(Channel.LETTER, context)
    assert "Li 李 Müller-Ørsted" in render_message(Channel.EMAIL, context).text
    greek = render_message(Channel.LETTER, make_context(kind=MessageKind.REMINDER, salutation_name="Ζωή Παπαδοπούλου"))
    assert "Guten Tag Ζωή Παπαδοπούλου," in pdf_pages(greek)[0]


def test_letter_data_formats_dates_and_amounts_and_keeps_cents() -> None:
    context = situation(MessageKind.TERMINATION_LETTER)
    data = letter_data({**dict(context), "channel": "letter"}, "de")
    assert data["total_cents"] == 135756 and squash(data["total"]) == "1.357,56 €"
    assert data["terminated_on"] == "14.12.2026" and data["cure_until"] == "14.01.2027"
    assert data["items"][0]["due_date"] == "01.10.2026" and squash(data["items"][1]["amount"]) == "1.234,56 €"
    assert data["creditor"]["iban"] == "DE02120300000000202051"


def test_a_letter_has_text_and_pdf_but_no_html() -> None:
    message = render_message(Channel.LETTER, situation(MessageKind.REMINDER))
    assert message.html == "" and message.text and message.pdf
    info = PdfReader(io.BytesIO(message.pdf)).metadata
    assert info is not None and info.title == message.subject
