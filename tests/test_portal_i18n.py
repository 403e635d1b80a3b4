"""Every portal text in both languages (issue #14): each registered key has German and English words
with the same placeholders, and every key a portal template names is registered."""

from __future__ import annotations

import re
import string
from pathlib import Path

import web.public.pay  # noqa: F401  (registers the pay pages' texts)
import web.public.portal.routes  # noqa: F401  (registers every portal module's texts)
from web.public.portal.i18n import MENU, catalog

WEB = Path(__file__).resolve().parent.parent / "web" / "templates"
TEMPLATES = [*(WEB / "portal").glob("*.html"), WEB / "pay.html", WEB / "pay_done.html"]
# t("key") — or t("prefix." ~ value), a key built from a literal prefix (then "~" follows).
KEY = re.compile(r"""\bt\(\s*["']([a-z0-9_.]+)["']\s*(~)?""")


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_text_has_german_and_english_words_with_the_same_placeholders() -> None:
    texts = catalog()
    assert len(texts) > 100
    problems = [
        key
        for key, (german, english) in texts.items()
        if not german.strip() or not english.strip() or placeholders(german) != placeholders(english)
    ]
    assert problems == []


def test_every_key_a_template_names_is_registered() -> None:
    texts = catalog()
    found = [match for page in TEMPLATES for match in KEY.findall(page.read_text())]
    assert found, "the portal templates name no text keys?"
    keys = {key for key, built in found if not built} | {key for _, key in MENU}
    prefixes = {key for key, built in found if built}
    assert sorted(keys - texts.keys()) == []
    assert sorted(p for p in prefixes if not any(k.startswith(p) for k in texts)) == []
