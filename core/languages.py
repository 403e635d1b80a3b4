"""Which language a customer is written to, when the master data does not say (issue #17).

Pure data and one function: the policy system may send a customer's language (de, en, da); when it
does not, the customer's country decides, and without a country the dunning plan's language (the
Danish plan writes Danish). docs/languages.md has the table and how to add a language.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

Language = Literal["de", "en", "da"]
# The languages every customer-facing message exists in (templates/<language>/, checked by
# tests/test_languages.py): German first, Danish and English (SPEC, DOMAIN.md §10).
SUPPORTED_LANGUAGES: Final[tuple[Language, ...]] = ("de", "en", "da")
DEFAULT_LANGUAGE: Final[Language] = "de"

# ISO 3166-1 alpha-2 → the language a customer living there is written to. Countries not listed
# fall back to English, the common second language; Germany, Austria, Switzerland, Liechtenstein
# and Luxembourg to German; Denmark, Greenland and the Faroe Islands to Danish.
_COUNTRIES: dict[str, Language] = (
    {
        "DE": "de",
        "AT": "de",
        "CH": "de",
        "LI": "de",
        "LU": "de",
        "DK": "da",
        "GL": "da",
        "FO": "da",
        "GB": "en",
        "IE": "en",
        "MT": "en",
    }
)
COUNTRY_LANGUAGE: Final[Mapping[str, Language]] = MappingProxyType(_COUNTRIES)


def default_language(country: str | None, plan_language: str) -> Language:
    """The language for a customer without one: by country if known, else the plan's language."""
    if country:
        return COUNTRY_LANGUAGE.get(country.upper(), "en")
    return next((language for language in SUPPORTED_LANGUAGES if language == plan_language), DEFAULT_LANGUAGE)


# The words the engine itself puts into a message's itemised lines (the ledger stores amounts and
# periods; the words are chosen when the message is written, in the customer's language).
_PREMIUM_WORD: Final[Mapping[str, str]] = MappingProxyType({"de": "Beitrag", "en": "Premium", "da": "Præmie"})
# The dunning fee's ledger label (models/activities.SendMessage.fee_label) and its translations.
FEE_LABEL: Final = "Mahnkosten"
_FEE_WORD: Final[Mapping[str, str]] = MappingProxyType({"de": FEE_LABEL, "en": "Reminder fee", "da": "Rykkergebyr"})


def premium_label(period: str, language: str) -> str:
    """'Beitrag 01.10.2026 – 31.10.2026', 'Præmie 01.10.2026 – 31.10.2026', …"""
    return f"{_PREMIUM_WORD.get(language, _PREMIUM_WORD[DEFAULT_LANGUAGE])} {period}"


def fee_label(label: str, language: str) -> str:
    """A fee's line: the engine's own dunning-fee label in the customer's language; any other label
    (booked by a person or another system) as it was booked."""
    if label != FEE_LABEL:
        return label
    return _FEE_WORD.get(language, FEE_LABEL)
