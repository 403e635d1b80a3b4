"""The portal's words in German and English (issue #14), and how its pages are rendered.

Each portal module registers its own texts with `texts({key: (german, english)})`, so a module and
its words stay together; `t(language, key, **params)` formats one (`str.format` placeholders).
Amounts and dates are formatted with Babel for the page's locale (de_DE, en_GB) — the amounts are
the contract's currency, EUR for now. tests/test_portal_i18n.py checks every key has both languages
and every key a template uses exists.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.numbers import format_currency
from fastapi import Request
from fastapi.responses import Response

from core.timezone import BUSINESS_TIMEZONE
from models.ledger import Customer
from web.render import CUSTOMER_HEADERS, page

LANGUAGES = ("de", "en")
LOCALES = {"de": "de_DE", "en": "en_GB"}
LANGUAGE_NAMES = {"de": "Deutsch", "en": "English"}

_CATALOG: dict[str, tuple[str, str]] = {}
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


def texts(entries: dict[str, tuple[str, str]]) -> None:
    """Register a module's texts: key → (German, English). A key registered twice must agree."""
    for key, pair in entries.items():
        if key in _CATALOG and _CATALOG[key] != pair:
            raise ValueError(f"portal text {key!r} registered twice with different words")
        _CATALOG[key] = pair


def catalog() -> dict[str, tuple[str, str]]:
    return dict(_CATALOG)


def t(language: str, key: str, **params: Any) -> str:
    pair = _CATALOG.get(key)
    if pair is None:
        raise KeyError(f"portal text {key!r} is not registered")
    text = pair[1] if language == "en" else pair[0]
    return text.format(**params) if params else text


def money(language: str, cents: int, currency: str = "EUR") -> str:
    """Exact to the cent (Decimal, never float), in the locale's notation: 1.234,56 € / €1,234.56."""
    text = format_currency(Decimal(cents) / 100, currency, locale=LOCALES.get(language, "de_DE"))
    return text.replace("\xa0", " ")  # a plain space, as in the letters and e-mails (core.money.format_eur)


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


class Words:
    """What templates call: `t("key", ...)`, `money(cents)`, `day(d)` — all in the page's language."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else LANGUAGES[0]

    def __call__(self, key: str, **params: Any) -> str:
        return t(self.language, key, **params)

    def money(self, cents: int, currency: str = "EUR") -> str:
        return money(self.language, cents, currency)

    def day(self, value: date | datetime | None) -> str:
        return day(self.language, value)


def language_of(request: Request, customer: Customer) -> str:
    """The customer pages' language before step-up: the customer's choice (cookie), else their
    master-data language (German for any other)."""
    chosen = request.cookies.get(LANGUAGE_COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    return customer.language if customer.language in LANGUAGES else LANGUAGES[0]


def portal_page(request: Request, name: str, language: str, status_code: int = 200, **values: Any) -> Response:
    """A customer page in `language`: no caching, no referrer, no search engines (CUSTOMER_HEADERS)."""
    words = Words(language)
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
        "portal.skip": ("Zum Inhalt springen", "Skip to content"),
        "portal.language": ("Sprache", "Language"),
        "portal.language.switch": ("Wechseln", "Switch"),
        "portal.menu": ("Ihr Kundenportal", "Your customer portal"),
        "portal.sign_out": ("Abmelden", "Sign out"),
        "portal.menu.overview": ("Übersicht", "Overview"),
        "portal.menu.pay": ("Bezahlen", "Pay"),
        "portal.menu.arrangement": ("Raten oder Aufschub", "Instalments or deferral"),
        "portal.menu.dispute": ("Forderung bestreiten", "Dispute the claim"),
        "portal.menu.proof": ("Zahlungsnachweis", "Proof of payment"),
        "portal.menu.bank": ("Bankverbindung", "Bank details"),
        "portal.menu.contact": ("Kontaktdaten", "Contact details"),
        "portal.menu.messages": ("Nachrichten", "Messages"),
    }
)
