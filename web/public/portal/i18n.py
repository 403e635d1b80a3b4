"""The portal's words in German, English and Danish (issues #14, #17), and how its pages are rendered.

Each portal module registers its own texts with `texts({key: (german, english, danish)})`, so a module
and its words stay together; `t(language, key, **params)` formats one (`str.format` placeholders).
Amounts and dates are formatted with Babel for the page's locale (de_DE, en_GB, da_DK), amounts in
the contract's currency (`Contract.currency`: EUR, DKK on the Danish plan). tests/test_portal_i18n.py
checks every key has all three languages with the same placeholders and every key a template uses
exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.numbers import format_currency
from fastapi import Request
from fastapi.responses import Response

from core.languages import fee_label
from core.timezone import BUSINESS_TIMEZONE
from models.ledger import Customer
from web.render import CUSTOMER_HEADERS, page

# The order of the words in every `texts` entry: (German, English, Danish).
LANGUAGES = ("de", "en", "da")
LOCALES = {"de": "de_DE", "en": "en_GB", "da": "da_DK"}
LANGUAGE_NAMES = {"de": "Deutsch", "en": "English", "da": "Dansk"}
DEFAULT_CURRENCY = "EUR"

Entry = tuple[str, str, str]
_CATALOG: dict[str, Entry] = {}
LANGUAGE_COOKIE = "portal_lang"  # the customer pages' language before a portal session exists

# The portal's menu after step-up: (path, text key). Every portal page passes it as `portal_menu`.
MENU: list[tuple[str, str]] = [
    ("/portal", "portal.menu.overview"),
    ("/portal/pay", "portal.menu.pay"),
    ("/portal/arrangement", "portal.menu.arrangement"),
    ("/portal/dispute", "portal.menu.dispute"),
    ("/portal/proof", "portal.menu.proof"),
    ("/portal/bank", "portal.menu.bank"),
    ("/portal/contact", "portal.menu.contact"),
    ("/portal/messages", "portal.menu.messages"),
]


def texts(entries: dict[str, Entry]) -> None:
    """Register a module's texts: key → (German, English, Danish). A key registered twice must agree."""
    for key, words in entries.items():
        if len(words) != len(LANGUAGES):
            raise ValueError(f"portal text {key!r} needs {len(LANGUAGES)} languages {LANGUAGES}, got {len(words)}")
        if key in _CATALOG and _CATALOG[key] != words:
            raise ValueError(f"portal text {key!r} registered twice with different words")
        _CATALOG[key] = words


def catalog() -> dict[str, Entry]:
    return dict(_CATALOG)


def t(language: str, key: str, **params: Any) -> str:
    words = _CATALOG.get(key)
    if words is None:
        raise KeyError(f"portal text {key!r} is not registered")
    text = words[LANGUAGES.index(language)] if language in LANGUAGES else words[0]
    return text.format(**params) if params else text


def money(language: str, cents: int, currency: str = DEFAULT_CURRENCY) -> str:
    """Exact to the cent (Decimal, never float), in the locale's notation and the contract's currency:
    1.234,56 € / €1,234.56 / 1.234,56 kr."""
    text = format_currency(Decimal(cents) / 100, currency, locale=LOCALES.get(language, "de_DE"))
    return text.replace("\xa0", " ")  # a plain space, as in the letters and e-mails (core.money.format_eur)


# What people type around an amount: the currency, as a sign, code or the Danish "kr.".
CURRENCY_MARKS = ("€", "EUR", "DKK", "kr.", "kr")


def strip_currency(text: str) -> str:
    """'12,50 €', '€12.50', '12,50 kr.', 'DKK 12.50' → the number alone."""
    value = text.strip()
    for mark in CURRENCY_MARKS:
        value = value.removeprefix(mark).strip().removesuffix(mark).strip()
    return value


def day(language: str, value: date | datetime | None) -> str:
    if value is None:
        return "—"
    locale = LOCALES.get(language, "de_DE")
    if isinstance(value, datetime):  # the date as a date, the time to the minute: 17.03.2026, 14:05
        local = value.astimezone(_zone())
        return f"{format_date(local.date(), 'medium', locale=locale)}, {format_time(local, 'short', locale=locale)}"
    return format_date(value, "long", locale=locale)


def _zone() -> ZoneInfo:
    return ZoneInfo(BUSINESS_TIMEZONE)


def currency_of(currencies: Iterable[str]) -> str:
    """The one currency of a page's contracts (EUR when there are none). Several currencies on one
    page: the page names each amount's currency itself, so this is only the default."""
    found = sorted(set(currencies))
    return found[0] if len(found) == 1 else DEFAULT_CURRENCY


class Words:
    """What templates call: `t("key", ...)`, `money(cents)`, `day(d)` — all in the page's language,
    amounts in the page's currency unless one is named (`money(cents, "DKK")`)."""

    def __init__(self, language: str, currency: str = DEFAULT_CURRENCY) -> None:
        self.language = language if language in LANGUAGES else LANGUAGES[0]
        self.currency = currency

    def __call__(self, key: str, **params: Any) -> str:
        return t(self.language, key, **params)

    def money(self, cents: int, currency: str | None = None) -> str:
        return money(self.language, cents, currency or self.currency)

    def day(self, value: date | datetime | None) -> str:
        return day(self.language, value)

    def fee(self, label: str) -> str:
        """A fee's ledger label in the page's language (the engine's own; a person's stays as booked)."""
        return fee_label(label, self.language)


def language_of(request: Request, customer: Customer) -> str:
    """The customer pages' language before step-up: the customer's choice (cookie), else their
    master-data language (German for any other)."""
    chosen = request.cookies.get(LANGUAGE_COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    return customer.language if customer.language in LANGUAGES else LANGUAGES[0]


def browser_language(request: Request) -> str | None:
    """The first of de/en/da the browser's Accept-Language asks for (by q-value, then order), or None.
    'da-DK,da;q=0.9,en;q=0.8' → da; a q of 0 is a refusal; anything malformed is skipped."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(request.headers.get("accept-language", "")[:500].split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else None


def page_language(request: Request, known: str | None = None, *, cookie: bool = True) -> str:
    """The language of a customer page whose reader may be unknown (an invalid or expired pay link, a
    campaign link): the customer's choice (language cookie, when `cookie`), else the language already
    known (the customer's master data, the quote's), else the browser's Accept-Language, else German."""
    chosen = request.cookies.get(LANGUAGE_COOKIE, "") if cookie else ""
    if chosen in LANGUAGES:
        return chosen
    if known in LANGUAGES:
        return str(known)
    return browser_language(request) or LANGUAGES[0]


def portal_page(
    request: Request,
    name: str,
    language: str,
    status_code: int = 200,
    *,
    currency: str = DEFAULT_CURRENCY,
    **values: Any,
) -> Response:
    """A customer page in `language`, amounts in `currency`: no caching, no referrer, no search
    engines (CUSTOMER_HEADERS)."""
    words = Words(language, currency)
    return page(
        request,
        name,
        status_code,
        headers=CUSTOMER_HEADERS,
        t=words,
        lang=words.language,
        languages=LANGUAGE_NAMES,
        **values,
    )


texts(
    {
        "portal.skip": ("Zum Inhalt springen", "Skip to content", "Gå til indholdet"),
        "portal.language": ("Sprache", "Language", "Sprog"),
        "portal.language.switch": ("Wechseln", "Switch", "Skift"),
        "portal.menu": ("Ihr Kundenportal", "Your customer portal", "Din kundeportal"),
        "portal.sign_out": ("Abmelden", "Sign out", "Log ud"),
        "portal.menu.overview": ("Übersicht", "Overview", "Oversigt"),
        "portal.menu.pay": ("Bezahlen", "Pay", "Betal"),
        "portal.menu.arrangement": ("Raten oder Aufschub", "Instalments or deferral", "Afdrag eller henstand"),
        "portal.menu.dispute": ("Forderung bestreiten", "Dispute the claim", "Gør indsigelse"),
        "portal.menu.proof": ("Zahlungsnachweis", "Proof of payment", "Betalingsdokumentation"),
        "portal.menu.bank": ("Bankverbindung", "Bank details", "Bankoplysninger"),
        "portal.menu.contact": ("Kontaktdaten", "Contact details", "Kontaktoplysninger"),
        "portal.menu.messages": ("Nachrichten", "Messages", "Beskeder"),
    }
)
