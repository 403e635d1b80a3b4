"""Every portal text in every language (issues #14, #17): each registered key has German, English and
Danish words with the same placeholders, and every key a portal template names is registered; the
portal's notation and currency per language; the language switch offers Dansk."""

from __future__ import annotations

import re
import string
from datetime import date
from pathlib import Path

import pytest

import web.public.campaign_links  # noqa: F401  (the campaign's confirm/unsubscribe pages)
import web.public.pay  # noqa: F401  (registers the pay pages' texts)
import web.public.pay_links  # noqa: F401  (the pay link's notices)
import web.public.portal.routes  # noqa: F401  (registers every portal module's texts)
from web.public.portal.i18n import LANGUAGE_NAMES, LANGUAGES, MENU, Words, catalog, currency_of, money, t, texts

WEB = Path(__file__).resolve().parent.parent / "web" / "templates"
TEMPLATES = [*(WEB / "portal").glob("*.html"), WEB / "pay.html", WEB / "pay_done.html"]
# t("key") — or t("prefix." ~ value), a key built from a literal prefix (then "~" follows).
KEY = re.compile(r"""\bt\(\s*["']([a-z0-9_.]+)["']\s*(~)?""")


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_text_has_german_english_and_danish_words_with_the_same_placeholders() -> None:
    entries = catalog()
    assert len(entries) > 100
    assert LANGUAGES == ("de", "en", "da")
    problems = [
        key
        for key, words in entries.items()
        if len(words) != len(LANGUAGES)
        or any(not text.strip() for text in words)
        or any(placeholders(text) != placeholders(words[0]) for text in words)
    ]
    assert problems == []


def test_danish_is_written_not_copied() -> None:
    """Danish words are their own: a Danish text equals its German or English one only where Danish
    says it the same way (names, codes, a bare placeholder, Mobilnummer, Telefon, Produkt, E-mail, Send)."""
    same_word = {
        "portal.contact.phone",
        "portal.items.fee",
        "portal.agent.phone_label",
        "portal.agent.email_label",
        "portal.pay.product",
        "portal.transfer.iban",
        "portal.transfer.bic",
        "portal.field.iban",
        "portal.requests.send",
        "portal.bank.iban",
    }
    same = {key for key, (german, english, danish) in catalog().items() if danish in (german, english)}
    assert sorted(same - same_word) == []
    for german_word in ("Vertrag", "Beitrag", "Zahlung", "bitte", "Sie "):
        assert [k for k, words in catalog().items() if german_word in words[2]] == [], german_word


def test_a_text_without_danish_is_refused() -> None:
    with pytest.raises(ValueError, match="needs 3 languages"):
        texts({"test.only_two": ("Nur zwei", "Only two")})  # type: ignore[dict-item]
    assert "test.only_two" not in catalog()


def test_words_pick_the_language_and_fall_back_to_german() -> None:
    assert t("da", "portal.menu.pay") == "Betal"
    assert t("en", "portal.menu.pay") == "Pay"
    assert t("xx", "portal.menu.pay") == "Bezahlen"
    assert Words("da")("portal.contract.heading", masked="K-…07") == "Police K-…07"
    assert LANGUAGE_NAMES["da"] == "Dansk"


def test_amounts_in_the_contracts_currency_and_the_locales_notation() -> None:
    assert money("da", 123456, "DKK") == "1.234,56 kr."
    assert money("de", 123456, "DKK") == "1.234,56 DKK"
    assert money("de", 123456) == "1.234,56 €"
    assert Words("da", "DKK").money(5000) == "50,00 kr."
    assert Words("da", "DKK").money(5000, "EUR") == "50,00 €"  # a named currency wins
    assert Words("da").day(date(2026, 12, 8)) == "8. december 2026"
    assert Words("da").fee("Mahnkosten") == "Rykkergebyr"  # the engine's label, in the page's language
    assert Words("da").fee("Bearbeitungsgebühr") == "Bearbeitungsgebühr"  # a person's label as booked


def test_a_pages_currency_is_its_contracts_one() -> None:
    assert currency_of(["DKK", "DKK"]) == "DKK"
    assert currency_of([]) == "EUR"
    assert currency_of(["DKK", "EUR"]) == "EUR"  # mixed: each amount names its own (overview, pay page)


def test_every_key_a_template_names_is_registered() -> None:
    texts = catalog()
    found = [match for page in TEMPLATES for match in KEY.findall(page.read_text())]
    assert found, "the portal templates name no text keys?"
    keys = {key for key, built in found if not built} | {key for _, key in MENU}
    prefixes = {key for key, built in found if built}
    assert sorted(keys - texts.keys()) == []
    assert sorted(p for p in prefixes if not any(k.startswith(p) for k in texts)) == []
