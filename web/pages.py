"""HTML pages of the embedded default, and the built-in test payment provider.

Three audiences, three groups of routes:

- **customers** (German): `/pay/{token}` shows what is open on the contract *now* and lets the
  customer pay all or part of it. The page shows a masked contract number and amounts only —
  never a name, address, IBAN or e-mail: whoever holds the link sees nothing personal.
- **TestPay**, the built-in stand-in for Stripe: a checkout page, and a "Pay now" button that
  sends a signed webhook over real HTTP to the engine's own `/webhooks/testpay`, exactly as a real
  provider would. The engine books the payment from the webhook, never from the button.
- **staff** (English): overview, outbox, agent tasks, contract pages. These pages have NO
  authentication yet: they are for the embedded default on a developer machine. Put them behind
  the insurer's single sign-on (or a reverse proxy with auth) before exposing them anywhere.
"""

from __future__ import annotations

import html
import json
import logging
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from core.money import format_eur, parse_amount
from core.references import mask_contract_number
from core.timezone import BUSINESS_TIMEZONE
from core.tokens import PAY_LINK_SALT, pay_link_url, sign, unsign
from infra.config import Settings
from ledger import audit, service
from ledger.audit import touched_contract
from ledger.db import session_scope, transaction_in_thread
from models.ledger import (
    AgentTask,
    Contract,
    Fee,
    Message,
    PayLink,
    Payment,
    Premium,
    PremiumStatus,
    TestPaySession,
)
from web.auth.principal import principal
from web.deps import RowId, berlin_today, context
from web.testpay_signature import HEADER as SIGNATURE_HEADER
from web.testpay_signature import SignatureError, header_value, verify
from workflows.client import case_workflow_id

log = logging.getLogger(__name__)
router = APIRouter()

BERLIN = ZoneInfo(BUSINESS_TIMEZONE)
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
PAYMENT_SOURCE = "testpay"
EVENT_COMPLETED = "checkout.session.completed"
LIST_LIMIT = 200
# app.state attribute tests may set to an httpx transport for the webhook; unset in production,
# where the provider page posts over real HTTP to settings.public_base_url.
WEBHOOK_TRANSPORT_STATE = "testpay_webhook_transport"
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


def as_utc(moment: datetime) -> datetime:
    """The ledger stores UTC; SQLite hands it back without a zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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


# --- customer pay page ------------------------------------------------------------------------


class LinkRejected(Exception):
    """The pay link cannot be used; carries the customer-facing page to show."""

    def __init__(self, status_code: int, title: str, text: str) -> None:
        super().__init__(title)
        self.status_code = status_code
        self.title = title
        self.text = text


INVALID_LINK = LinkRejected(
    404, "Link ungültig", "Dieser Zahlungslink ist nicht gültig. Bitte nutzen Sie den Link aus Ihrer letzten Nachricht."
)


def resolve_link(session: Session, settings: Settings, token: str, *, allow_expired: bool = False) -> PayLink:
    token_id = unsign(settings.link_secret, PAY_LINK_SALT, token)
    if token_id is None:
        raise INVALID_LINK
    link = service.find_pay_link(session, token_id)
    if link is None:
        raise INVALID_LINK
    if not allow_expired and as_utc(link.expires_at) <= datetime.now(UTC):
        raise LinkRejected(
            410,
            "Link abgelaufen",
            "Dieser Zahlungslink ist abgelaufen. Mit Ihrer nächsten Nachricht erhalten Sie einen neuen Link; "
            "Sie können auch per Überweisung mit der Referenz aus Ihrem Schreiben zahlen.",
        )
    return link


@dataclass(frozen=True)
class PayView:
    """Everything the pay page shows — deliberately nothing personal."""

    token: str
    masked_contract: str
    balance_cents: int


def pay_view(session: Session, link: PayLink, token: str) -> PayView:
    contract = session.get(Contract, link.contract_id)
    if contract is None:  # foreign key makes this impossible
        raise INVALID_LINK
    balance = service.arrears(session, contract.contract_number, berlin_today()).balance_cents
    return PayView(token=token, masked_contract=mask_contract_number(contract.contract_number), balance_cents=balance)


def link_rejected_page(request: Request, rejected: LinkRejected) -> Response:
    return customer_page(request, "link_error.html", rejected.status_code, title=rejected.title, text=rejected.text)


def parse_customer_amount(text: str, balance_cents: int) -> int:
    """The amount the customer typed, in cents; ValueError with a German message naming the value."""
    shown = text.strip()[:30]
    raw = text.strip().removesuffix("€").removesuffix("EUR").strip()
    if not raw:
        raise ValueError("Bitte geben Sie im Feld „Betrag“ an, wie viel Sie zahlen möchten.")
    # "1.234,56" (German thousands separator): drop the dots, keep the decimal comma.
    if "," in raw and "." in raw and raw.rfind(",") > raw.rfind("."):
        raw = raw.replace(".", "")
    try:
        if len(raw) > 20:
            raise ValueError(raw)
        cents = parse_amount(raw)
    except (ValueError, ArithmeticError):
        raise ValueError(
            f"Betrag „{shown}“ ist keine gültige Zahl. Bitte in Euro mit höchstens zwei Nachkommastellen "
            "eingeben, zum Beispiel 12,34."
        ) from None
    if cents < 1:
        raise ValueError(f"Betrag „{shown}“ ist zu klein: bitte mindestens 0,01 € eingeben.")
    if cents > balance_cents:
        raise ValueError(f"Betrag „{shown}“ ist höher als der offene Betrag von {format_eur(balance_cents)}.")
    return cents


def pay_page(request: Request, token: str) -> Response:
    ctx = context(request)
    try:
        with session_scope(ctx.engine) as session:
            view = pay_view(session, resolve_link(session, ctx.settings, token), token)
    except LinkRejected as rejected:
        return link_rejected_page(request, rejected)
    return customer_page(request, "pay.html", view=view, amount=amount_input(view.balance_cents), error=None)


def pay_checkout(request: Request, token: str, amount: Annotated[str, Form()] = "") -> Response:
    """Validate the amount and open a checkout at the provider; nothing is written on bad input."""
    ctx = context(request)
    try:
        with session_scope(ctx.engine) as session:
            link = resolve_link(session, ctx.settings, token)
            view = pay_view(session, link, token)
            touch_contract(session, link.contract_id)
            try:
                cents = parse_customer_amount(amount, view.balance_cents)
            except ValueError as error:
                message = str(error) if view.balance_cents else "Es ist nichts mehr offen – es gibt nichts zu bezahlen."
                return customer_page(request, "pay.html", 422, view=view, amount=amount[:30], error=message)
            session_id = "tps_" + secrets.token_hex(12)
            session.add(
                TestPaySession(
                    session_id=session_id,
                    pay_link_token_id=link.token_id,
                    contract_id=link.contract_id,
                    case_id=link.case_id,
                    amount_cents=cents,
                    created_at=datetime.now(UTC),
                )
            )
    except LinkRejected as rejected:
        return link_rejected_page(request, rejected)
    log.info("testpay checkout %s opened for %d cents", session_id, cents)
    return RedirectResponse(f"/testpay/checkout/{session_id}", status_code=303)


@router.get("/pay/{token}/done", response_class=HTMLResponse)
def pay_done(request: Request, token: str, session_id: Annotated[str, Query(alias="session")] = "") -> Response:
    ctx = context(request)
    try:
        with session_scope(ctx.engine) as session:
            # The customer has just paid: show the receipt even if the link ran out meanwhile.
            link = resolve_link(session, ctx.settings, token, allow_expired=True)
            checkout = session.exec(
                select(TestPaySession).where(
                    TestPaySession.session_id == session_id, TestPaySession.pay_link_token_id == link.token_id
                )
            ).first()
            if checkout is None:
                raise LinkRejected(404, "Zahlung nicht gefunden", "Zu diesem Link gibt es keine solche Zahlung.")
            view = pay_view(session, link, token)
    except LinkRejected as rejected:
        return link_rejected_page(request, rejected)
    return customer_page(request, "pay_done.html", view=view, checkout=checkout)


# --- TestPay: the built-in payment provider ---------------------------------------------------


@dataclass(frozen=True)
class CheckoutSnapshot:
    session_id: str
    status: str
    amount_cents: int
    contract_number: str
    case_id: str
    pay_link_token_id: str


def load_checkout(session: Session, session_id: str) -> CheckoutSnapshot | None:
    row = session.exec(select(TestPaySession).where(TestPaySession.session_id == session_id)).first()
    if row is None:
        return None
    contract = session.get(Contract, row.contract_id)
    assert contract is not None
    return CheckoutSnapshot(
        session_id=row.session_id,
        status=row.status,
        amount_cents=row.amount_cents,
        contract_number=contract.contract_number,
        case_id=row.case_id,
        pay_link_token_id=row.pay_link_token_id,
    )


def mark_paid(session: Session, session_id: str) -> tuple[CheckoutSnapshot | None, bool]:
    """Open → paid, atomically (a double click or two tabs pay once). Returns (checkout, newly paid)."""
    result = session.connection().execute(
        update(TestPaySession)
        .where(col(TestPaySession.session_id) == session_id, col(TestPaySession.status) == "open")
        .values(status="paid")
    )
    session.expire_all()
    return load_checkout(session, session_id), result.rowcount == 1


def completed_event(checkout: CheckoutSnapshot, created: int) -> dict[str, object]:
    """The provider's event; its id is fixed per checkout, so a redelivery is recognised."""
    return {
        "id": f"evt_{checkout.session_id}",
        "type": EVENT_COMPLETED,
        "data": {
            "session_id": checkout.session_id,
            "amount_cents": checkout.amount_cents,
            "contract_number": checkout.contract_number,
            "case_id": checkout.case_id,
        },
        "created": created,
    }


async def deliver_webhook(
    settings: Settings, event: dict[str, object], transport: httpx.AsyncBaseTransport | None = None
) -> httpx.Response:
    """POST the signed event to the engine's webhook endpoint (real HTTP unless a transport is given)."""
    body = json.dumps(event, separators=(",", ":")).encode()
    now = int(time.time())
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: header_value(settings.testpay_webhook_secret, body, now),
    }
    url = f"{settings.public_base_url.rstrip('/')}/webhooks/testpay"
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(15.0)) as client:
        return await client.post(url, content=body, headers=headers)


def touch_contract(session: Session, contract_id: int) -> None:
    """The audit trail files this customer action under its contract (web/auth/audit.py)."""
    contract = session.get(Contract, contract_id)
    if contract is not None:
        touched_contract(contract.contract_number)


def unknown_checkout_page(request: Request) -> Response:
    return page(request, "testpay.html", 404, checkout=None, cancel_url=None, error="Unknown checkout session.")


@router.get("/testpay/checkout/{session_id}", response_class=HTMLResponse)
def testpay_checkout(request: Request, session_id: str) -> Response:
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        checkout = load_checkout(session, session_id)
    if checkout is None:
        return unknown_checkout_page(request)
    token = sign(ctx.settings.link_secret, PAY_LINK_SALT, checkout.pay_link_token_id)
    return page(
        request,
        "testpay.html",
        checkout=checkout,
        cancel_url=f"/pay/{token}",
        done_url=f"/pay/{token}/done?session={checkout.session_id}",
        error=None,
        headers=CUSTOMER_HEADERS,
    )


async def testpay_pay(request: Request, session_id: str) -> Response:
    """Capture the payment, then notify the merchant by signed webhook.

    A second click on a paid checkout captures nothing; it delivers the same event again (same
    event id), like a provider's webhook retry, so a notification that failed the first time
    is not lost and one that arrived is recognised as a duplicate.
    """
    ctx = context(request)
    checkout, newly_paid = await in_thread(ctx.engine, lambda s: mark_paid(s, session_id))
    if checkout is None:
        return unknown_checkout_page(request)
    touched_contract(checkout.contract_number)
    token = sign(ctx.settings.link_secret, PAY_LINK_SALT, checkout.pay_link_token_id)
    transport: httpx.AsyncBaseTransport | None = getattr(request.app.state, WEBHOOK_TRANSPORT_STATE, None)
    problem: str | None = None
    try:
        response = await deliver_webhook(ctx.settings, completed_event(checkout, int(time.time())), transport)
        if response.status_code >= 300:
            problem = f"the merchant answered HTTP {response.status_code}"
    except httpx.HTTPError as error:
        problem = f"the merchant could not be reached ({type(error).__name__})"
    if problem is not None:
        log.warning("testpay webhook for %s not delivered: %s", session_id, problem)
        return page(
            request,
            "testpay.html",
            502,
            checkout=checkout,
            cancel_url=f"/pay/{token}",
            done_url=None,
            error=f"Payment captured, but {problem}. Press “Pay now” again to resend the notification.",
            headers=CUSTOMER_HEADERS,
        )
    log.info("testpay checkout %s %s", session_id, "paid" if newly_paid else "already paid; event redelivered")
    return RedirectResponse(f"/pay/{token}/done?session={checkout.session_id}", status_code=303)


# --- the engine's webhook endpoint ------------------------------------------------------------


class BadEvent(ValueError):
    pass


@dataclass(frozen=True)
class CompletedCheckout:
    session_id: str
    amount_cents: int
    contract_number: str


def _text_field(data: dict[str, Any], name: str, prefix: str = "") -> str:
    value = data.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= 200:
        raise BadEvent(f"{prefix}{name} must be a string of 1..200 characters, got {value!r:.60}")
    return value


def parse_completed(event: dict[str, Any]) -> CompletedCheckout:
    data = event.get("data")
    if not isinstance(data, dict):
        raise BadEvent(f"data must be an object, got {data!r:.60}")
    amount = data.get("amount_cents")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise BadEvent(f"data.amount_cents must be a positive integer (cents), got {amount!r:.60}")
    return CompletedCheckout(
        session_id=_text_field(data, "session_id", "data."),
        amount_cents=amount,
        contract_number=_text_field(data, "contract_number", "data."),
    )


def bad_request(detail: str) -> JSONResponse:
    return JSONResponse(status_code=400, content={"detail": detail})


async def testpay_webhook(request: Request) -> JSONResponse:
    """Verified, de-duplicated by event id; the payment is booked once per checkout session."""
    ctx = context(request)
    body = await request.body()
    try:
        verify(ctx.settings.testpay_webhook_secret, body, request.headers.get(SIGNATURE_HEADER), int(time.time()))
    except SignatureError as error:
        log.warning("testpay webhook rejected: %s", error)
        return bad_request(str(error))
    try:
        event = json.loads(body)
        if not isinstance(event, dict):
            raise BadEvent(f"body must be a JSON object, got {type(event).__name__}")
        event_id = _text_field(event, "id")
        event_type = _text_field(event, "type")
    except json.JSONDecodeError:
        return bad_request("body is not valid JSON")
    except BadEvent as error:
        return bad_request(str(error))

    prior = await ctx.inbound.duplicate(PAYMENT_SOURCE, event_id)
    if prior is not None:
        return JSONResponse({**prior, "duplicate": True})
    if event_type != EVENT_COMPLETED:
        ignored: dict[str, object] = {"ignored": True, "type": event_type}
        await ctx.inbound.done(PAYMENT_SOURCE, event_id, ignored)
        return JSONResponse(ignored)
    try:
        completed = parse_completed(event)
    except BadEvent as error:
        return bad_request(str(error))
    payment = await ctx.inbound.payment(
        contract_number=completed.contract_number,
        external_ref=f"testpay:{completed.session_id}",
        amount_cents=completed.amount_cents,
        source=PAYMENT_SOURCE,
    )
    result: dict[str, object] = {
        "payment_ref": payment.payment_ref,
        "booked": payment.booked,
        "balance_cents": payment.balance_cents,
    }
    await ctx.inbound.done(PAYMENT_SOURCE, event_id, result)
    log.info("testpay event %s: payment %s booked=%s", event_id, payment.payment_ref, payment.booked)
    return JSONResponse(result)


# --- staff pages (no authentication yet: embedded default only, see module docstring) ----------


@dataclass(frozen=True)
class ContractRow:
    contract_number: str
    status: str
    open_cents: int


def contracts_overview(session: Session, as_of: date, limit: int = LIST_LIMIT) -> tuple[list[ContractRow], int]:
    """Contracts with their open amount (same rule as `service.arrears`), in two grouped queries."""
    contracts = list(session.exec(select(Contract).order_by(col(Contract.contract_number)).limit(limit)))
    ids = [c.id for c in contracts]
    premiums_open: dict[int, int] = {
        int(contract_id): int(total or 0)
        for contract_id, total in session.exec(
            select(Premium.contract_id, func.sum(col(Premium.amount_cents) - col(Premium.paid_cents)))
            .where(
                col(Premium.contract_id).in_(ids), Premium.status == PremiumStatus.OPEN, col(Premium.due_date) <= as_of
            )
            .group_by(col(Premium.contract_id))
        )
    }
    fees_open: dict[int, int] = {
        int(contract_id): int(total or 0)
        for contract_id, total in session.exec(
            select(Fee.contract_id, func.sum(col(Fee.amount_cents) - col(Fee.paid_cents)))
            .where(
                col(Fee.contract_id).in_(ids),
                col(Fee.written_off).is_(False),
                col(Fee.paid_cents) < col(Fee.amount_cents),
            )
            .group_by(col(Fee.contract_id))
        )
    }
    rows = [
        ContractRow(
            contract_number=c.contract_number,
            status=str(c.status),
            open_cents=premiums_open.get(c.id or 0, 0) + fees_open.get(c.id or 0, 0),
        )
        for c in contracts
    ]
    return rows, service.count_rows(session, Contract)


def staff_not_found(request: Request, what: str) -> Response:
    return page(request, "staff_error.html", 404, title="Not found", text=what)


@router.get("/", response_class=HTMLResponse)
def staff_index(request: Request) -> Response:
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        contracts, total = contracts_overview(session, berlin_today())
    return page(request, "index.html", contracts=contracts, total=total, limit=LIST_LIMIT)


@dataclass(frozen=True)
class MessageRow:
    message: Message
    contract_number: str | None


def _contract_numbers(session: Session, ids: Sequence[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    query = select(Contract.id, Contract.contract_number).where(col(Contract.id).in_(wanted))
    return {int(cid or 0): number for cid, number in session.exec(query)}


@router.get("/outbox", response_class=HTMLResponse)
def outbox(request: Request) -> Response:
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        messages = list(
            session.exec(
                select(Message).order_by(col(Message.created_at).desc(), col(Message.id).desc()).limit(LIST_LIMIT)
            )
        )
        numbers = _contract_numbers(session, [m.contract_id for m in messages])
    rows = [MessageRow(m, numbers.get(m.contract_id) if m.contract_id else None) for m in messages]
    return page(request, "outbox.html", rows=rows, limit=LIST_LIMIT)


@router.get("/outbox/{message_id}", response_class=HTMLResponse)
def outbox_message(request: Request, message_id: RowId) -> Response:
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        message = session.get(Message, message_id)
        numbers = _contract_numbers(session, [message.contract_id] if message else [])
    if message is None:
        return staff_not_found(request, f"message {message_id} is not in the outbox")
    # Links in the sandboxed preview open in a new tab (the sandbox allows only that).
    preview = f'<base target="_blank">{message.body_html}' if message.body_html else ""
    return page(
        request,
        "message.html",
        message=message,
        contract_number=numbers.get(message.contract_id or 0),
        preview=preview,
        links=links_in(message.body_text, message.body_html),
        has_pdf=message.pdf is not None,
    )


@router.get("/outbox/{message_id}/pdf", response_model=None)
def outbox_pdf(request: Request, message_id: RowId) -> Response:
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        message = session.get(Message, message_id)
    if message is None or message.pdf is None:
        return staff_not_found(request, f"message {message_id} has no PDF (only letters have one)")
    return Response(
        content=message.pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="message-{message_id}.pdf"'},
    )


@router.get("/tasks", response_class=HTMLResponse)
def tasks(request: Request) -> Response:
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        query = (
            select(AgentTask, Contract.contract_number)
            .join(Contract, col(Contract.id) == col(AgentTask.contract_id))
            .order_by(col(AgentTask.created_at).desc(), col(AgentTask.id).desc())
            .limit(LIST_LIMIT)
        )
        rows = [(task, number) for task, number in session.exec(query)]
    return page(request, "tasks.html", rows=rows, limit=LIST_LIMIT)


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task_detail(request: Request, task_id: RowId) -> Response:
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        task = session.get(AgentTask, task_id)
        contract = session.get(Contract, task.contract_id) if task else None
        agent = service.get_agent(session, task.agent_code) if task else None
    if task is None or contract is None:
        return staff_not_found(request, f"agent task {task_id} does not exist")
    return page(
        request,
        "task.html",
        task=task,
        contract_number=contract.contract_number,
        agent_name=agent.name if agent else None,
        case_url=case_url(ctx.settings, contract.contract_number),
    )


@dataclass(frozen=True)
class PayLinkView:
    url: str
    step: str
    created_at: datetime
    expires_at: datetime
    expired: bool


def newest_pay_link(session: Session, settings: Settings, contract_id: int) -> PayLinkView | None:
    link = session.exec(
        select(PayLink)
        .where(PayLink.contract_id == contract_id)
        .order_by(col(PayLink.created_at).desc(), col(PayLink.id).desc())
    ).first()
    if link is None:
        return None
    return PayLinkView(
        url=pay_url(settings, link.token_id),
        step=link.step,
        created_at=link.created_at,
        expires_at=link.expires_at,
        expired=as_utc(link.expires_at) <= datetime.now(UTC),
    )


@router.get("/contracts/{contract_number}", response_class=HTMLResponse)
def contract_page(request: Request, contract_number: str, done: str = "") -> Response:
    return render_contract(request, contract_number, done=done[:40])


def render_contract(
    request: Request, contract_number: str, status_code: int = 200, error: str | None = None, done: str = ""
) -> Response:
    """The contract page; case actions (web/case_actions.py) show it again with their error."""
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        try:
            contract = service.get_contract(session, contract_number)
        except service.NotFound:
            return staff_not_found(request, f"contract {contract_number!r} is not in the ledger")
        assert contract.id is not None
        arrears = service.arrears(session, contract_number, berlin_today())
        history = service.status_history(session, contract_number)
        premiums = list(
            session.exec(
                select(Premium)
                .where(Premium.contract_id == contract.id)
                .order_by(col(Premium.due_date).desc(), col(Premium.id))
            )
        )
        payments = list(
            session.exec(
                select(Payment)
                .where(Payment.contract_id == contract.id)
                .order_by(col(Payment.received_at).desc(), col(Payment.id))
            )
        )
        fees = list(session.exec(select(Fee).where(Fee.contract_id == contract.id).order_by(col(Fee.booked_at).desc())))
        messages = list(
            session.exec(
                select(Message)
                .where(Message.contract_id == contract.id)
                .order_by(col(Message.created_at).desc(), col(Message.id).desc())
                .limit(50)
            )
        )
        link = newest_pay_link(session, ctx.settings, contract.id)
        trail = audit.for_contract(session, contract_number)
    return page(
        request,
        "contract.html",
        status_code,
        audit_trail=trail,
        roles=principal(request).roles,
        error=error,
        done=done,
        contract=contract,
        arrears=arrears,
        history=history,
        premiums=premiums,
        payments=payments,
        fees=fees,
        messages=messages,
        pay_link=link,
        case_url=case_url(ctx.settings, contract_number),
    )
