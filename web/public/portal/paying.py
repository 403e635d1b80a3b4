"""Paying in the customer portal (issue #14): what, how, and what happened.

- `GET /portal/pay`: the customer's contracts in dunning with their open balances; pay everything at
  once, one contract's balance, or the instalment due now (ledger/portal_payments.options); by card or
  SEPA direct debit through Stripe Checkout (PAYMENT_PROVIDER=stripe), by bank transfer (always), or
  by the built-in TestPay (only when payments are not Stripe).
- `POST /portal/pay`: opens one checkout for the choice — one TestPay session or one Stripe Checkout
  Session (a line item per contract) whose webhook books each contract's share on that contract. A
  choice that is unknown, whose amount is not the one open now, or an unknown method is refused (422)
  and nothing is written.
- `GET /portal/pay/transfer`: the transfer details per contract — creditor, IBAN, BIC, amount, the RF
  reference and a GiroCode carrying exactly these (one per contract: a GiroCode holds one reference).
- `GET /portal/pay/result`: after paying, what the ledger shows now, per contract.

No contract number in a URL: options are named by their position in the customer's list ("c2").
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import select

from channels.render import epc_fields, girocode_data_uri
from core.references import payment_reference
from ledger import card_reversals, service
from ledger import portal_payments as paying
from ledger.db import session_scope
from ledger.portal import PortalContract, dunning_contracts
from models.case import CaseStatus
from models.ledger import TestPaySession
from models.messages import Creditor, MessageContext, MessageKind
from models.providers import ProviderCheckout
from providers.base import CheckoutLine, CheckoutRequest, ProviderError
from providers.stripe_payments import StripePayments
from web.auth.audit import note
from web.deps import AppContext, berlin_today, context
from web.public.pay_links import checkout_idempotency_key, checkout_window_seconds
from web.public.portal import case as case_client
from web.public.portal.i18n import MENU, Words, currency_of, portal_page, texts
from web.public.portal.outcomes import Checkout, answered_outcomes
from web.public.portal.session import PortalCustomer, require
from web.public.provider_checks import providers_for
from web.render import CUSTOMER_HEADERS

log = logging.getLogger(__name__)
router = APIRouter()

CARD = "card"
SEPA_DEBIT = "sepa_debit"
TRANSFER = "transfer"
TESTPAY = "testpay"
# The pay page asks each running case for an instalment plan; a case that cannot answer in time
# offers none (the page still offers the balances).

texts(
    {
        "portal.pay.title": ("Bezahlen", "Pay", "Betal"),
        "portal.pay.intro": (
            "Hier sehen Sie, was auf Ihren Verträgen offen ist, und bezahlen alles auf einmal oder einen Teil.",
            "Here you see what is open on your contracts, and pay all of it at once or a part.",
            "Her kan du se, hvad der er skyldigt på dine policer, og betale det hele på én gang eller en del af det.",
        ),
        "portal.pay.contracts": (
            "Ihre Verträge mit offenem Betrag",
            "Your contracts with an open amount",
            "Dine policer med et skyldigt beløb",
        ),
        "portal.pay.contract": ("Vertrag", "Contract", "Police"),
        "portal.pay.product": ("Produkt", "Product", "Produkt"),
        "portal.pay.open": ("Offen", "Open", "Skyldigt"),
        "portal.pay.nothing_open": (
            "Auf Ihren Verträgen ist derzeit nichts offen. Vielen Dank!",
            "Nothing is open on your contracts at the moment. Thank you!",
            "Der er intet skyldigt på dine policer lige nu. Tak!",
        ),
        "portal.pay.what": ("Was möchten Sie bezahlen?", "What would you like to pay?", "Hvad vil du betale?"),
        "portal.pay.option.all": (
            "Alles auf einmal: {amount}",
            "Everything at once: {amount}",
            "Det hele på én gang: {amount}",
        ),
        "portal.pay.option.all.several": (
            "Alles auf einmal: {amount} für {count} Verträge",
            "Everything at once: {amount} for {count} contracts",
            "Det hele på én gang: {amount} for {count} policer",
        ),
        "portal.pay.option.contract": (
            "Nur Vertrag {contract}: {amount}",
            "Only contract {contract}: {amount}",
            "Kun police {contract}: {amount}",
        ),
        "portal.pay.option.instalment": (
            "Rate {number} von {count} für Vertrag {contract}, fällig am {due}: {amount}",
            "Instalment {number} of {count} for contract {contract}, due on {due}: {amount}",
            "Afdrag {number} af {count} for police {contract}, forfalder den {due}: {amount}",
        ),
        "portal.pay.how": ("Wie möchten Sie bezahlen?", "How would you like to pay?", "Hvordan vil du betale?"),
        "portal.pay.method.card": (
            "Kreditkarte oder Debitkarte",
            "Credit or debit card",
            "Betalingskort (kredit- eller debetkort)",
        ),
        "portal.pay.method.card.hint": (
            "Über unseren Zahlungsdienstleister Stripe; sofort gebucht.",
            "Through our payment provider Stripe; booked at once.",
            "Via vores betalingsudbyder Stripe; bogføres med det samme.",
        ),
        "portal.pay.method.sepa_debit": ("SEPA-Lastschrift", "SEPA direct debit", "SEPA-direkte debitering"),
        "portal.pay.method.sepa_debit.hint": (
            "Über Stripe; die Buchung kann einige Bankarbeitstage dauern.",
            "Through Stripe; booking can take a few bank working days.",
            "Via Stripe; bogføringen kan tage nogle bankdage.",
        ),
        "portal.pay.method.transfer": ("Überweisung", "Bank transfer", "Bankoverførsel"),
        "portal.pay.method.transfer.hint": (
            "Mit unserer Bankverbindung, der Referenz und einem GiroCode für Ihre Banking-App.",
            "With our bank details, the reference and a GiroCode for your banking app.",
            "Med vores bankoplysninger, betalingsreferencen og en GiroCode til din bankapp.",
        ),
        "portal.pay.method.testpay": ("TestPay (Testbetrieb)", "TestPay (test mode)", "TestPay (testtilstand)"),
        "portal.pay.method.testpay.hint": (
            "Der eingebaute Testzahlungsdienst: es fließt kein echtes Geld.",
            "The built-in test payment provider: no real money moves.",
            "Den indbyggede testbetalingsudbyder: ingen rigtige penge flyttes.",
        ),
        "portal.pay.continue": ("Weiter", "Continue", "Fortsæt"),
        "portal.pay.line": (
            "Offener Betrag, Vertrag {contract}",
            "Open amount, contract {contract}",
            "Skyldigt beløb, police {contract}",
        ),
        "portal.pay.error.no_choice": (
            "Bitte wählen Sie, was Sie bezahlen möchten.",
            "Please choose what to pay.",
            "Vælg, hvad du vil betale.",
        ),
        "portal.pay.error.unknown_choice": (
            "Diese Auswahl gibt es nicht (mehr). Bitte wählen Sie erneut.",
            "This choice does not exist (any more). Please choose again.",
            "Dette valg findes ikke (længere). Vælg igen.",
        ),
        "portal.pay.error.amount_changed": (
            "Der Betrag passt nicht zum jetzt offenen Betrag von {amount}. Die Seite zeigt die aktuellen Beträge; "
            "bitte wählen Sie erneut.",
            "The amount does not match the {amount} open now. The page shows the current amounts; please choose again.",
            "Beløbet passer ikke med de {amount}, der er skyldige nu. Siden viser de aktuelle beløb; vælg igen.",
        ),
        "portal.pay.error.currencies": (
            "Verträge in {currencies} können nicht mit einer Zahlung bezahlt werden. Bitte bezahlen Sie sie einzeln.",
            "Contracts in {currencies} cannot be paid with one payment. Please pay them one by one.",
            "Policer i {currencies} kan ikke betales med én betaling. Betal dem en ad gangen.",
        ),
        "portal.pay.error.nothing_open": (
            "Hier ist nichts offen.",
            "Nothing is open here.",
            "Der er intet skyldigt her.",
        ),
        "portal.pay.error.method": (
            "Bitte wählen Sie eine der angebotenen Zahlungsarten.",
            "Please choose one of the payment methods offered.",
            "Vælg en af de tilbudte betalingsmåder.",
        ),
        "portal.pay.error.too_many": (
            "So viele Verträge passen nicht in eine Zahlung. Bitte bezahlen Sie sie einzeln.",
            "That many contracts do not fit one payment. Please pay them one by one.",
            "Så mange policer kan ikke betales med én betaling. Betal dem en ad gangen.",
        ),
        "portal.pay.error.provider": (
            "Der Zahlungsdienst ist gerade nicht erreichbar. Es wurde nichts abgebucht. Bitte versuchen Sie es "
            "in einigen Minuten erneut oder zahlen Sie per Überweisung.",
            "The payment provider cannot be reached right now. Nothing was charged. Please try again in a few "
            "minutes or pay by bank transfer.",
            "Betalingsudbyderen kan ikke nås lige nu. Der er ikke trukket noget. Prøv igen om et par minutter, eller "
            "betal med bankoverførsel.",
        ),
        # bank transfer
        "portal.transfer.title": ("Per Überweisung bezahlen", "Pay by bank transfer", "Betal med bankoverførsel"),
        "portal.transfer.intro": (
            "Bitte überweisen Sie für jeden Vertrag einzeln mit seiner Referenz – so wird jede Zahlung auf dem "
            "richtigen Vertrag gebucht. Mit dem GiroCode übernimmt Ihre Banking-App alle Angaben.",
            "Please make one transfer per contract, with its reference, so each payment is booked on the right "
            "contract. Scan the GiroCode with your banking app to fill in everything.",
            "Lav én overførsel pr. police med dens betalingsreference, så hver betaling bliver bogført på den rigtige "
            "police. Scan GiroCoden med din bankapp for at udfylde det hele.",
        ),
        "portal.transfer.for": ("Vertrag {contract}", "Contract {contract}", "Police {contract}"),
        "portal.transfer.recipient": ("Empfänger", "Recipient", "Modtager"),
        "portal.transfer.iban": ("IBAN", "IBAN", "IBAN"),
        "portal.transfer.bic": ("BIC", "BIC", "BIC"),
        "portal.transfer.amount": ("Betrag", "Amount", "Beløb"),
        "portal.transfer.reference": (
            "Referenz (Verwendungszweck)",
            "Reference (payment reference)",
            "Reference (betalingsreference)",
        ),
        "portal.transfer.reference.hint": (
            "Bitte genau so angeben, ohne weiteren Text.",
            "Please enter it exactly like this, without other text.",
            "Skriv den præcis sådan, uden anden tekst.",
        ),
        "portal.transfer.purpose": ("Verwendungszweck", "Payment reference", "Betalingsreference"),
        "portal.transfer.girocode": (
            "GiroCode: Überweisung von {amount} an {recipient}, Referenz {reference}",
            "GiroCode: transfer of {amount} to {recipient}, reference {reference}",
            "GiroCode: overførsel af {amount} til {recipient}, reference {reference}",
        ),
        "portal.transfer.booking": (
            "Eine Überweisung wird gebucht, sobald sie bei uns eingeht – meist nach ein bis zwei Bankarbeitstagen.",
            "A transfer is booked when it reaches us, usually after one or two bank working days.",
            "En overførsel bliver bogført, når den når frem til os, normalt efter en eller to bankdage.",
        ),
        "portal.transfer.back": ("Zurück zur Auswahl", "Back to the choice", "Tilbage til valget"),
        # the result
        "portal.result.title": ("Ihre Zahlung", "Your payment", "Din betaling"),
        "portal.result.not_found": (
            "Zu Ihrem Zugang gibt es keine solche Zahlung.",
            "There is no such payment in your portal.",
            "Der findes ingen sådan betaling i din portal.",
        ),
        "portal.result.not_paid": (
            "Diese Zahlung wurde nicht ausgeführt. Es wurde nichts abgebucht.",
            "This payment was not made. Nothing was charged.",
            "Denne betaling blev ikke gennemført. Der er ikke trukket noget.",
        ),
        "portal.result.paid": ("Bezahlt: {amount}", "Paid: {amount}", "Betalt: {amount}"),
        "portal.result.booked": ("Die Zahlung ist gebucht.", "The payment is booked.", "Betalingen er bogført."),
        "portal.result.pending": (
            "Zahlung eingegangen, sie wird gebucht. Bei Lastschrift kann das einige Tage dauern; bis dahin "
            "zeigen wir hier den bisher offenen Betrag.",
            "Payment received, being booked. By direct debit this can take a few days; until then this page "
            "shows the amount open so far.",
            "Betalingen er modtaget og er ved at blive bogført. Ved direkte debitering kan det tage nogle dage; "
            "indtil da viser siden det hidtil skyldige beløb.",
        ),
        "portal.result.cover.restored": (
            "Ihr Versicherungsschutz ist wiederhergestellt: der Vertrag ist seit {since} wieder aktiv.",
            "Your cover is restored: the contract is active again since {since}.",
            "Din forsikringsdækning er genoprettet: policen er i kraft igen fra den {since}.",
        ),
        "portal.result.cover.never_interrupted": (
            "Ihr Versicherungsschutz war nie unterbrochen.",
            "Your cover was never interrupted.",
            "Din forsikringsdækning har ikke været afbrudt.",
        ),
        "portal.result.cover.restoring": (
            "Alles ist bezahlt. Der Vertrag ist noch als ruhend erfasst; der Versicherungsschutz wird gerade "
            "wiederhergestellt. Laden Sie die Seite gleich neu.",
            "Everything is paid. The contract is still recorded as suspended; cover is being restored right now. "
            "Reload this page in a moment.",
            "Alt er betalt. Policen er stadig registreret som sat i bero; dækningen bliver genoprettet lige nu. "
            "Genindlæs siden om et øjeblik.",
        ),
        "portal.result.cover.suspended": (
            "Ihr Versicherungsschutz ruht, bis der noch offene Betrag bezahlt ist.",
            "Your cover stays suspended until the amount still open is paid.",
            "Din forsikringsdækning forbliver sat i bero, indtil det resterende beløb er betalt.",
        ),
        "portal.result.cover.terminated": (
            "Der Vertrag ist als gekündigt erfasst.",
            "The contract is recorded as terminated.",
            "Policen er registreret som opsagt.",
        ),
        "portal.result.cover.active": ("Der Vertrag ist aktiv.", "The contract is active.", "Policen er i kraft."),
        "portal.result.remaining": (
            "Noch offen auf diesem Vertrag: {amount}",
            "Still open on this contract: {amount}",
            "Stadig skyldigt på denne police: {amount}",
        ),
        "portal.result.cleared": (
            "Auf diesem Vertrag ist nichts mehr offen.",
            "Nothing is open on this contract any more.",
            "Der er ikke længere noget skyldigt på denne police.",
        ),
        "portal.result.reload": ("Seite neu laden", "Reload this page", "Genindlæs siden"),
        "portal.result.more": ("Weiter bezahlen", "Pay more", "Betal mere"),
    }
)


# --- what can be paid, and how -------------------------------------------------------------------------


def offered_methods(request: Request) -> list[str]:
    """Card and SEPA debit through Stripe when it is configured, else TestPay; transfer always."""
    if isinstance(providers_for(request).payments, StripePayments):
        return [CARD, SEPA_DEBIT, TRANSFER]
    return [TESTPAY, TRANSFER]


async def _case_status(ctx: AppContext, contract_number: str) -> CaseStatus | None:
    """The running case's status, or None (no case, a closed one, or it cannot answer now)."""
    answer = await case_client.case_status(ctx.client, contract_number)
    return None if answer.closed else answer.status


async def _choices(ctx: AppContext, customer: PortalCustomer) -> tuple[list[PortalContract], list[paying.Option]]:
    with session_scope(ctx.engine) as session:
        contracts = dunning_contracts(session, customer.customer_id, berlin_today())
    instalments: dict[str, paying.InstalmentDue] = {}
    for contract in contracts:
        if contract.arrears.balance_cents <= 0:
            continue
        status = await _case_status(ctx, contract.contract_number)
        due = paying.instalment_due_now(status.hold if status else None, contract.arrears.balance_cents)
        if due is not None:
            instalments[contract.contract_number] = due
    return contracts, paying.options(contracts, instalments)


def page_currency(contracts: list[PortalContract]) -> str:
    return currency_of(c.currency for c in contracts)


def option_label(words: Words, option: paying.Option) -> str:
    amount = words.money(option.total_cents, option.currencies[0])  # one currency: paying.options
    if option.kind == "all":
        if len(option.parts) > 1:
            return words("portal.pay.option.all.several", amount=amount, count=len(option.parts))
        return words("portal.pay.option.all", amount=amount)
    contract = option.parts[0][0].masked
    if option.kind == "instalment" and option.instalment is not None:
        due = option.instalment
        return words(
            "portal.pay.option.instalment",
            number=due.number,
            count=due.count,
            contract=contract,
            due=words.day(due.due),
            amount=amount,
        )
    return words("portal.pay.option.contract", contract=contract, amount=amount)


def _pay_form(
    request: Request,
    customer: PortalCustomer,
    contracts: list[PortalContract],
    found: list[paying.Option],
    status_code: int = 200,
    *,
    error: str | None = None,
    error_field: str = "",
    chosen: str = "",
    method: str = "",
) -> Response:
    words = Words(customer.language, page_currency(contracts))
    methods = offered_methods(request)
    return portal_page(
        request,
        "portal/pay.html",
        customer.language,
        status_code,
        currency=words.currency,
        portal_menu=MENU,
        contracts=contracts,
        options=[(option, option_label(words, option)) for option in found],
        methods=methods,
        chosen=chosen if any(o.value == chosen for o in found) else (found[0].value if found else ""),
        method=method if method in methods else methods[0],
        error=error,
        error_field=error_field,
    )


@router.get("/portal/pay")
async def pay_page(request: Request) -> Response:
    customer = require(request)
    contracts, found = await _choices(context(request), customer)
    return _pay_form(request, customer, contracts, found)


@router.post("/portal/pay")
async def pay_submit(request: Request) -> Response:
    customer = require(request)
    ctx = context(request)
    form = await request.form()
    raw_choice, raw_method = form.get("choice"), form.get("method")
    choice = raw_choice.strip()[:40] if isinstance(raw_choice, str) else ""
    method = raw_method.strip()[:20] if isinstance(raw_method, str) else ""
    contracts, found = await _choices(ctx, customer)
    words = Words(customer.language, page_currency(contracts))

    def refused(key: str, field: str, **params: Any) -> Response:
        return _pay_form(
            request,
            customer,
            contracts,
            found,
            422,
            error=words(key, **params),
            error_field=field,
            chosen=choice,
            method=method,
        )

    try:
        option = paying.pick(found, choice)
    except paying.ChoiceRefused as problem:
        params: dict[str, Any] = {}
        if problem.code == "amount_changed":
            chosen = paying.option_by_key(found, choice.partition(":")[0])
            params["amount"] = words.money(int(problem.params["amount_cents"]), chosen.currencies[0])
        elif problem.code == "currencies":
            params["currencies"] = problem.params["currencies"]
        return refused(f"portal.pay.error.{problem.code}", "choice", **params)
    if method not in offered_methods(request):
        return refused("portal.pay.error.method", "method")
    numbers = [c.contract_number for c, _ in option.parts]
    note(
        request,
        contract_number=numbers[0],
        portal_action="pay",
        method=method,
        choice=option.kind,
        contracts=",".join(numbers),
        amount_cents=option.total_cents,
    )
    if method == TRANSFER:
        return RedirectResponse(f"/portal/pay/transfer?pay={option.key}", status_code=303, headers=CUSTOMER_HEADERS)
    with session_scope(ctx.engine) as session:
        shares = paying.shares(session, option)
    if method == TESTPAY:
        return RedirectResponse(f"/testpay/checkout/{_open_testpay(ctx, customer, shares)}", status_code=303)
    payments = providers_for(request).payments
    assert isinstance(payments, StripePayments)  # offered_methods: card and SEPA debit only with Stripe
    try:
        url = _open_stripe(ctx, payments, customer, words, option, shares, method)
    except ValueError:  # the allocation does not fit Stripe's metadata
        return refused("portal.pay.error.too_many", "choice")
    except ProviderError as error:
        log.warning("portal stripe checkout failed: %s", error)
        return _pay_form(
            request,
            customer,
            contracts,
            found,
            503 if error.retryable else 502,
            error=words("portal.pay.error.provider"),
            chosen=choice,
            method=method,
        )
    return RedirectResponse(url, status_code=303, headers=CUSTOMER_HEADERS)


def _open_testpay(ctx: AppContext, customer: PortalCustomer, shares: list[paying.Share]) -> str:
    """One TestPay checkout for all shares; its webhook books each on its own contract."""
    session_id = "tps_" + secrets.token_hex(12)
    with session_scope(ctx.engine) as session:
        first = service.get_contract(session, shares[0].contract_number)
        assert first.id is not None
        session.add(
            TestPaySession(
                session_id=session_id,
                pay_link_token_id=customer.pay_link_token_id,
                contract_id=first.id,
                case_id=shares[0].case_id,
                amount_cents=sum(s.amount_cents for s in shares),
                created_at=datetime.now(UTC),
                customer_id=customer.customer_id,
                allocation=[s.to_json() for s in shares],
            )
        )
    log.info("portal testpay checkout %s opened for %d contract(s)", session_id, len(shares))
    return session_id


def _open_stripe(
    ctx: AppContext,
    payments: StripePayments,
    customer: PortalCustomer,
    words: Words,
    option: paying.Option,
    shares: list[paying.Share],
    method: str,
) -> str:
    """One Checkout Session, a line item per contract, for `method` only; the same choice within one
    window reuses the session (deterministic idempotency key, as the pay link does)."""
    settings = ctx.settings
    window = checkout_window_seconds(settings)
    bucket = int(time.time()) // window
    base = settings.public_base_url.rstrip("/")
    masked = {c.contract_number: c.masked for c, _ in option.parts}
    lines = tuple(
        CheckoutLine(
            s.contract_number, s.case_id, s.amount_cents, words("portal.pay.line", contract=masked[s.contract_number])
        )
        for s in shares
    )
    total = sum(s.amount_cents for s in shares)
    step_key = f"portal:{customer.customer_id}:{method}:{paying.allocation_text(shares)}"
    checkout_request = CheckoutRequest(
        amount_cents=total,
        currency=option.currency.lower(),  # the contracts' (DKK on the Danish plan); pick() refused a mix
        case_id=shares[0].case_id,
        contract_number=shares[0].contract_number,
        description=lines[0].description,
        success_url=f"{base}/portal/pay/result?checkout={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{base}/portal/pay",
        idempotency_key=checkout_idempotency_key(step_key, total, bucket),
        expires_at=bucket * window + settings.stripe_session_hours * 3600,
        lines=lines,
        payment_method_types=(method,),
    )
    checkout = payments.create_checkout(checkout_request)
    with session_scope(ctx.engine) as session:
        known = session.exec(select(ProviderCheckout).where(ProviderCheckout.session_id == checkout.session_id))
        if known.first() is None:
            first = service.get_contract(session, shares[0].contract_number)
            session.add(
                ProviderCheckout(
                    session_id=checkout.session_id,
                    pay_link_token_id=customer.pay_link_token_id,
                    contract_id=first.id or 0,
                    case_id=shares[0].case_id,
                    amount_cents=checkout.amount_cents,
                    idempotency_key=checkout_request.idempotency_key,
                    created_at=datetime.now(UTC),
                    expires_at=datetime.fromtimestamp(checkout.expires_at, UTC),
                    customer_id=customer.customer_id,
                    allocation=[s.to_json() for s in shares],
                )
            )
    log.info("portal stripe checkout %s opened for %d contract(s)", checkout.session_id, len(shares))
    return checkout.url


# --- bank transfer -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transfer:
    """One contract's transfer: what to type, and the GiroCode that carries the same."""

    contract: PortalContract
    amount_cents: int
    reference: str  # the RF creditor reference, or "" when the contract number cannot carry one
    purpose: str  # the free-text purpose then
    girocode: str  # SVG data URI


def transfer_context(
    settings: Any, contract_number: str, case_id: str, amount_cents: int, currency: str = "EUR"
) -> MessageContext:
    """The same fields the letters' GiroCode is drawn from (channels/render.epc_fields)."""
    return MessageContext(
        currency=currency,
        kind=MessageKind.REMINDER,
        letter_date=berlin_today(),
        case_id=case_id,
        contract_number=contract_number,
        salutation_name="",
        total_cents=amount_cents,
        payment_reference=payment_reference(contract_number),
        creditor=Creditor(name=settings.creditor_name, iban=settings.creditor_iban, bic=settings.creditor_bic),
    )


def transfers(settings: Any, option: paying.Option) -> list[Transfer]:
    found: list[Transfer] = []
    for contract, cents in option.parts:
        message = transfer_context(settings, contract.contract_number, contract.case_id, cents, contract.currency)
        # A GiroCode is a SEPA transfer in euros: other currencies get the reference as text, no code.
        reference = message.payment_reference
        fields = epc_fields(message) or {"reference": reference, "text": "" if reference else contract.contract_number}
        found.append(
            Transfer(
                contract=contract,
                amount_cents=cents,
                reference=str(fields.get("reference") or ""),
                purpose=str(fields.get("text") or ""),
                girocode=girocode_data_uri(message),
            )
        )
    return found


def grouped(text: str) -> str:
    """An IBAN as banks print it: blocks of four."""
    plain = text.replace(" ", "")
    return " ".join(plain[i : i + 4] for i in range(0, len(plain), 4))


@router.get("/portal/pay/transfer")
async def transfer_page(request: Request) -> Response:
    customer = require(request)
    ctx = context(request)
    words = Words(customer.language)
    contracts, found = await _choices(ctx, customer)
    key = request.query_params.get("pay", "all")[:20]
    try:
        option = paying.option_by_key(found, key) if found else None
    except paying.ChoiceRefused:
        return _pay_form(
            request,
            customer,
            contracts,
            found,
            422,
            error=words("portal.pay.error.unknown_choice"),
            error_field="choice",
            method=TRANSFER,
        )
    return portal_page(
        request,
        "portal/pay_transfer.html",
        customer.language,
        portal_menu=MENU,
        transfers=transfers(ctx.settings, option) if option else [],
        iban=grouped(ctx.settings.creditor_iban),
        bic=ctx.settings.creditor_bic.strip(),
    )


# --- the result ----------------------------------------------------------------------------------------


def find_checkout(ctx: AppContext, customer_id: int, checkout_id: str) -> Checkout | None:
    """Only the customer's own checkouts; another customer's id is as unknown as a made-up one."""
    with session_scope(ctx.engine) as session:
        testpay = session.exec(
            select(TestPaySession).where(
                TestPaySession.session_id == checkout_id, TestPaySession.customer_id == customer_id
            )
        ).first()
        if testpay is not None and testpay.allocation:
            shares = [paying.Share.from_json(s) for s in testpay.allocation]
            return Checkout(testpay.status == "paid", f"testpay:{testpay.session_id}", shares)
        stripe = session.exec(
            select(ProviderCheckout).where(
                ProviderCheckout.session_id == checkout_id, ProviderCheckout.customer_id == customer_id
            )
        ).first()
        if stripe is not None and stripe.allocation:
            shares = [paying.Share.from_json(s) for s in stripe.allocation]
            base = card_reversals.payment_ref(stripe.payment_intent) if stripe.payment_intent else None
            return Checkout(True, base, shares)
    return None


@router.get("/portal/pay/result")
async def result_page(request: Request) -> Response:
    customer = require(request)
    ctx = context(request)
    checkout_id = request.query_params.get("checkout", "")[:80]
    checkout = find_checkout(ctx, customer.customer_id, checkout_id) if checkout_id else None
    if checkout is None:
        return portal_page(
            request, "portal/pay_result.html", customer.language, 404, portal_menu=MENU, checkout=None, outcomes=[]
        )
    with session_scope(ctx.engine) as session:
        contracts = dunning_contracts(session, customer.customer_id, berlin_today())
    products = {c.contract_number: c.product for c in contracts}
    paid = {s.contract_number for s in checkout.shares}
    outcomes = await answered_outcomes(ctx, checkout, products)
    return portal_page(
        request,
        "portal/pay_result.html",
        customer.language,
        currency=page_currency([c for c in contracts if c.contract_number in paid]),  # one per checkout
        portal_menu=MENU,
        checkout=checkout,
        checkout_id=checkout_id,
        outcomes=outcomes,
    )
