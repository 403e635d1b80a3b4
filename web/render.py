"""How every HTML page of both apps is rendered: one Jinja2Templates over web/templates with the
formatting filters (eur, when, linkify), the page and customer-page responses (customer pages carry a
secret in the URL: no caching, no referrer, no search engines) and the URLs pages link to."""

from __future__ import annotations

import html
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from core.money import format_eur
from core.timezone import BUSINESS_TIMEZONE, as_utc
from core.tokens import pay_link_url
from infra.config import Settings
from ledger.db import transaction_in_thread
from web.deps import context
from workflows.client import case_workflow_id

BERLIN = ZoneInfo(BUSINESS_TIMEZONE)
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


# Customer pages carry a secret in the URL: no caching, no referrer, no search engines.
CUSTOMER_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}


T = TypeVar("T")


# --- formatting helpers for the templates -------------------------------------------------


URL_PATTERN = re.compile(r"https?://[^\s<>\"']+")
TRAILING_PUNCTUATION = ".,;:!?)"


def linkify(text: str | None) -> Markup:
    """Escape text and turn every http(s) URL in it into a link that opens in a new tab."""
    if not text:
        return Markup("")
    parts: list[str] = []
    last = 0
    for match in URL_PATTERN.finditer(text):
        url = match.group(0).rstrip(TRAILING_PUNCTUATION)
        parts.append(str(escape(text[last : match.start()])))
        parts.append(f'<a href="{escape(url)}" target="_blank" rel="noopener">{escape(url)}</a>')
        last = match.start() + len(url)
    parts.append(str(escape(text[last:])))
    return Markup("".join(parts))


def links_in(*texts: str | None) -> list[str]:
    """Every distinct http(s) URL in the texts (HTML entities decoded), in order of appearance."""
    found: list[str] = []
    for text in texts:
        for match in URL_PATTERN.finditer(html.unescape(text or "")):
            url = match.group(0).rstrip(TRAILING_PUNCTUATION)
            if url not in found:
                found.append(url)
    return found


def format_when(moment: datetime | date | None) -> str:
    if moment is None:
        return "—"
    if isinstance(moment, datetime):
        return as_utc(moment).astimezone(BERLIN).strftime("%Y-%m-%d %H:%M")
    return moment.isoformat()


def amount_input(cents: int) -> str:
    """How an amount is prefilled in the form: German decimal comma, no thousands separator."""
    euros, rest = divmod(cents, 100)
    return f"{euros},{rest:02d}"


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["eur"] = format_eur
templates.env.filters["when"] = format_when
templates.env.filters["linkify"] = linkify


def page(
    request: Request, name: str, status_code: int = 200, headers: dict[str, str] | None = None, **values: Any
) -> Response:
    settings = context(request).settings
    ui = settings.temporal_ui_url.rstrip("/")
    common = {
        "settings": settings,
        "temporal_workflows_url": f"{ui}/namespaces/{quote(settings.temporal_namespace)}/workflows",
    }
    return templates.TemplateResponse(request, name, {**common, **values}, status_code=status_code, headers=headers)


def customer_page(request: Request, name: str, status_code: int = 200, **values: Any) -> Response:
    return page(request, name, status_code, headers=CUSTOMER_HEADERS, **values)


def case_url(settings: Settings, contract_number: str) -> str:
    ui = settings.temporal_ui_url.rstrip("/")
    return f"{ui}/namespaces/{quote(settings.temporal_namespace)}/workflows/{quote(case_workflow_id(contract_number))}"


def pay_url(settings: Settings, token_id: str) -> str:
    return pay_link_url(settings.public_base_url, settings.link_secret, token_id)


in_thread = transaction_in_thread
