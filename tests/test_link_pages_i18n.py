"""The pay link's error pages and notices and the campaign's confirm / unsubscribe pages in the reader's
language (issue #17). A link that names its reader speaks their language (the customer's master data,
the quote's language); an invalid link the language cookie's, else the browser's Accept-Language
(de, en, da), else German."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import select

from core.campaign import CONFIRM_SALT, UNSUBSCRIBE_SALT, expiring_token
from core.tokens import PAY_LINK_SALT, derive_token_id, sign
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from models.campaign import CampaignQuote, ConsentProof
from models.ledger import Customer, PayLink
from tests.helpers import form_post
from tests.portal_support import make_pay_link
from tests.providers_fakes import CONTRACT
from tests.test_bad_input import Web, quote, web_for
from web.public.portal.i18n import LANGUAGE_COOKIE

# Words each language's page must show, and a word of each other language it must not.
INVALID = {"de": "Link ungültig", "en": "Invalid link", "da": "Ugyldigt link"}
INVALID_TEXT = {
    "de": "Dieser Zahlungslink ist nicht gültig",
    "en": "This payment link is not valid",
    "da": "Dette betalingslink er ikke gyldigt",
}
EXPIRED = {"de": "Link abgelaufen", "en": "Link expired", "da": "Linket er udløbet"}
EXPIRED_TEXT = {
    "de": "per Überweisung mit der Referenz",
    "en": "by bank transfer with the reference",
    "da": "via bankoverførsel med referencen",
}
THANKS = {"de": "Vielen Dank", "en": "Thank you", "da": "Mange tak"}
CANCELLED = {"de": "Zahlung abgebrochen", "en": "Payment cancelled", "da": "Betalingen blev afbrudt"}
CONFIRM = {"de": "E-Mail-Adresse bestätigen", "en": "Confirm your e-mail address", "da": "Bekræft din e-mailadresse"}
CONFIRM_BUTTON = {"de": "Jetzt bestätigen", "en": "Confirm now", "da": "Bekræft nu"}
CONFIRMED = {
    "de": "Ihre E-Mail-Adresse ist bestätigt.",
    "en": "Your e-mail address is confirmed.",
    "da": "Din e-mailadresse er bekræftet.",
}
UNSUBSCRIBE = {"de": "Keine E-Mails mehr", "en": "No more e-mails", "da": "Ikke flere e-mails"}
UNSUBSCRIBE_BUTTON = {"de": "Abmelden", "en": "Unsubscribe", "da": "Afmeld"}
UNSUBSCRIBED = {
    "de": "Sie erhalten von uns keine Werbe-E-Mails mehr.",
    "en": "You will receive no more marketing e-mails from us.",
    "da": "Du modtager ikke flere markedsførings-e-mails fra os.",
}
CONFIRM_INVALID = {
    "de": "Dieser Bestätigungslink ist nicht gültig.",
    "en": "This confirmation link is not valid.",
    "da": "Dette bekræftelseslink er ikke gyldigt.",
}
LANGS = ("de", "en", "da")


@pytest_asyncio.fixture
async def web(engine: Engine, settings: Settings) -> AsyncIterator[Web]:
    async for w in web_for(engine, settings.model_copy(update={"rate_limit_campaign": "10000/minute"})):
        yield w


def shown(page: str) -> str:
    """The page's visible text, entities decoded, whitespace collapsed."""
    body = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def only(words: dict[str, str], language: str, page: str) -> None:
    """The page shows `language`'s words, in <html lang>, and no other language's."""
    text = shown(page)
    assert words[language] in text, (language, text)
    assert f'<html lang="{language}"' in page
    for other, word in words.items():
        if other != language and word not in words[language]:
            assert word not in text, (language, other, text)


def set_customer_language(engine: Engine, language: str) -> None:
    with session_scope(engine) as session:
        customer = session.get(Customer, service.get_contract(session, CONTRACT).customer_id)
        assert customer is not None
        customer.language = language
        session.add(customer)


def expire(engine: Engine, token_id: str) -> None:
    with session_scope(engine) as session:
        link = service.find_pay_link(session, token_id)
        assert isinstance(link, PayLink)
        link.expires_at = datetime.now(UTC) - timedelta(minutes=1)
        session.add(link)


@pytest.mark.parametrize(
    ("accept", "language"),
    [
        ("da-DK,da;q=0.9,en;q=0.8", "da"),
        ("en-GB,en;q=0.9", "en"),
        ("de-DE", "de"),
        ("fr-FR,fr;q=0.9,en;q=0.5,da;q=0.7", "da"),  # the best of the three by q-value
        ("sv-SE,da;q=0", "de"),  # q=0 refuses Danish; nothing else of the three: German
        ("", "de"),
    ],
)
async def test_an_invalid_pay_link_speaks_the_browsers_language(web: Web, accept: str, language: str) -> None:
    forged = sign(web.settings.link_secret, PAY_LINK_SALT, "tok-never-issued")
    headers = {"Accept-Language": accept} if accept else {}
    page = await web.http.get(f"/pay/{forged}", headers=headers)
    short = await web.http.get("/p/unknown-token-id", headers=headers)
    assert page.status_code == 404 and short.status_code == 404
    only(INVALID, language, page.text)
    only(INVALID_TEXT, language, short.text)


async def test_the_language_cookie_wins_over_the_browser_on_an_invalid_link(web: Web) -> None:
    forged = sign(web.settings.link_secret, PAY_LINK_SALT, "tok-never-issued")
    page = await web.http.get(f"/pay/{forged}", headers={"Accept-Language": "da", "Cookie": f"{LANGUAGE_COOKIE}=en"})
    assert page.status_code == 404
    only(INVALID, "en", page.text)


@pytest.mark.parametrize("language", LANGS)
async def test_an_expired_pay_link_speaks_its_customers_language(web: Web, language: str) -> None:
    set_customer_language(web.engine, language)
    token, token_id = make_pay_link(web.engine, web.settings, CONTRACT)
    expire(web.engine, token_id)
    # The browser asks for another language: the customer's master data wins, as on the pay page.
    other = "de" if language != "de" else "en"
    page = await web.http.get(f"/pay/{token}", headers={"Accept-Language": other})
    assert page.status_code == 410
    only(EXPIRED, language, page.text)
    only(EXPIRED_TEXT, language, page.text)


@pytest.mark.parametrize("language", LANGS)
async def test_the_stripe_return_pages_speak_the_customers_or_the_browsers_language(web: Web, language: str) -> None:
    set_customer_language(web.engine, language)
    token, _ = make_pay_link(web.engine, web.settings, CONTRACT)
    done = await web.http.get(f"/pay/{token}/stripe/done")  # the link names the customer
    cancelled = await web.http.get(f"/pay/{token}/stripe/cancelled", headers={"Accept-Language": language})
    assert done.status_code == 200 and cancelled.status_code == 200
    only(THANKS, language, done.text)
    only(CANCELLED, language, cancelled.text)


async def opt_in(web: Web, quote_id: str, language: str) -> str:
    body = quote(quote_id, f"{quote_id.lower()}@example.org") | {"language": language}
    response = await web.http.post("/api/campaign/quotes/abandoned", json=body)
    assert response.status_code == 200 and response.json()["language"] == language, response.text
    token_id = derive_token_id(web.settings.link_secret, "confirm", quote_id)
    return f"/campaign/confirm/{sign(web.settings.link_secret, CONFIRM_SALT, token_id)}"


def unsubscribe_link(web: Web, quote_id: str) -> str:
    with session_scope(web.engine) as session:
        person_key = session.exec(select(ConsentProof).where(ConsentProof.quote_id == quote_id)).one().person_key
    token_id = derive_token_id(web.settings.link_secret, "unsubscribe", person_key)
    expires = datetime.now(UTC) + timedelta(days=30)
    return f"/campaign/unsubscribe/{expiring_token(web.settings.link_secret, UNSUBSCRIBE_SALT, token_id, expires)}"


@pytest.mark.parametrize("language", LANGS)
async def test_the_campaign_pages_speak_the_quotes_language(web: Web, language: str) -> None:
    quote_id = f"Q-PAGE-{language.upper()}"
    confirm = await opt_in(web, quote_id, language)
    browser = {"Accept-Language": "de" if language != "de" else "da"}  # the quote's language wins

    form = await web.http.get(confirm, headers=browser)
    assert form.status_code == 200
    only(CONFIRM, language, form.text)
    only(CONFIRM_BUTTON, language, form.text)
    done = await form_post(web.http, confirm, confirm, headers=browser)
    assert done.status_code == 200
    only(CONFIRMED, language, done.text)
    with session_scope(web.engine) as session:
        assert session.exec(select(ConsentProof).where(ConsentProof.quote_id == quote_id)).one().confirmed_at

    unsubscribe = unsubscribe_link(web, quote_id)
    page = await web.http.get(unsubscribe, headers=browser)
    assert page.status_code == 200
    only(UNSUBSCRIBE, language, page.text)
    only(UNSUBSCRIBE_BUTTON, language, page.text)
    gone = await web.http.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}, headers=browser)
    assert gone.status_code == 200
    only(UNSUBSCRIBED, language, gone.text)


@pytest.mark.parametrize("language", LANGS)
async def test_an_invalid_campaign_link_speaks_the_browsers_language(web: Web, language: str) -> None:
    forged = sign(web.settings.link_secret, CONFIRM_SALT, "never-issued")
    page = await web.http.get("/campaign/confirm/not-a-token", headers={"Accept-Language": language})
    unknown = await form_post(web.http, f"/campaign/confirm/{forged}", f"/campaign/confirm/{forged}")
    assert page.status_code == 404
    only(CONFIRM_INVALID, language, page.text)
    # A signed link of no quote: nothing names a language, and this browser asked for none.
    assert unknown.status_code == 404 and CONFIRM_INVALID["de"] in shown(unknown.text)


async def test_a_quote_stored_before_languages_is_german(web: Web) -> None:
    confirm = await opt_in(web, "Q-PAGE-OLD", "en")
    with session_scope(web.engine) as session:  # as migration 0019 left older quotes
        row = session.exec(select(CampaignQuote).where(CampaignQuote.quote_id == "Q-PAGE-OLD")).one()
        row.language = "de"
        session.add(row)
    page = await web.http.get(confirm, headers={"Accept-Language": "en"})
    only(CONFIRM, "de", page.text)
