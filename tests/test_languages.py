"""Languages (issue #17): every message kind × channel exists in German, English and Danish and
renders in that language; SMS stay in one GSM-7 segment in every language; amounts are printed in
the contract's currency (DKK on the Danish plan); a Danish case runs end to end on the time-skipping
server in Danish, in DKK, with at most three reminders at least ten days apart and fees ≤ 100 DKK."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from channels.gsm7 import is_gsm7, sms_segments
from channels.render import (
    TEMPLATES_DIR,
    epc_fields,
    format_money,
    render_message,
    render_template,
)
from core.languages import SUPPORTED_LANGUAGES, default_language, fee_label, premium_label
from core.steps import CaseStage
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from models.ledger import Contract, Customer, Fee
from models.messages import MESSAGE_KINDS, Channel, Creditor, LineItem, MessageContext, MessageKind
from models.plans import get_plan
from tests.helpers import advance_until, berlin_today, messages, open_case

# Words only the language's own text has: the greeting and closing of every customer letter and
# e-mail, and the words a German text cannot do without. A translated message must show the first
# and none of the German ones.
OWN_WORDS: dict[str, tuple[str, ...]] = {
    "de": ("Guten Tag", "Mit freundlichen Grüßen"),
    "en": ("Dear ", "Kind regards"),
    "da": ("Kære ", "Med venlig hilsen"),
}
AGENT_WORDS: dict[str, tuple[str, ...]] = {"de": ("Hallo",), "en": ("Hello",), "da": ("Hej",)}
GERMAN = re.compile(r"\b(Sie|Ihr|Ihre|Ihren|Vertrag|Beitrag|Zahlung|bitte|Bitte|Versicherungsschutz|Mahnung|Betrag)\b")
# The SMS each kind sends, in a word or two of each language.
SMS_WORDS: dict[str, dict[MessageKind, str]] = {
    "de": {MessageKind.PAY_LINK_SMS: "Bitte hier zahlen", MessageKind.PAYMENT_RECEIPT: "Danke für Ihre Zahlung"},
    "en": {MessageKind.PAY_LINK_SMS: "Please pay here", MessageKind.PAYMENT_RECEIPT: "Thank you for your payment"},
    "da": {MessageKind.PAY_LINK_SMS: "Betal venligst her", MessageKind.PAYMENT_RECEIPT: "Tak for din betaling"},
}
CONFIRMED = {"de": "Danke, alles bezahlt!", "en": "Thank you, all paid!", "da": "Tak, alt er betalt!"}

PAY_URL = (
    "https://pay.example.dk/p/" + "x7Kp2QvL9mZt4RwB8nYc3HdF6sJ0aGeU1iO5QwErTy"[: 70 - len("https://pay.example.dk/p/")]
)
TERMINATED_ON, CURE_UNTIL = date(2026, 12, 14), date(2027, 1, 14)
CLEARED: dict[str, Any] = {"items": [], "total_cents": 0, "paid_cents": 135756}
SITUATIONS: dict[MessageKind, dict[str, Any]] = {
    MessageKind.PAID_IN_FULL: CLEARED
    | {"letter_date": date(2026, 12, 1), "paid_at": datetime(2026, 12, 1, 9, 15, tzinfo=UTC)},
    MessageKind.REACTIVATION: CLEARED | {"letter_date": date(2026, 12, 11)},
    MessageKind.TERMINATION_LETTER: {
        "letter_date": date(2026, 12, 9),
        "terminated_on": TERMINATED_ON,
        "cure_until": CURE_UNTIL,
    },
    MessageKind.TERMINATION_VOID: CLEARED
    | {
        "letter_date": date(2027, 1, 8),
        "paid_at": datetime(2027, 1, 8, 14, 20, tzinfo=UTC),
        "terminated_on": TERMINATED_ON,
        "cure_until": CURE_UNTIL,
    },
    MessageKind.PAID_AFTER_TERMINATION: CLEARED
    | {
        "letter_date": date(2027, 1, 20),
        "paid_at": datetime(2027, 1, 20, 8, 0, tzinfo=UTC),
        "terminated_on": TERMINATED_ON,
        "cure_until": CURE_UNTIL,
    },
}
PAIRS = [(kind, channel) for kind, spec in MESSAGE_KINDS.items() for channel in sorted(spec.channels)]


def context(language: str, kind: MessageKind, **overrides: Any) -> MessageContext:
    """A sample case whose own data carries no German words (names, places and labels neutral), so
    whatever German shows up came from a template."""
    items = [
        LineItem(
            label=premium_label("01.10.2026 – 31.10.2026", language), due_date=date(2026, 10, 1), amount_cents=12150
        ),
        LineItem(
            label=premium_label("01.11.2026 – 30.11.2026", language), due_date=date(2026, 11, 2), amount_cents=123456
        ),
        LineItem(label=fee_label("Mahnkosten", language), amount_cents=150, kind="fee"),
    ]
    values: dict[str, Any] = {
        "kind": kind,
        "language": language,
        "letter_date": date(2026, 11, 20),
        "case_id": "case-2026-000123",
        "contract_number": "VS-2026-004711",
        "salutation_name": "Anna Jensen",
        "address_lines": ["Nørregade 7", "1165 København K"],
        "items": items,
        "total_cents": sum(item.amount_cents for item in items),
        "paid_cents": 5000,
        "paid_at": datetime(2026, 12, 11, 9, 42, tzinfo=UTC),
        "deadline": date(2026, 12, 8),
        "pay_url": PAY_URL,
        "payment_reference": "RF18539007547034",
        "creditor": Creditor(name="Example Insurance A/S", iban="DK5000400440116243", address_lines=["Havnegade 1"]),
        "agent_name": "Lars Agent",
        "task_url": "https://intranet.example.dk/tasks/42",
    }
    return MessageContext(**(values | SITUATIONS.get(kind, {}) | overrides))


def pdf_text(pdf: bytes | None) -> str:
    assert pdf is not None
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).split())


# --- completeness ---------------------------------------------------------------------------------


def test_every_supported_language_has_a_template_folder_and_no_folder_is_unsupported() -> None:
    folders = {p.name for p in TEMPLATES_DIR.iterdir() if p.is_dir()}
    assert folders == set(SUPPORTED_LANGUAGES) == {"de", "en", "da"}


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_every_template_file_of_german_exists_in_each_language_itself(language: str) -> None:
    """No silent fallback to German: the language's own folder holds every file German has (the
    court application for review is a German court's form, read by German staff, and stays German)."""
    german = {p.name for p in (TEMPLATES_DIR / "de").iterdir()} - {"court_application.review.html"}
    own = {p.name for p in (TEMPLATES_DIR / language).iterdir()}
    assert not german - own, f"templates/{language}/ lacks {sorted(german - own)}"


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize(("kind", "channel"), PAIRS)
def test_every_kind_and_channel_renders_in_the_language_itself(
    kind: MessageKind, channel: Channel, language: str
) -> None:
    rendered = render_message(channel, context(language, kind))

    if channel is Channel.SMS:
        words = SMS_WORDS[language].get(kind) or CONFIRMED[language]
        assert words in rendered.text, rendered.text
        texts = [rendered.text]
    else:
        own = AGENT_WORDS[language] if MESSAGE_KINDS[kind].audience == "agent" else OWN_WORDS[language]
        texts = [rendered.subject, rendered.text]
        if channel is Channel.EMAIL:
            texts.append(rendered.html)
            assert f'<html lang="{language}">' in rendered.html
        else:
            texts.append(pdf_text(rendered.pdf))
        for text in texts[1:]:
            for word in own:
                assert word in text, (word, text[:300])
    if language != "de":
        for text in texts:
            assert not GERMAN.search(text), (GERMAN.findall(text), text[:500])


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_agent_call_notice_escalation_and_campaign_mails_render_in_the_language(language: str) -> None:
    notice = render_template("agent_call_notice.txt", {"who": "", "creditor_name": "Example A/S"}, language)
    escalation = render_template(
        "agent_escalation.email.txt",
        {
            "supervisor_name": "Eva",
            "task_id": 7,
            "contract_number": "VS-1",
            "agent_code": "A-7",
            "reason": "x",
            "task_url": "u",
        },
        language,
    )
    campaign: dict[str, Any] = {
        "insurer": "Example A/S",
        "insurer_address": "Havnegade 1",
        "unsubscribe_url": "https://x/u",
        "subject": "s",
        "source_page": "example.dk",
        "confirm_url": "https://x/c",
        "retention_days": 30,
        "contract_number": "VS-1",
        "inspection_due": "01.03.2027",
        "onboarding_number": 1,
        "reminder_number": 1,
        "segment": "standard",
        "resume_url": "https://x/r",
        "link_valid_until": "01.03.2027",
    }
    mails = [
        render_template(f"{name}.email.{part}", campaign, language)
        for name in ("quote_confirmation", "quote_inspection", "quote_onboarding", "quote_reminder")
        for part in ("subject.txt", "txt", "html")
    ]
    expected = {
        "de": ("Ihr Kundenservice", "Aufgabe öffnen", "Mit freundlichen Grüßen"),
        "en": ("your customer service", "Open the task", "Kind regards"),
        "da": ("din kundeservice", "Åbn opgaven", "Med venlig hilsen"),
    }[language]
    assert expected[0] in notice and expected[1] in escalation
    assert all(expected[2] in mail for mail in mails if "<p" in mail or "--" in mail)
    # Not a plan's SMS step (no one-segment rule): it says who calls and why, in two segments at most.
    assert is_gsm7(notice) and sms_segments(" ".join(notice.split())) <= 2, (len(notice), notice)
    if language != "de":
        for text in [notice, escalation, *mails]:
            assert not GERMAN.search(text), (GERMAN.findall(text), text[:300])


# --- SMS: one GSM-7 segment in every language --------------------------------------------------------


SMS_KINDS = [kind for kind, spec in MESSAGE_KINDS.items() if Channel.SMS in spec.channels]


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("kind", SMS_KINDS)
@pytest.mark.parametrize("credit_cents", [0, 2500])
@pytest.mark.parametrize("legal_basis", ["vvg38", "dk"])
def test_every_sms_fits_one_gsm7_segment_in_every_language(
    kind: MessageKind, language: str, credit_cents: int, legal_basis: str
) -> None:
    # A 70-character pay URL (the short link is shorter) and a 26-character creditor name.
    ctx = context(language, kind, credit_cents=credit_cents, legal_basis=legal_basis)
    text = render_message(Channel.SMS, ctx).text

    assert is_gsm7(text), text
    assert sms_segments(text) == 1, (len(text), text)
    assert "€" not in text and "kr." not in text and not re.search(r"\d+[,.]\d\d", text)


# --- currency ----------------------------------------------------------------------------------------


def test_money_is_formatted_in_the_contracts_currency_as_the_language_writes_it() -> None:
    assert format_money(123456, "DKK", "da_DK") == "1.234,56\xa0kr."
    assert format_money(123456, "EUR", "de_DE") == "1.234,56\xa0€"
    assert format_money(123456, "EUR", "en_IE") == "€1,234.56"
    assert format_money(10_000, "DKK", "de_DE") == "100,00\xa0DKK"
    with pytest.raises(TypeError, match="integer cents"):
        format_money(12.5, "DKK", "da_DK")  # type: ignore[arg-type]


def test_a_danish_notice_in_dkk_shows_kroner_everywhere_and_carries_no_girocode() -> None:
    ctx = context("da", MessageKind.QUALIFIED_NOTICE, currency="DKK", legal_basis="dk")
    letter = render_message(Channel.LETTER, ctx)
    email = render_message(Channel.EMAIL, ctx)

    for text in (letter.text, pdf_text(letter.pdf), email.text, email.html):
        assert "1.357,56\xa0kr." in text or "1.357,56 kr." in text, text[:400]
        assert "€" not in text and "EUR" not in text
        assert "GiroCode" not in text  # the EPC QR is a SEPA (euro) transfer
    assert epc_fields(ctx) is None
    assert "renteloven § 9 b" in letter.text and "100 kr. pr. rykker" in letter.text
    assert "VVG" not in letter.text and "VVG" not in email.text
    assert letter.subject == "Rykker med betalingsfrist – police VS-2026-004711"


def test_an_english_euro_letter_uses_english_notation_and_keeps_its_girocode() -> None:
    ctx = context("en", MessageKind.REMINDER)
    letter = render_message(Channel.LETTER, ctx)
    assert "€1,357.56" in letter.text and "GiroCode" in pdf_text(letter.pdf)
    assert "Contract" in pdf_text(letter.pdf) and "Page 1 of 1" in pdf_text(letter.pdf)


def test_the_danish_plan_in_german_names_danish_law_not_the_vvg() -> None:
    """Law follows the plan, language the customer: a German-speaking customer on the Danish plan."""
    ctx = context("de", MessageKind.QUALIFIED_NOTICE, currency="DKK", legal_basis="dk")
    letter = render_message(Channel.LETTER, ctx)
    assert "renteloven § 9 b" in letter.text and "§ 38 VVG" not in letter.text
    assert "1.357,56 DKK" in " ".join(letter.text.split()).replace("\xa0", " ")


# --- language as master data ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "plan_language", "expected"),
    [
        ("DK", "de", "da"),
        ("DE", "da", "de"),
        ("AT", "de", "de"),
        ("IE", "de", "en"),
        ("FR", "de", "en"),
        (None, "da", "da"),
        (None, "xx", "de"),
    ],
)
def test_the_default_language_comes_from_the_country_else_from_the_plan(
    country: str | None, plan_language: str, expected: str
) -> None:
    assert default_language(country, plan_language) == expected


def _contract(body_customer: dict[str, Any], plan: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"customer": {"customer_number": "C-DK-1", "name": "Anna Jensen"} | body_customer}
    if plan is not None:
        body["dunning_plan"] = plan
    return body


def _stored(engine: Engine, contract_number: str) -> tuple[str, str]:
    with session_scope(engine) as session:
        contract = session.exec(select(Contract).where(Contract.contract_number == contract_number)).one()
        customer = session.get(Customer, contract.customer_id)
        assert customer is not None
        return customer.language, contract.currency


async def test_put_contract_defaults_language_and_currency_and_refuses_a_currency_change(
    api: httpx.AsyncClient, engine: Engine
) -> None:
    answer = await api.put("/api/contracts/DK-1", json=_contract({}, "dk-follow-up"))
    assert answer.status_code == 200, answer.text
    assert _stored(engine, "DK-1") == ("da", "DKK")  # no language, no country: the plan's

    answer = await api.put("/api/contracts/DK-1", json=_contract({"language": "en"}))
    assert answer.status_code == 200 and _stored(engine, "DK-1") == ("en", "DKK")  # explicit wins, plan kept
    await api.put("/api/contracts/DK-1", json=_contract({"city": "Aarhus"}))
    assert _stored(engine, "DK-1") == ("en", "DKK")  # omitted on an update: kept

    answer = await api.put(
        "/api/contracts/DE-2", json=_contract({"customer_number": "C-DE-2", "country": "DK"}, "de-follow-up")
    )
    assert answer.status_code == 200 and _stored(engine, "DE-2") == ("da", "EUR")  # by country; EUR plan

    bad = await api.put("/api/contracts/DE-2", json=_contract({"customer_number": "C-DE-2", "language": "fr"}))
    assert bad.status_code == 422 and "language" in bad.text
    assert _stored(engine, "DE-2") == ("da", "EUR")

    with session_scope(engine) as session:
        service.book_premium(
            session,
            external_id="P-DK-1",
            contract_number="DK-1",
            period_start=date(2026, 1, 1),
            period_end=date(2026, 1, 31),
            due_date=date(2026, 1, 1),
            amount_cents=50_000,
        )
    refused = await api.put("/api/contracts/DK-1", json=_contract({}, "de-follow-up"))
    assert refused.status_code == 422 and "cannot change its currency" in refused.text
    assert _stored(engine, "DK-1") == ("en", "DKK")
    with session_scope(engine) as session:
        assert (
            session.exec(select(Contract).where(Contract.contract_number == "DK-1")).one().dunning_plan
            == "dk-follow-up"
        )


# --- a Danish case end to end on the time-skipping server --------------------------------------------

REMINDER_KINDS = {"reminder", "qualified_notice", "pay_link"}  # what renteloven § 9 b counts as reminders


def seed_danish_contract(engine: Engine, due: date) -> None:
    with session_scope(engine) as session:
        service.upsert_agent(session, "A-DK", name="Lars Agent", email="lars@example.dk")
        customer = service.upsert_customer(
            session,
            "C-DK-9",
            name="Anna Jensen",
            street="Nørregade 7",
            postal_code="1165",
            city="København K",
            country="DK",
            language="da",
            email="anna@example.dk",
            phone="+4520123456",
        )
        service.upsert_contract(
            session, "DK-9", customer, agent_code="A-DK", product="Indbo", currency="DKK", dunning_plan="dk-follow-up"
        )
        service.book_premium(
            session,
            external_id="P-DK-9",
            contract_number="DK-9",
            period_start=due,
            period_end=due + timedelta(days=30),
            due_date=due,
            amount_cents=85_000,
        )


async def test_a_danish_case_reminds_in_danish_in_dkk_at_most_three_times_ten_days_apart_with_fees_within_the_cap(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    due = berlin_today(await time_env.get_current_time())
    seed_danish_contract(engine, due)
    handle = await open_case(time_env, settings.task_queue, "DK-9", "P-DK-9", plan_id="dk-follow-up")

    final = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.AGENCY)

    assert [s.key for s in final.steps_done] == ["reminder", "notice", "suspend", "sms", "agency"]
    sent = messages(engine, "DK-9")
    reminders = [m for m in sent if m.kind in REMINDER_KINDS]
    # One step is one reminder, whatever channels and copies carry it.
    steps: dict[str, datetime] = {}
    for m in reminders:
        steps.setdefault(m.kind, m.created_at)
    assert list(steps) == ["reminder", "qualified_notice", "pay_link"]  # three reminders, no more
    moments = list(steps.values())
    assert all(later - earlier >= timedelta(days=10) for earlier, later in zip(moments, moments[1:], strict=False)), (
        moments
    )

    with session_scope(engine) as session:
        fees = list(session.exec(select(Fee)))
    assert fees and all(f.amount_cents <= 10_000 for f in fees)  # ≤ 100 DKK per reminder
    assert sum(f.amount_cents for f in fees) <= 10_000 * len(steps)
    assert all(f.label == "Mahnkosten" for f in fees)  # the ledger's label; the message prints it in Danish

    for m in reminders:
        text = f"{m.subject}\n{m.body_text}\n{m.body_html or ''}"
        assert not GERMAN.search(text), (m.kind, m.channel, GERMAN.findall(text))
        assert "€" not in text and "EUR" not in text, (m.kind, m.channel)
        if m.channel == "sms":
            assert "Betal venligst her" in text and is_gsm7(m.body_text) and sms_segments(m.body_text) == 1
        else:
            assert "Kære Anna Jensen" in text and "Med venlig hilsen" in text
            assert "Præmie" in text and " kr." in text.replace("\xa0", " ")
    notice = next(m for m in reminders if m.kind == "qualified_notice" and m.channel == "letter")
    assert notice.subject.startswith("Rykker med betalingsfrist")
    assert "Rykkergebyr" in notice.body_text and "renteloven § 9 b" in notice.body_text
    assert "950,00 kr." in notice.body_text.replace("\xa0", " ")  # 850 kr. premium + 100 kr. fee
    handover = next(m for m in sent if m.kind == "agent_handover")
    assert "Hej Lars Agent" in handover.body_text and "950,00 kr." in handover.body_text.replace("\xa0", " ")
    plan = get_plan("dk-follow-up")
    assert plan.language == "da" and plan.currency == "DKK"
