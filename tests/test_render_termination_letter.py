"""The termination letter (§38(3) VVG) is a declaration in text form: it names the termination, the
day it takes effect, the month in which paying everything makes it void, the amount to the cent
and how to pay, with the legal part set apart on page one like the notice's consequences."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from channels.render import RenderError, epc_fields, format_eur, girocode_svg, render_message, supported_channels
from models.messages import Channel, LineItem, MessageKind
from tests.test_render import PAY_URL, pdf_pages, situation, squash

KIND = MessageKind.TERMINATION_LETTER

STATEMENTS = [
    "Wir kündigen Ihren Vertrag VS-2026-004711 deshalb nach § 38 Abs. 3 VVG fristlos",
    "ohne Einhaltung einer Kündigungsfrist",
    "Die Kündigung wird am 14.12.2026 wirksam",
    "Offen ist ein Gesamtbetrag von 1.357,56 €",
    "Offener Gesamtbetrag 1.357,56 €",
]
BOX = [
    "So wird die Kündigung unwirksam (§ 38 Abs. 3 VVG)",
    "wenn Sie den offenen Gesamtbetrag von 1.357,56 € innerhalb eines Monats nach Zugang dieser Kündigung "
    "vollständig zahlen, also spätestens am 14.01.2027",
    "zwischen dem Ablauf der Zahlungsfrist am 08.12.2026 und Ihrer Zahlung eintreten, "
    "besteht kein Versicherungsschutz (§ 38 Abs. 2 VVG)",
    "Ohne vollständige Zahlung bis zum 14.01.2027: Es bleibt bei der Kündigung. Ihr Vertrag endet am 14.12.2026",
]


def text_without_list_markers(text: str) -> str:
    """The text copies number the box's points and bullet the items; the PDF shows them as a list."""
    text = re.sub(r"^(\d\.|-) ", "", text, flags=re.MULTILINE)
    return squash(text.replace("WICHTIG: SO WIRD DIE KÜNDIGUNG UNWIRKSAM (§ 38 ABS. 3 VVG)", BOX[0]))


def test_a_termination_letter_goes_out_as_letter_or_e_mail_only() -> None:
    assert supported_channels(KIND) == {Channel.EMAIL, Channel.LETTER}
    with pytest.raises(RenderError, match="never as SMS"):
        render_message(Channel.SMS, situation(KIND))


def test_the_letter_states_termination_date_cure_amount_and_pay_link_with_the_legal_box_on_page_one() -> None:
    context = situation(KIND)
    message = render_message(Channel.LETTER, context)
    pages = pdf_pages(message)
    first, everything = pages[0], " ".join(pages)

    for phrase in STATEMENTS + BOX:
        assert phrase in first, phrase
    for item in context.items:
        assert item.label in first and squash(format_eur(item.amount_cents)) in first
    assert first.index("Offener Gesamtbetrag") < first.index("So wird die Kündigung unwirksam")
    assert PAY_URL in everything
    assert "So zahlen Sie bis zum 14.01.2027" in everything
    assert "Verwendungszweck RF18539007547034" in everything
    assert "Fristlose Kündigung nach § 38 Abs. 3 VVG" in message.subject and "VS-2026-004711" in message.subject


def test_the_letter_carries_a_girocode_for_the_open_amount() -> None:
    context = situation(KIND)
    message = render_message(Channel.LETTER, context)
    assert "oder scannen Sie den GiroCode" in " ".join(pdf_pages(message))
    assert girocode_svg(context).startswith("<svg")
    fields = epc_fields(context)
    assert fields is not None and str(fields["amount"]) == "1357.56" and fields["reference"] == "RF18539007547034"


def test_the_text_copy_of_the_letter_says_the_same() -> None:
    text = text_without_list_markers(render_message(Channel.LETTER, situation(KIND)).text)
    for phrase in STATEMENTS[:4] + BOX + [PAY_URL]:
        assert phrase in text, phrase


def test_the_e_mail_says_the_same_and_that_it_is_the_declaration_in_text_form() -> None:
    message = render_message(Channel.EMAIL, situation(KIND))
    text = text_without_list_markers(message.text)
    html = squash(re.sub(r"<[^>]+>", " ", message.html))
    for part in (text, html):
        for phrase in STATEMENTS[:4] + BOX[1:] + [PAY_URL, "1.234,56 €", "121,50 €", "1,50 €"]:
            assert phrase in part, phrase
        assert "Diese E-Mail ist eine Kündigung nach § 38 Abs. 3 VVG in Textform." in part
    assert 'id="legal-consequences"' in message.html
    assert "data:image" not in message.html  # the GiroCode is for paper only


def test_without_the_notice_deadline_the_letter_refers_to_the_period_it_set() -> None:
    text = squash(render_message(Channel.EMAIL, situation(KIND, deadline=None)).text)
    assert "innerhalb der gesetzten Frist zu zahlen" in text
    assert "zwischen dem Ablauf der Zahlungsfrist und Ihrer Zahlung eintreten" in text


def test_a_long_arrears_list_moves_the_legal_box_above_it_to_keep_it_on_page_one() -> None:
    items = [
        LineItem(label=f"Beitrag {month:02d}/{year}", due_date=date(year, month, 1), amount_cents=2000 + month)
        for year in (2025, 2026)
        for month in range(1, 13)
    ]
    context = situation(KIND, items=items, total_cents=sum(i.amount_cents for i in items))
    message = render_message(Channel.LETTER, context)
    pages = pdf_pages(message)

    assert pages[0].index("So wird die Kündigung unwirksam") < pages[0].index("Position Fällig am Betrag")
    assert len(pages) >= 2
    for phrase in [*STATEMENTS[:3], *BOX[2:]]:
        assert phrase in pages[0], phrase
    assert "spätestens am 14.01.2027" in pages[0]
    assert squash(format_eur(context.total_cents)) in " ".join(pages)


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"items": [], "total_cents": 0}, "itemised"),
        ({"items": [LineItem(label="Gutschrift", amount_cents=-500)], "total_cents": -500}, "total > 0"),
        ({"terminated_on": None}, "terminated_on"),
        ({"cure_until": None}, "cure_until"),
        ({"cure_until": date(2026, 12, 13)}, "must not lie before terminated_on"),
        ({"pay_url": ""}, "pay_url"),
        ({"legal_basis": "vvg37"}, "legal_basis"),
    ],
)
def test_a_termination_letter_missing_what_the_law_needs_is_refused(overrides: dict[str, Any], complaint: str) -> None:
    for channel in (Channel.EMAIL, Channel.LETTER):
        with pytest.raises(RenderError, match=re.escape(complaint)):
            render_message(channel, situation(KIND, **overrides))
