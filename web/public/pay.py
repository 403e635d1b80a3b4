"""The customer's pay page (public app, German): `/pay/{token}` shows what is open on the contract
*now* and lets the customer pay all or part of it. The page shows a masked contract number and amounts
only — never a name, address, IBAN or e-mail: whoever holds the link sees nothing personal. The stable
link itself (`GET /pay/{token}`, `POST /pay/{token}/checkout`) is routed by web/public/pay_links.py,
which hands it to these pages with the built-in TestPay and to Stripe otherwise."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, select

from core.money import format_eur, parse_amount
from core.references import mask_contract_number
from core.tokens import PAY_LINK_SALT, unsign
from infra.config import Settings
from ledger import service
from ledger.audit import touched_contract
from ledger.db import session_scope
from models.ledger import Contract, PayLink, TestPaySession
from web.deps import berlin_today, context
from web.render import amount_input, as_utc, customer_page

log = logging.getLogger(__name__)
router = APIRouter()


# --- customer pay page ------------------------------------------------------------------------


def touch_contract(session: Session, contract_id: int) -> None:
    """The audit trail files this customer action under its contract (web/auth/audit.py)."""
    contract = session.get(Contract, contract_id)
    if contract is not None:
        touched_contract(contract.contract_number)


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
