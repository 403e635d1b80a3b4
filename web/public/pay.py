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

from core.money import parse_amount
from core.references import mask_contract_number
from core.tokens import PAY_LINK_SALT, unsign
from infra.config import Settings
from ledger import portal_payments, service
from ledger.audit import touched_contract
from ledger.db import session_scope
from ledger.portal import customer_of_link
from models.ledger import Contract, PayLink, TestPaySession
from web.deps import berlin_today, context
from web.public.portal.i18n import language_of, money, page_language, portal_page, strip_currency, t, texts
from web.public.portal.outcomes import Checkout, answered_outcomes
from web.render import amount_input, as_utc

log = logging.getLogger(__name__)
router = APIRouter()


# --- customer pay page ------------------------------------------------------------------------


def touch_contract(session: Session, contract_id: int) -> None:
    """The audit trail files this customer action under its contract (web/auth/audit.py)."""
    contract = session.get(Contract, contract_id)
    if contract is not None:
        touched_contract(contract.contract_number)


class LinkRejected(Exception):
    """The pay link cannot be used; carries the customer-facing page to show: its texts `<key>.title`
    and `<key>.text` (registered below in three languages) and, when the link was found, its
    customer's master-data language (issue #17)."""

    def __init__(self, status_code: int, key: str, language: str | None = None) -> None:
        super().__init__(key)
        self.status_code = status_code
        self.key = key
        self.language = language


INVALID_LINK = LinkRejected(404, "link.invalid")


def resolve_link(session: Session, settings: Settings, token: str, *, allow_expired: bool = False) -> PayLink:
    token_id = unsign(settings.link_secret, PAY_LINK_SALT, token)
    if token_id is None:
        raise INVALID_LINK
    link = service.find_pay_link(session, token_id)
    if link is None:
        raise INVALID_LINK
    if not allow_expired and as_utc(link.expires_at) <= datetime.now(UTC):
        raise LinkRejected(410, "link.expired", customer_of_link(session, link).language)
    return link


@dataclass(frozen=True)
class PayView:
    """Everything the pay page shows — deliberately nothing personal."""

    token: str
    masked_contract: str
    balance_cents: int
    language: str  # the customer's (or their choice on a customer page): de | en | da
    currency: str = "EUR"  # the contract's (issue #17: DKK on the Danish plan)


def pay_view(request: Request, session: Session, link: PayLink, token: str) -> PayView:
    contract = session.get(Contract, link.contract_id)
    if contract is None:  # foreign key makes this impossible
        raise INVALID_LINK
    balance = service.arrears(session, contract.contract_number, berlin_today()).balance_cents
    language = language_of(request, customer_of_link(session, link))
    masked = mask_contract_number(contract.contract_number)
    return PayView(
        token=token, masked_contract=masked, balance_cents=balance, language=language, currency=contract.currency
    )


def link_message(request: Request, status_code: int, key: str, language: str | None = None) -> Response:
    """The pay link's one-card pages (errors and notices): texts `<key>.title` and `<key>.text` in the
    customer's language when the link told who it is, else the page's or the browser's (page_language)."""
    chosen = page_language(request, language)
    return portal_page(
        request, "link_error.html", chosen, status_code, title=t(chosen, f"{key}.title"), text=t(chosen, f"{key}.text")
    )


def link_rejected_page(request: Request, rejected: LinkRejected) -> Response:
    return link_message(request, rejected.status_code, rejected.key, rejected.language)


def parse_customer_amount(text: str, balance_cents: int, language: str = "de", currency: str = "EUR") -> int:
    """The amount the customer typed, in cents; ValueError with a message naming the value. Both the
    German/Danish (1.234,56) and the English notation (1,234.56) are read."""
    shown = text.strip()[:30]
    raw = strip_currency(text)
    if not raw:
        raise ValueError(t(language, "pay.error.empty"))
    if "," in raw and "." in raw:  # the last separator is the decimal one; the other groups thousands
        raw = raw.replace(".", "") if raw.rfind(",") > raw.rfind(".") else raw.replace(",", "")
    try:
        if len(raw) > 20:
            raise ValueError(raw)
        cents = parse_amount(raw)
    except (ValueError, ArithmeticError):
        raise ValueError(t(language, "pay.error.number", value=shown)) from None
    if cents < 1:
        raise ValueError(t(language, "pay.error.small", value=shown, minimum=money(language, 1, currency)))
    if cents > balance_cents:
        raise ValueError(t(language, "pay.error.large", value=shown, open=money(language, balance_cents, currency)))
    return cents


def pay_page(request: Request, token: str) -> Response:
    ctx = context(request)
    try:
        with session_scope(ctx.engine) as session:
            view = pay_view(request, session, resolve_link(session, ctx.settings, token), token)
    except LinkRejected as rejected:
        return link_rejected_page(request, rejected)
    return portal_page(
        request,
        "pay.html",
        view.language,
        currency=view.currency,
        view=view,
        amount=amount_input(view.balance_cents),
        error=None,
    )


def pay_checkout(request: Request, token: str, amount: Annotated[str, Form()] = "") -> Response:
    """Validate the amount and open a checkout at the provider; nothing is written on bad input."""
    ctx = context(request)
    try:
        with session_scope(ctx.engine) as session:
            link = resolve_link(session, ctx.settings, token)
            view = pay_view(request, session, link, token)
            touch_contract(session, link.contract_id)
            try:
                cents = parse_customer_amount(amount, view.balance_cents, view.language, view.currency)
            except ValueError as error:
                message = str(error) if view.balance_cents else t(view.language, "pay.error.nothing_open")
                return portal_page(
                    request,
                    "pay.html",
                    view.language,
                    422,
                    currency=view.currency,
                    view=view,
                    amount=amount[:30],
                    error=message,
                )
            session_id = "tps_" + secrets.token_hex(12)
            contract = session.get(Contract, link.contract_id)
            assert contract is not None  # pay_view found it
            # The contract as it stands now: afterwards the done page tells whether this payment restored cover.
            share = portal_payments.share_now(session, contract.contract_number, link.case_id, cents)
            session.add(
                TestPaySession(
                    session_id=session_id,
                    pay_link_token_id=link.token_id,
                    contract_id=link.contract_id,
                    case_id=link.case_id,
                    amount_cents=cents,
                    created_at=datetime.now(UTC),
                    allocation=[share.to_json()],
                )
            )
    except LinkRejected as rejected:
        return link_rejected_page(request, rejected)
    log.info("testpay checkout %s opened for %d cents", session_id, cents)
    return RedirectResponse(f"/testpay/checkout/{session_id}", status_code=303)


@router.get("/pay/{token}/done", response_class=HTMLResponse)
async def pay_done(request: Request, token: str, session_id: Annotated[str, Query(alias="session")] = "") -> Response:
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
                raise LinkRejected(404, "link.no_payment", customer_of_link(session, link).language)
            shares = [portal_payments.Share.from_json(s) for s in checkout.allocation or []]
            paid = checkout.status == "paid"
    except LinkRejected as rejected:
        return link_rejected_page(request, rejected)
    # What this payment did (cover restored, still suspended, …): the case's answer is awaited while it
    # restores cover, then the page reads the ledger. Sessions from before 2026-12 carry no share.
    outcome = None
    if shares:
        [outcome] = await answered_outcomes(ctx, Checkout(paid, f"testpay:{session_id}", shares[:1]))
    with session_scope(ctx.engine) as session:
        view = pay_view(request, session, link, token)
    return portal_page(
        request, "pay_done.html", view.language, currency=view.currency, view=view, checkout=checkout, outcome=outcome
    )


texts(
    {
        "pay.title": ("Beitrag bezahlen", "Pay your premium", "Betal din præmie"),
        "pay.contract": ("Vertrag", "Contract", "Police"),
        "pay.open": ("Offener Betrag", "Amount open", "Skyldigt beløb"),
        "pay.amount": ("Betrag ({currency})", "Amount ({currency})", "Beløb ({currency})"),
        "pay.amount.hint": (
            "Sie können den ganzen offenen Betrag oder einen Teil davon zahlen, zum Beispiel 50,00.",
            "You can pay all of the open amount or part of it, for example 50.00.",
            "Du kan betale hele det skyldige beløb eller en del af det, for eksempel 50,00.",
        ),
        "pay.continue": ("Weiter zur Zahlung", "Continue to payment", "Videre til betaling"),
        "pay.nothing_open": ("Nichts offen – vielen Dank", "Nothing open – thank you", "Intet udestående – tak"),
        "pay.nothing_open.text": (
            "Auf diesem Vertrag ist derzeit kein Betrag offen.",
            "Nothing is open on this contract at the moment.",
            "Der er ikke noget skyldigt beløb på denne police lige nu.",
        ),
        "pay.more": ("Mehr zu Ihrem Vertrag", "More about your contract", "Mere om din police"),
        "pay.more.text": (
            "Offene Posten im Einzelnen, Ihre Schreiben als PDF, Ratenzahlung oder Aufschub, Ihr Ansprechpartner: "
            "nach einer kurzen Bestätigung, dass Sie es sind.",
            "Open items in detail, your letters as PDF, instalments or a deferral, your contact person: after a "
            "short check that it is you.",
            "De enkelte skyldige poster, dine breve som PDF, afdrag eller henstand, din kontaktperson: efter en kort "
            "bekræftelse af, at det er dig.",
        ),
        "pay.more.link": (
            "Details, Dokumente und Möglichkeiten",
            "Details, documents and options",
            "Detaljer, dokumenter og muligheder",
        ),
        "pay.secure": (
            "Sichere Zahlung über unseren Zahlungsdienstleister. Dieser Link ist persönlich und nur begrenzt gültig.",
            "Secure payment through our payment provider. This link is personal and valid for a limited time.",
            "Sikker betaling via vores betalingsudbyder. Linket er personligt og kun gyldigt i en begrænset periode.",
        ),
        "pay.error.empty": (
            "Bitte geben Sie im Feld „Betrag“ an, wie viel Sie zahlen möchten.",
            "Please enter in the field “Amount” how much you want to pay.",
            "Skriv i feltet „Beløb“, hvor meget du vil betale.",
        ),
        "pay.error.number": (
            "Betrag „{value}“ ist keine gültige Zahl. Bitte mit höchstens zwei Nachkommastellen eingeben, "
            "zum Beispiel 12,34.",
            "Amount “{value}” is not a valid number. Please enter it with at most two decimals, for example 12.34.",
            "Beløbet „{value}“ er ikke et gyldigt tal. Skriv beløbet med højst to decimaler, for eksempel 12,34.",
        ),
        "pay.error.small": (
            "Betrag „{value}“ ist zu klein: bitte mindestens {minimum} eingeben.",
            "Amount “{value}” is too small: please enter at least {minimum}.",
            "Beløbet „{value}“ er for lille: skriv mindst {minimum}.",
        ),
        "pay.error.large": (
            "Betrag „{value}“ ist höher als der offene Betrag von {open}.",
            "Amount “{value}” is more than the open amount of {open}.",
            "Beløbet „{value}“ er højere end det skyldige beløb på {open}.",
        ),
        "pay.error.nothing_open": (
            "Es ist nichts mehr offen – es gibt nichts zu bezahlen.",
            "Nothing is open any more – there is nothing to pay.",
            "Der er ikke længere noget skyldigt – der er intet at betale.",
        ),
        "pay.done.title": ("Zahlung eingegangen", "Payment received", "Betaling modtaget"),
        "pay.done.thanks": (
            "Vielen Dank! Wir haben Ihre Zahlung über {amount} erhalten.",
            "Thank you! We have received your payment of {amount}.",
            "Mange tak! Vi har modtaget din betaling på {amount}.",
        ),
        "pay.done.pending": (
            "Zahlung noch nicht abgeschlossen",
            "Payment not completed yet",
            "Betalingen er endnu ikke gennemført",
        ),
        "pay.done.pending.text": (
            "Diese Zahlung wurde noch nicht bestätigt.",
            "This payment has not been confirmed yet.",
            "Denne betaling er endnu ikke bekræftet.",
        ),
        "pay.done.still_open": ("Noch offen", "Still open", "Stadig skyldigt"),
        "pay.done.more": ("Weiteren Betrag zahlen", "Pay another amount", "Betal et andet beløb"),
        # The pay link's error pages (link_error.html): an invalid link, an expired one, a payment unknown.
        "link.invalid.title": ("Link ungültig", "Invalid link", "Ugyldigt link"),
        "link.invalid.text": (
            "Dieser Zahlungslink ist nicht gültig. Bitte nutzen Sie den Link aus Ihrer letzten Nachricht.",
            "This payment link is not valid. Please use the link from your latest message.",
            "Dette betalingslink er ikke gyldigt. Brug linket fra din seneste besked.",
        ),
        "link.expired.title": ("Link abgelaufen", "Link expired", "Linket er udløbet"),
        "link.expired.text": (
            "Dieser Zahlungslink ist abgelaufen. Mit Ihrer nächsten Nachricht erhalten Sie einen neuen Link; "
            "Sie können auch per Überweisung mit der Referenz aus Ihrem Schreiben zahlen.",
            "This payment link has expired. Your next message will bring a new link; you can also pay by bank "
            "transfer with the reference from your letter.",
            "Dette betalingslink er udløbet. Med din næste besked får du et nyt link; du kan også betale via "
            "bankoverførsel med referencen fra dit brev.",
        ),
        "link.no_payment.title": ("Zahlung nicht gefunden", "Payment not found", "Betalingen blev ikke fundet"),
        "link.no_payment.text": (
            "Zu diesem Link gibt es keine solche Zahlung.",
            "There is no such payment for this link.",
            "Der findes ingen sådan betaling til dette link.",
        ),
    }
)
