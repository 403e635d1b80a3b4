"""Turn a `MessageContext` into the text, HTML and PDF that actually go out — and the one Jinja
environment every message and document of the engine is rendered with: dunning messages
(`render_message`), campaign mails (activities/campaign.py), the agent's notices
(activities/agency.py) and the court application for review (activities/court.py).

Letters are PDF/A-2b made by Typst from ``templates/<language>/<kind>.letter.typ`` (layout and
building blocks in ``_letter.typ``, fonts bundled in ``channels/fonts``): the message goes in as
JSON data (`letter_data`), never as markup. Their plain-text copy still comes from the Jinja
``<kind>.letter.txt``; they have no HTML (docs/architecture-decisions.md, "Letters as PDF/A-2b").

Templates live in ``templates/<language>/<kind>.<channel>.<part>``. Each language gets its own
environment (`environment`) whose loader falls back to German, so a partly translated language folder
still renders every message (German being the language every template exists in), and shared layout
files (``_email_base.html``, ``_macros.html``) resolve to the same language as the message. Every
template sees the same filters (`money` — alias `eur` — in the message's ``currency``, `datum`,
`uhrzeit`), HTML is autoescaped, and an undefined name is an error, never an empty string.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import segno.helpers
import typst
from babel.dates import format_date, format_time
from babel.numbers import format_currency
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context

from channels.gsm7 import to_gsm7
from models.messages import TEXT_FORM_KINDS, Channel, MessageContext, MessageKind, RenderedMessage

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
# The letters' fonts (DejaVu Sans, Bitstream Vera licence) ship with the repository: Typst uses only
# these, so a letter looks the same on every machine and never depends on what fonts are installed.
FONTS_DIR = Path(__file__).resolve().parent / "fonts"
DEFAULT_LANGUAGE = "de"
# Dunning letters are kept six years: PDF/A-2b is what records management archives.
LETTER_PDF_STANDARD: Final = "a-2b"

# Babel locale and date pattern per template language. A language not listed here formats like
# its bare babel locale with the CLDR "medium" date, which is readable everywhere. English is
# en_IE: European conventions (day before month, 24-hour clock) with "€1,234.56"; the currency
# itself is the contract's (MessageContext.currency), never the locale's (docs/languages.md).
_LOCALES: dict[str, str] = {"de": "de_DE", "da": "da_DK", "en": "en_IE"}
DEFAULT_CURRENCY = "EUR"
_DATE_PATTERNS: dict[str, str] = {"de": "dd.MM.yyyy", "da": "dd.MM.yyyy"}
_TIME_PATTERNS: dict[str, str] = {"de": "HH:mm", "da": "HH.mm"}

# The anchor the legal box (§38 consequences, §38(3) cure) carries: its id in the e-mail HTML, its
# label in the letter, where _letter.typ checks that it is on page 1 (and present where required).
CONSEQUENCES_ANCHOR = "legal-consequences"
_NOT_ON_PAGE_ONE = "legal-consequences not on page 1"
_MISSING = "legal-consequences missing"

_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}$")
_EPC_TEXT_MAX = 140  # EPC069-12 unstructured remittance limit
_EPC_NAME_MAX = 70


class RenderError(ValueError):
    """A message that must not go out as asked: wrong channel, inconsistent or missing data."""


@dataclass(frozen=True)
class _Locale:
    language: str
    babel_locale: str
    date_pattern: str
    time_pattern: str


def _effective_language(language: str) -> str:
    """Reduce "de-AT"/"de_DE" to "de" and fall back to German for anything without a folder.

    The language code comes from customer data; it must never be able to point the loader
    outside the templates directory, hence the strict pattern.
    """
    primary = re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]
    if _LANGUAGE_RE.match(primary) and (TEMPLATES_DIR / primary).is_dir():
        return primary
    return DEFAULT_LANGUAGE


def _locale_for(language: str) -> _Locale:
    return _Locale(
        language=language,
        babel_locale=_LOCALES.get(language, language),
        date_pattern=_DATE_PATTERNS.get(language, "medium"),
        time_pattern=_TIME_PATTERNS.get(language, "short"),
    )


def format_money(cents: int, currency: str = DEFAULT_CURRENCY, locale: str = "de_DE") -> str:
    """Format integer cents (hundredths: øre for DKK) in `currency` as `locale` writes it
    ("1.234,56 €", "1.234,56 kr.", "€1,234.56"); through Decimal, so no float ever touches an amount."""
    if not isinstance(cents, int) or isinstance(cents, bool):
        raise TypeError(f"amount must be integer cents, got {type(cents).__name__}")
    return format_currency(Decimal(cents) / 100, currency, locale=locale)


def format_eur(cents: int, locale: str = "de_DE") -> str:
    """Integer cents as euros (`format_money` in EUR)."""
    return format_money(cents, DEFAULT_CURRENCY, locale)


def format_datum(value: date, locale: str = "de_DE", pattern: str = "dd.MM.yyyy") -> str:
    """Format a date; refuses None so a missing deadline fails loudly instead of printing "None"."""
    if not isinstance(value, date):
        raise TypeError(f"expected a date, got {type(value).__name__}")
    return format_date(value, format=pattern, locale=locale)


def format_uhrzeit(value: datetime, locale: str = "de_DE", pattern: str = "HH:mm") -> str:
    """Format the wall-clock time of a datetime already in the customer's zone (see `_local`)."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    return format_time(value, format=pattern, locale=locale)


@lru_cache(maxsize=16)
def _environment(language: str) -> Environment:
    """One environment per language, cached: compiling templates dominates small renders."""
    search = [TEMPLATES_DIR / language]
    if language != DEFAULT_LANGUAGE:
        search.append(TEMPLATES_DIR / DEFAULT_LANGUAGE)
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(path)) for path in search]),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    loc = _locale_for(language)

    @pass_context
    def money(context: Context, cents: int) -> str:
        # The currency is the message's (a DKK contract's amounts in DKK), the notation the language's.
        return format_money(cents, context.get("currency", DEFAULT_CURRENCY), loc.babel_locale)

    env.filters["money"] = money
    env.filters["eur"] = money  # the older name, kept for templates written before currencies
    env.filters["datum"] = lambda value: format_datum(value, loc.babel_locale, loc.date_pattern)
    env.filters["uhrzeit"] = lambda value: format_uhrzeit(value, loc.babel_locale, loc.time_pattern)
    return env


def environment(language: str = DEFAULT_LANGUAGE) -> Environment:
    """The engine's Jinja environment for `language` (German when there is no such folder)."""
    return _environment(_effective_language(language))


def render_template(name: str, values: Mapping[str, Any], language: str = DEFAULT_LANGUAGE) -> str:
    """One template of `templates/<language>/` rendered with `values`, surrounding blanks stripped."""
    return environment(language).get_template(name).render(values).strip()


def html_to_pdf(html: str) -> bytes:
    """A PDF from self-contained HTML (data: URIs only) by WeasyPrint: the court application for
    review (a few a day; letters are Typst, see `render_message`)."""
    return _html_to_pdf(html)[0]


def _template_exists(env: Environment, name: str) -> bool:
    try:
        env.get_template(name)
    except TemplateNotFound:
        return False
    return True


def supported_channels(kind: MessageKind, language: str = DEFAULT_LANGUAGE) -> set[Channel]:
    """Channels a kind has templates for, so callers can pick a fallback before rendering."""
    language = _effective_language(language)
    env = _environment(language)
    channels = {channel for channel in (Channel.EMAIL, Channel.SMS) if _template_exists(env, f"{kind}.{channel}.txt")}
    if _letter_template(language, kind.value) is not None:
        channels.add(Channel.LETTER)
    return channels


def _local(context: MessageContext, moment: datetime) -> datetime:
    """A moment in the customer's zone; a naive one is refused, as nobody could say which hour it means."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise RenderError(f"paid_at must carry a time zone offset, got {moment.isoformat()}")
    try:
        zone = ZoneInfo(context.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RenderError(f"timezone must be an IANA zone like Europe/Berlin, got {context.timezone!r}") from exc
    return moment.astimezone(zone)


def _check_confirmation(context: MessageContext) -> None:
    """A confirmation states what happened to the contract; refuse one whose data says otherwise.

    Cover is back from the moment of payment (§38(2) VVG), so the messages that say so need that
    moment; a termination is void only if the payment came within the month (§38(3) VVG).
    """
    kind = context.kind
    if kind in (MessageKind.REACTIVATION, MessageKind.TERMINATION_VOID) and context.paid_at is None:
        raise RenderError(f"a {kind.value} confirmation needs paid_at: cover is restored from that moment")
    if kind in (MessageKind.TERMINATION_VOID, MessageKind.PAID_AFTER_TERMINATION) and context.terminated_on is None:
        raise RenderError(f"a {kind.value} confirmation needs terminated_on, the day the termination took effect")
    if context.paid_at is None or context.cure_until is None:
        return
    paid_on = _local(context, context.paid_at).date()
    if kind is MessageKind.TERMINATION_VOID and paid_on > context.cure_until:
        raise RenderError(
            f"paid on {paid_on}, after the cure month ended on {context.cure_until}: "
            "the termination stands (paid_after_termination)"
        )
    if kind is MessageKind.PAID_AFTER_TERMINATION and paid_on <= context.cure_until:
        raise RenderError(
            f"paid on {paid_on}, within the cure month ending {context.cure_until}: "
            "the termination is void (termination_void)"
        )


def _check_termination_letter(context: MessageContext) -> None:
    """A §38(3) termination must state the amount, its effective date and the cure month (DOMAIN §2)."""
    if not context.items:
        raise RenderError("a termination letter needs itemised arrears")
    if context.total_cents <= 0:
        raise RenderError(f"a termination letter needs an open total > 0, got {context.total_cents} cents")
    if context.terminated_on is None:
        raise RenderError("a termination letter needs terminated_on, the day the termination takes effect")
    if context.cure_until is None:
        raise RenderError("a termination letter needs cure_until, the last day on which paying voids it")
    if context.cure_until < context.terminated_on:
        raise RenderError(f"cure_until {context.cure_until} must not lie before terminated_on {context.terminated_on}")
    if not context.pay_url:
        raise RenderError("a termination letter needs a pay_url")
    if context.legal_basis != "vvg38":
        raise RenderError(
            f"a termination letter follows §38(3) VVG (legal_basis vvg38), got legal_basis {context.legal_basis!r}"
        )


def _check_context(context: MessageContext) -> None:
    """Refuse contexts that would put a wrong or void statement in front of a customer.

    A notice whose total differs from its lines by a cent is legally void (DOMAIN §1), and a
    §38 notice without deadline or itemisation has no legal effect (DOMAIN §2).
    """
    if context.items:
        item_sum = sum(item.amount_cents for item in context.items)
        if item_sum != context.total_cents:
            raise RenderError(f"total_cents {context.total_cents} does not equal the sum of items {item_sum}")
    if context.kind is MessageKind.QUALIFIED_NOTICE:
        if context.deadline is None:
            raise RenderError("a qualified notice needs a deadline")
        if not context.items:
            raise RenderError("a qualified notice needs itemised arrears")
        if context.deadline < context.letter_date:  # demo plans: same day (minutes), never before
            raise RenderError(
                f"the deadline {context.deadline} must not lie before the letter date {context.letter_date}"
            )
    if context.kind is MessageKind.TERMINATION_LETTER:
        _check_termination_letter(context)
    if context.paid_at is not None:
        _local(context, context.paid_at)
    _check_confirmation(context)
    if context.kind is MessageKind.PAY_LINK_SMS and not context.pay_url:
        raise RenderError("a pay-link SMS needs a pay_url")
    agent_mails = (MessageKind.AGENT_HANDOVER, MessageKind.AGENT_PORTAL_REQUEST, MessageKind.AGENT_REQUEST_OVERDUE)
    if context.kind in agent_mails and not context.task_url:
        raise RenderError(f"an agent mail ({context.kind}) needs a task_url")


_CONTRACT_WORD: dict[str, str] = {"de": "Vertrag", "en": "Contract", "da": "Police"}


def _remittance_text(context: MessageContext) -> str:
    """Free-text purpose for transfers when there is no RF reference: the contract number."""
    word = _CONTRACT_WORD.get(_effective_language(context.language), _CONTRACT_WORD[DEFAULT_LANGUAGE])
    return f"{word} {context.contract_number}"[:_EPC_TEXT_MAX]


def epc_fields(context: MessageContext) -> dict[str, Any] | None:
    """Arguments for the EPC QR ("GiroCode"), or None when there is nothing to pay.

    Uses the RF creditor reference when the case has one (banks then report it back structured
    and matching is exact, DOMAIN §6), otherwise the contract number as free text; never both,
    as EPC069-12 forbids it. Only for euros: the EPC QR is a SEPA credit transfer, so a DKK message
    has none (its bank details are printed as text).
    """
    if context.total_cents <= 0 or context.currency != "EUR":
        return None
    creditor = context.creditor
    reference = context.payment_reference.replace(" ", "") or None
    return {
        "name": creditor.name[:_EPC_NAME_MAX],
        "iban": creditor.iban.replace(" ", ""),
        "amount": Decimal(context.total_cents) / 100,
        "text": None if reference else _remittance_text(context),
        "reference": reference,
        "bic": creditor.bic.strip() or None,
    }


def girocode_data_uri(context: MessageContext) -> str:
    """The GiroCode as an SVG data URI for an <img>, or "" when there is nothing to pay.

    SVG keeps the code sharp at any print resolution and costs no raster encoding time.
    """
    fields = epc_fields(context)
    if fields is None:
        return ""
    qr = segno.helpers.make_epc_qr(**fields)
    uri: str = qr.svg_data_uri(scale=4, border=0)
    return uri


def girocode_svg(context: MessageContext) -> str:
    """The GiroCode as SVG text for a letter (Typst draws it as vectors), or "" when there is nothing to pay."""
    fields = epc_fields(context)
    if fields is None:
        return ""
    svg: str = segno.helpers.make_epc_qr(**fields).svg_inline(scale=4, border=0)
    return svg


def _template_vars(context: MessageContext, channel: Channel, language: str) -> dict[str, Any]:
    """Everything a template may use: the context fields plus values derived once here.

    ``channel`` lets the shared body partials say "dieses Schreiben" or "diese E-Mail".
    """
    values: dict[str, Any] = dict(context)  # shallow: creditor and items stay models
    values["channel"] = channel.value
    values["language"] = language
    values["remittance"] = context.payment_reference or _remittance_text(context)
    values["consequences_before_items"] = False
    values["girocode"] = ""
    values["paid_at_local"] = _local(context, context.paid_at) if context.paid_at is not None else None
    return values


_BLANK_RUNS = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)


def _render(env: Environment, names: list[str], values: dict[str, Any]) -> str:
    return env.select_template(names).render(values).strip()


def _tidy_text(text: str) -> str:
    """Collapse the blank-line runs that nested template blocks leave behind in plain text."""
    return _BLANK_RUNS.sub("\n\n", _TRAILING_SPACE.sub("", text))


def _html_to_pdf(html: str) -> tuple[bytes, set[str]]:
    """Render HTML to PDF without any network or file access, and report page-1 anchors.

    The fetcher allows only data: URIs and aborts on anything else, so a template that starts
    pulling a remote logo or font fails in tests instead of slowing down every document.
    """
    import weasyprint  # heavy; only the court application pays for it

    fetcher = weasyprint.URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)
    document = weasyprint.HTML(string=html, base_url=str(TEMPLATES_DIR), url_fetcher=fetcher).render()
    first_page_anchors = set(document.pages[0].anchors) if document.pages else set()
    pdf: bytes = document.write_pdf()
    return pdf, first_page_anchors


def _letter_template(language: str, kind: str) -> Path | None:
    """``<language>/<kind>.letter.typ``, else the German one (like the Jinja loader), else None."""
    for folder in dict.fromkeys((language, DEFAULT_LANGUAGE)):
        path = TEMPLATES_DIR / folder / f"{kind}.letter.typ"
        if path.is_file():
            return path
    return None


def _json_value(value: Any, loc: _Locale, currency: str) -> Any:
    """One template value as JSON for Typst: dates formatted for the language, moments as date and time."""
    if isinstance(value, datetime):
        return {
            "date": format_datum(value, loc.babel_locale, loc.date_pattern),
            "time": format_uhrzeit(value, loc.babel_locale, loc.time_pattern),
        }
    if isinstance(value, date):
        return format_datum(value, loc.babel_locale, loc.date_pattern)
    if isinstance(value, Mapping) or hasattr(value, "model_fields"):
        pairs = dict(value).items()
        out: dict[str, Any] = {}
        for key, item in pairs:
            out[key] = _json_value(item, loc, currency)
            if key.endswith("_cents") and isinstance(item, int) and not isinstance(item, bool):
                out[key.removesuffix("_cents")] = format_money(item, currency, loc.babel_locale)
        return out
    if isinstance(value, list | tuple):
        return [_json_value(item, loc, currency) for item in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    raise TypeError(f"cannot pass a {type(value).__name__} to a letter template")


def letter_data(values: Mapping[str, Any], language: str) -> dict[str, Any]:
    """What a letter template reads (`letter-data()` in _letter.typ): the template values as JSON.

    Every field keeps its name; dates come formatted ("08.12.2026"), a moment as its local date and
    time, and each ``x_cents`` amount also as ``x``, formatted in the message's currency ("243,00 €",
    "243,00 kr."), also inside items and the creditor. Money stays integer cents up to the formatting
    (`format_money`).
    """
    # paid_at is UTC; the letter prints paid_at_local (the customer's zone) and must not pick the wrong one.
    currency = str(values.get("currency", DEFAULT_CURRENCY))
    fields = {k: v for k, v in values.items() if k != "paid_at"}
    data: dict[str, Any] = _json_value(fields, _locale_for(language), currency)
    return data


_compilers = threading.local()


@lru_cache(maxsize=1)
def _fonts() -> typst.Fonts:
    """The bundled fonts (and Typst's own), read once per process; no system font is ever used."""
    return typst.Fonts(include_system_fonts=False, font_paths=[str(FONTS_DIR)])


def _compiler() -> typst.Compiler:
    """One Typst compiler per thread (the worker runs activities in threads, and a compiler must not
    be used by two at once): it keeps parsed templates and layout caches between letters."""
    compiler: typst.Compiler | None = getattr(_compilers, "compiler", None)
    if compiler is None:
        compiler = typst.Compiler(root=str(TEMPLATES_DIR), font_paths=_fonts())
        _compilers.compiler = compiler
    return compiler


def _typst_pdf(template: Path, data: Mapping[str, Any], letter_date: date) -> bytes | None:
    """The letter as PDF/A-2b, or None when its legal box did not fit on page 1.

    The creation date is the letter date, so rendering the same letter twice gives the same bytes
    (activities are retried).
    """
    try:
        pdf = _compiler().compile(
            input=str(template),
            format="pdf",
            sys_inputs={"data": json.dumps(data, ensure_ascii=False)},
            pdf_standards=LETTER_PDF_STANDARD,
            timestamp=datetime.combine(letter_date, time(0), UTC),
        )
    except typst.TypstError as exc:
        if _NOT_ON_PAGE_ONE in exc.message:
            return None
        if "could not be displayed with font" in exc.message:
            # PDF/A must embed every glyph it shows: no silent empty boxes in a customer's name.
            raise RenderError(
                f"the letter cannot be printed: {exc.message.removeprefix('PDF/A-2b error: ')} "
                f"(fonts in {FONTS_DIR.name}/: add one that has it, or correct the data)"
            ) from exc
        raise RenderError(f"the letter template {template.name} failed: {exc.message}") from exc
    if not isinstance(pdf, bytes):
        raise RenderError(f"the letter template {template.name} gave no PDF")
    return pdf


def _render_letter(context: MessageContext, env: Environment, values: dict[str, Any], language: str) -> RenderedMessage:
    """Text copy (Jinja) and PDF/A (Typst) of a letter, with the page-1 rule for the legal box."""
    kind = context.kind.value
    template = _letter_template(language, kind)
    if template is None:
        raise RenderError(f"no letter template for {kind}: {kind}.letter.typ")
    try:
        text = _tidy_text(_render(env, [f"{kind}.letter.txt"], values))
    except TemplateNotFound as exc:
        raise RenderError(f"no letter template for {kind}: {exc.name}") from exc
    values["girocode"] = girocode_svg(context)
    values["legal_box_required"] = context.kind in TEXT_FORM_KINDS
    pdf = _typst_pdf(template, letter_data(values, language), context.letter_date)
    if pdf is None:
        # A long list of arrears pushed the legal box off page 1, where the law wants it seen
        # (DOMAIN §2). Move the box above the table and check again.
        values["consequences_before_items"] = True
        text = _tidy_text(_render(env, [f"{kind}.letter.txt"], values))
        pdf = _typst_pdf(template, letter_data(values, language), context.letter_date)
        if pdf is None:
            raise RenderError(f"the legal box of the {kind} does not fit on the first page")
    return RenderedMessage(subject=values["subject"], text=text, pdf=pdf)


def render_message(channel: Channel, context: MessageContext) -> RenderedMessage:
    """Render one message; raises `RenderError` if the kind has no template for the channel."""
    _check_context(context)
    language = _effective_language(context.language)
    env = _environment(language)
    kind = context.kind.value
    prefix = f"{kind}.{channel.value}"
    values = _template_vars(context, channel, language)

    if channel is Channel.SMS:
        if context.kind in TEXT_FORM_KINDS:
            # Not text form (§126b BGB): an SMS can only nudge, never carry the declaration itself.
            raise RenderError(f"a {kind} must go out as letter or e-mail, never as SMS")
        try:
            text = _render(env, [f"{prefix}.txt"], values)
        except TemplateNotFound as exc:
            raise RenderError(f"no SMS template for {kind}") from exc
        # Newlines inside an SMS are legal GSM-7 but waste septets and render oddly on phones.
        return RenderedMessage(text=to_gsm7(" ".join(text.split())))

    try:
        subject = _render(env, [f"{prefix}.subject.txt", f"{kind}.email.subject.txt"], values)
        values["subject"] = " ".join(subject.split())
        if channel is Channel.EMAIL:
            return RenderedMessage(
                subject=values["subject"],
                text=_tidy_text(_render(env, [f"{prefix}.txt"], values)),
                html=_render(env, [f"{prefix}.html"], values),
            )
    except TemplateNotFound as exc:
        raise RenderError(f"no {channel.value} template for {kind}: {exc.name}") from exc
    return _render_letter(context, env, values, language)
