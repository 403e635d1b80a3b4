"""Customer portal: overview (issue #14). After step-up the customer sees, for every contract with a
dunning case, in one view: the open items itemised like the notice (premium periods, due dates, open
amounts, fees separately, the total), the case in plain words (read from the case's `status` query),
the contract's cover, every notice and letter sent (the recorded PDF bytes), the payment history with
what each payment paid, and their agent's card. Amounts come from the ledger, exact to the cent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine

from core.calendar import local_date
from core.languages import fee_label
from core.timezone import BUSINESS_TIMEZONE
from ledger import portal
from ledger.db import session_scope
from models.case import CaseStatus, HoldKind
from models.ledger import Agent
from models.plans import get_plan
from web.deps import RowId, berlin_today, context
from web.public.portal import case as case_client
from web.public.portal.i18n import MENU, Words, currency_of, portal_page, texts
from web.public.portal.session import require
from web.render import CUSTOMER_HEADERS, as_utc

log = logging.getLogger(__name__)
router = APIRouter()


texts(
    {
        "portal.overview.title": ("Ihre Übersicht", "Your overview", "Din oversigt"),
        "portal.overview.none": (
            "Zu Ihren Verträgen ist derzeit nichts offen und kein Mahnverfahren bekannt.",
            "Nothing is open on your contracts and there is no collection case.",
            "Der er intet skyldigt på dine policer og intet inkassoforløb.",
        ),
        "portal.overview.total": ("Insgesamt offen", "Total open", "Skyldigt i alt"),
        "portal.overview.total.contracts": (
            "über {count} Verträge",
            "across {count} contracts",
            "fordelt på {count} policer",
        ),
        "portal.overview.pay_all": ("Alles auf einmal bezahlen", "Pay everything at once", "Betal det hele på én gang"),
        "portal.overview.nothing_open": (
            "Nichts offen – vielen Dank.",
            "Nothing open — thank you.",
            "Intet udestående – tak.",
        ),
        "portal.contract.heading": ("Vertrag {masked}", "Contract {masked}", "Police {masked}"),
        "portal.items.caption": ("Offene Posten", "Open items", "Skyldige poster"),
        "portal.items.item": ("Posten", "Item", "Post"),
        "portal.items.due": ("Fällig am", "Due on", "Forfalden den"),
        "portal.items.open": ("Offen", "Open", "Skyldigt"),
        "portal.items.premium": ("Beitrag {period}", "Premium {period}", "Præmie {period}"),
        # the engine's fee label in the page's language (core.languages.fee_label); a label a person
        # booked stays as booked
        "portal.items.fee": ("{label}", "{label}", "{label}"),
        "portal.items.interest": ("{label}", "Default interest: {label}", "Morarenter: {label}"),
        "portal.items.total": ("Summe", "Total", "I alt"),
        "portal.items.none": (
            "Auf diesem Vertrag ist nichts offen.",
            "Nothing is open on this contract.",
            "Der er intet skyldigt på denne police.",
        ),
        "portal.cover.active": (
            "Ihr Versicherungsschutz besteht.",
            "Your cover is active.",
            "Din forsikringsdækning er i kraft.",
        ),
        "portal.cover.suspended": (
            "Ihr Versicherungsschutz ist seit dem {date} ausgesetzt; er lebt wieder auf, sobald der offene "
            "Betrag bezahlt ist.",
            "Your cover is suspended since {date}; it returns the moment the balance is paid.",
            "Din forsikringsdækning har været sat i bero siden den {date}; den træder i kraft igen, så snart det "
            "skyldige beløb er betalt.",
        ),
        "portal.cover.suspended.undated": (
            "Ihr Versicherungsschutz ist ausgesetzt; er lebt wieder auf, sobald der offene Betrag bezahlt ist.",
            "Your cover is suspended; it returns the moment the balance is paid.",
            "Din forsikringsdækning er sat i bero; den træder i kraft igen, så snart det skyldige beløb er betalt.",
        ),
        "portal.cover.terminated": (
            "Ihr Vertrag ist seit dem {date} gekündigt.",
            "Your contract ended on {date}.",
            "Din police ophørte den {date}.",
        ),
        "portal.cover.terminated.undated": (
            "Ihr Vertrag ist gekündigt.",
            "Your contract has been terminated.",
            "Din police er opsagt.",
        ),
        "portal.case.heading": ("Stand Ihres Vorgangs", "Where your case stands", "Status for din sag"),
        "portal.case.none": (
            "Zu diesem Vertrag läuft derzeit kein Mahnverfahren.",
            "There is no collection case running for this contract.",
            "Der kører ikke noget inkassoforløb for denne police.",
        ),
        "portal.case.closed": (
            "Das Mahnverfahren ist abgeschlossen.",
            "The collection case is closed.",
            "Inkassoforløbet er afsluttet.",
        ),
        "portal.case.unavailable": (
            "Der Stand Ihres Vorgangs kann gerade nicht angezeigt werden. Die Beträge oben sind aktuell.",
            "Where your case stands cannot be shown just now. The amounts above are up to date.",
            "Status for din sag kan ikke vises lige nu. Beløbene ovenfor er aktuelle.",
        ),
        "portal.case.deadline": ("Zahlungsfrist: bis {date}.", "Payment deadline: {date}.", "Betalingsfrist: {date}."),
        "portal.case.deadline.passed": (
            "Die Zahlungsfrist der Mahnung ist mit dem {date} abgelaufen.",
            "The payment deadline of the notice ended with {date}.",
            "Betalingsfristen i rykkeren udløb den {date}.",
        ),
        "portal.case.next": (
            "Nächster Schritt am {date}: {what}.",
            "Next step on {date}: {what}.",
            "Næste skridt den {date}: {what}.",
        ),
        "portal.case.next.paid": (
            "Wenn Sie vorher bezahlen, entfällt dieser Schritt.",
            "If you pay before then, this step will not happen.",
            "Betaler du inden da, bliver dette skridt ikke taget.",
        ),
        "portal.case.instalments": (
            "Sie haben eine Ratenzahlung vereinbart. Solange die Raten pünktlich eingehen, ruht das Mahnverfahren.",
            "You have agreed an instalment plan. While the instalments arrive on time, collection is paused.",
            "Du har aftalt en afdragsordning. Så længe afdragene kommer til tiden, er inkassoforløbet sat på pause.",
        ),
        "portal.case.instalments.caption": ("Ihr Ratenplan", "Your instalment plan", "Din afdragsordning"),
        "portal.case.instalments.number": ("Rate", "Instalment", "Afdrag"),
        "portal.case.instalments.state": ("Stand", "State", "Status"),
        "portal.case.instalments.paid": ("bezahlt", "paid", "betalt"),
        "portal.case.instalments.next": ("als Nächstes fällig", "due next", "forfalder næste gang"),
        "portal.case.instalments.later": ("offen", "to come", "senere"),
        "portal.case.deferral": (
            "Zahlungsaufschub bis zum {date}. Bis dahin ruht das Mahnverfahren.",
            "Payment deferred until {date}. Collection is paused until then.",
            "Betalingen er udsat til den {date}. Indtil da er inkassoforløbet sat på pause.",
        ),
        "portal.case.deferral.amount": (
            "Zugesagter Betrag: {amount}.",
            "Amount promised: {amount}.",
            "Lovet beløb: {amount}.",
        ),
        "portal.case.dispute": (
            "Ihr Einwand wird geprüft. Solange ruht das Mahnverfahren; wir melden uns bei Ihnen.",
            "Your dispute is under review. Collection is paused meanwhile; we will get back to you.",
            "Din indsigelse bliver behandlet. Imens er inkassoforløbet sat på pause; vi vender tilbage til dig.",
        ),
        "portal.case.hold": (
            "Ihr Vorgang ruht bis zum {date}.",
            "Your case is paused until {date}.",
            "Din sag er sat på pause indtil den {date}.",
        ),
        "portal.case.hold.open": (
            "Ihr Vorgang ruht derzeit.",
            "Your case is paused for now.",
            "Din sag er sat på pause indtil videre.",
        ),
        "portal.case.review": (
            "Eine Mitarbeiterin oder ein Mitarbeiter prüft Ihren Vorgang; bis dahin passiert nichts weiter.",
            "A member of our staff is looking at your case; nothing further happens until then.",
            "En af vores medarbejdere ser på din sag; indtil da sker der ikke mere.",
        ),
        "portal.step.reminder": ("Zahlungserinnerung", "a payment reminder", "en betalingspåmindelse"),
        "portal.step.qualified_notice": (
            "qualifizierte Mahnung nach § 38 VVG (mit Frist; danach kann der Versicherungsschutz entfallen)",
            "a formal notice under § 38 VVG (with a deadline; after it, cover may be suspended)",
            "en rykker med betalingsfrist (efter fristen kan forsikringsdækningen blive sat i bero)",
        ),
        "portal.step.suspend_cover": (
            "Ihr Versicherungsschutz wird ausgesetzt, bis der offene Betrag bezahlt ist",
            "your cover is suspended until the balance is paid",
            "din forsikringsdækning sættes i bero, indtil det skyldige beløb er betalt",
        ),
        "portal.step.pay_link_sms": (
            "SMS mit Zahlungslink",
            "a text message with a payment link",
            "en sms med et betalingslink",
        ),
        "portal.step.agency_handover": (
            "Ihr Vermittler wird gebeten, sich bei Ihnen zu melden",
            "your agent is asked to get in touch with you",
            "din formidler bliver bedt om at kontakte dig",
        ),
        "portal.step.court_dunning": (
            "gerichtliches Mahnverfahren (erst nach Prüfung durch eine Mitarbeiterin oder einen Mitarbeiter)",
            "court dunning proceedings (only after a member of staff has reviewed it)",
            "retslig inkasso (først når en medarbejder har gennemgået sagen)",
        ),
        "portal.step.termination": (
            "Kündigung des Vertrags (erst nach Prüfung durch eine Mitarbeiterin oder einen Mitarbeiter)",
            "termination of the contract (only after a member of staff has reviewed it)",
            "opsigelse af policen (først når en medarbejder har gennemgået sagen)",
        ),
        "portal.step.final_reminder": ("letzte Mahnung", "a final reminder", "en sidste rykker"),
        "portal.step.other": (
            "ein weiterer Schritt im Mahnverfahren",
            "a further collection step",
            "et yderligere inkassoskridt",
        ),
        "portal.history.heading": ("Verlauf Ihres Vertrags", "Your contract's history", "Din polices historik"),
        "portal.history.active": (
            "{date}: Versicherungsschutz besteht",
            "{date}: cover active",
            "{date}: dækning i kraft",
        ),
        "portal.history.suspended": (
            "{date}: Versicherungsschutz ausgesetzt",
            "{date}: cover suspended",
            "{date}: dækning sat i bero",
        ),
        "portal.history.terminated": (
            "{date}: Vertrag gekündigt",
            "{date}: contract terminated",
            "{date}: police opsagt",
        ),
        "portal.documents.heading": ("Schreiben und Nachrichten", "Letters and messages", "Breve og beskeder"),
        "portal.documents.none": ("Noch keine Schreiben.", "No letters yet.", "Ingen breve endnu."),
        "portal.documents.download": (
            "{kind} vom {date} herunterladen (PDF)",
            "Download {kind} of {date} (PDF)",
            "Hent {kind} af {date} (PDF)",
        ),
        "portal.documents.email": ("E-Mail vom {date}: {kind}", "E-mail of {date}: {kind}", "E-mail af {date}: {kind}"),
        "portal.documents.show": ("Text anzeigen", "Show text", "Vis tekst"),
        "portal.kind.reminder": ("Zahlungserinnerung", "payment reminder", "betalingspåmindelse"),
        "portal.kind.qualified_notice": (
            "Qualifizierte Mahnung (§ 38 VVG)",
            "formal notice (§ 38 VVG)",
            "rykker med betalingsfrist",
        ),
        "portal.kind.pay_link": ("Zahlungslink", "payment link", "betalingslink"),
        "portal.kind.payment_receipt": ("Zahlungsbestätigung", "payment receipt", "kvittering for betaling"),
        "portal.kind.termination_letter": ("Kündigung", "termination letter", "opsigelsesbrev"),
        "portal.kind.paid_in_full": (
            "Bestätigung: alles bezahlt",
            "confirmation: paid in full",
            "bekræftelse: fuldt betalt",
        ),
        "portal.kind.reactivation": (
            "Bestätigung: Versicherungsschutz wieder da",
            "confirmation: cover restored",
            "bekræftelse: dækning genoprettet",
        ),
        "portal.kind.termination_void": (
            "Bestätigung: Kündigung unwirksam",
            "confirmation: termination void",
            "bekræftelse: opsigelsen er bortfaldet",
        ),
        "portal.kind.paid_after_termination": (
            "Bestätigung: bezahlt nach Kündigung",
            "confirmation: paid after termination",
            "bekræftelse: betalt efter opsigelse",
        ),
        "portal.kind.final_reminder": ("Letzte Mahnung", "final reminder", "sidste rykker"),
        "portal.kind.other": ("Nachricht", "message", "besked"),
        "portal.payments.heading": ("Ihre Zahlungen", "Your payments", "Dine betalinger"),
        "portal.payments.none": ("Noch keine Zahlungen.", "No payments yet.", "Ingen betalinger endnu."),
        "portal.payments.caption": (
            "Zahlungen und wofür sie verwendet wurden",
            "Payments and what they paid",
            "Betalinger, og hvad de dækkede",
        ),
        "portal.payments.date": ("Eingang", "Received", "Modtaget"),
        "portal.payments.amount": ("Betrag", "Amount", "Beløb"),
        "portal.payments.paid": ("Verwendet für", "Paid", "Betalt"),
        "portal.payments.credit": ("Guthaben: {amount}", "Credit: {amount}", "Tilgodehavende: {amount}"),
        "portal.payments.returned": ("zurückgebucht", "returned", "returneret"),
        "portal.agent.heading": ("Ihr Ansprechpartner", "Your contact person", "Din kontaktperson"),
        "portal.agent.role": ("Ihr Vermittler", "Your agent", "Din formidler"),
        "portal.agent.phone_label": ("Telefon", "Phone", "Telefon"),
        "portal.agent.email_label": ("E-Mail", "E-mail", "E-mail"),
        "portal.agent.email": ("E-Mail an {name}", "E-mail {name}", "Skriv en e-mail til {name}"),
        "portal.agent.call": ("{name} anrufen", "Call {name}", "Ring til {name}"),
        "portal.agent.none": (
            "Ihnen ist kein Vermittler zugeordnet; schreiben Sie uns über „Nachrichten“.",
            "You have no agent assigned; write to us under “Messages”.",
            "Du har ingen tilknyttet formidler; skriv til os under „Beskeder“.",
        ),
        "portal.callback.legend": ("Rückruf erbitten", "Request a callback", "Bed om at blive ringet op"),
        "portal.agent.write": ("Nachricht schreiben", "Write a message", "Skriv en besked"),
    }
)

STEP_WORDS = {
    "reminder",
    "qualified_notice",
    "suspend_cover",
    "pay_link_sms",
    "agency_handover",
    "court_dunning",
    "termination",
    "final_reminder",
}
KIND_WORDS = {
    "reminder",
    "qualified_notice",
    "pay_link",
    "payment_receipt",
    "termination_letter",
    "paid_in_full",
    "reactivation",
    "termination_void",
    "paid_after_termination",
    "final_reminder",
}


# --- what the page shows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    label: str
    due: date | None
    open_cents: int


@dataclass(frozen=True)
class ScheduleRow:
    number: int
    due: date
    amount_cents: int
    state: str  # paid | next | later


@dataclass
class ContractView:
    contract: portal.PortalContract
    lines: list[Line]
    total_cents: int
    cover: str
    case_lines: list[str]
    schedule: list[ScheduleRow]
    history: list[str]
    documents: list[portal.Document]
    payments: list[portal.PaymentLine]
    agent_code: str | None


@dataclass
class OverviewView:
    contracts: list[ContractView] = field(default_factory=list)
    agents: list[Agent] = field(default_factory=list)
    total_cents: int = 0
    totals: dict[str, int] = field(default_factory=dict)  # currency → open cents (one entry unless mixed)


@dataclass(frozen=True)
class LedgerFacts:
    """What the ledger says about one contract (read in one transaction)."""

    contract: portal.PortalContract
    fees: list[portal.OpenFee]
    changes: list[portal.StatusChange]
    documents: list[portal.Document]
    payments: list[portal.PaymentLine]
    agent: Agent | None


def read_ledger(engine: Engine, customer_id: int, as_of: date) -> list[LedgerFacts]:
    with session_scope(engine) as session:
        facts: list[LedgerFacts] = []
        for found in portal.dunning_contracts(session, customer_id, as_of):
            facts.append(
                LedgerFacts(
                    contract=found,
                    fees=portal.open_fees(session, found.contract_id),
                    changes=portal.status_changes(session, found.contract_id),
                    documents=portal.documents(session, found.contract_id),
                    payments=portal.payments(session, found.contract_id),
                    agent=portal.agent_of(session, found.contract_id),
                )
            )
        return facts


def _since(changes: list[portal.StatusChange], status: str) -> datetime | None:
    for change in reversed(changes):
        if change.to_status == status:
            return change.effective_at
    return None


def cover_words(words: Words, status: str, changes: list[portal.StatusChange]) -> str:
    since = _since(changes, status)
    if status == "suspended":
        if since is None:
            return words("portal.cover.suspended.undated")
        return words("portal.cover.suspended", date=words.day(since))
    if status == "terminated":
        if since is None:
            return words("portal.cover.terminated.undated")
        return words("portal.cover.terminated", date=words.day(since))
    return words("portal.cover.active")


def step_words(words: Words, case: CaseStatus) -> str:
    """What the next step does, in words (its kind, from the case's plan)."""
    try:
        plan = get_plan(case.plan_id)
    except KeyError:
        return words("portal.step.other")
    kind = next((str(step.kind) for step in plan.steps if step.key == case.next_step), "")
    return words(f"portal.step.{kind}") if kind in STEP_WORDS else words("portal.step.other")


def case_words(
    words: Words, case: CaseStatus | None, answered: bool, closed: bool = False
) -> tuple[list[str], list[ScheduleRow]]:
    """The case in plain language, and an instalment plan's schedule with what is paid."""
    if closed and case is None:
        return [words("portal.case.closed")], []
    if case is None:
        return [words("portal.case.none" if answered else "portal.case.unavailable")], []
    if case.closed:
        return [words("portal.case.closed")], []
    lines: list[str] = []
    schedule: list[ScheduleRow] = []
    hold = case.hold
    if hold is not None:
        if hold.kind == HoldKind.INSTALMENTS:
            lines.append(words("portal.case.instalments"))
            for index, instalment in enumerate(hold.schedule):
                state = "paid" if index < hold.instalment else "next" if index == hold.instalment else "later"
                schedule.append(ScheduleRow(index + 1, instalment.due, instalment.amount_cents, state))
        elif hold.kind == HoldKind.PROMISE and hold.until is not None:
            lines.append(words("portal.case.deferral", date=words.day(hold.until.date())))
            if hold.promised_cents:
                lines.append(words("portal.case.deferral.amount", amount=words.money(hold.promised_cents)))
        elif hold.kind == HoldKind.DISPUTE:
            lines.append(words("portal.case.dispute"))
        elif hold.kind in (HoldKind.HOLD, HoldKind.PROMISE):
            if hold.until is not None:
                lines.append(words("portal.case.hold", date=words.day(hold.until.date())))
            else:
                lines.append(words("portal.case.hold.open"))
        else:  # attention, a small shortfall, a stop: a person decides
            lines.append(words("portal.case.review"))
        return lines, schedule
    if case.deadline is not None:
        # The deadline is the moment the period expires (the start of the day after its last day):
        # the customer is told the last day, as the notice said it.
        last_day = local_date(case.deadline - timedelta(seconds=1), BUSINESS_TIMEZONE)
        passed = case.deadline <= datetime.now(UTC)
        key = "portal.case.deadline.passed" if passed else "portal.case.deadline"
        lines.append(words(key, date=words.day(last_day)))
    if case.next_step and case.next_step_at is not None:
        lines.append(words("portal.case.next", date=words.day(case.next_step_at.date()), what=step_words(words, case)))
        lines.append(words("portal.case.next.paid"))
    return lines, schedule


def item_lines(words: Words, facts: LedgerFacts) -> list[Line]:
    lines = [
        Line(words("portal.items.premium", period=item.period), item.due_date, item.open_cents)
        for item in facts.contract.arrears.items
    ]
    for fee in facts.fees:
        key = "portal.items.interest" if fee.kind == "interest" else "portal.items.fee"
        lines.append(Line(words(key, label=fee_label(fee.label, words.language)), None, fee.open_cents))
    return lines


def history_words(words: Words, changes: list[portal.StatusChange]) -> list[str]:
    known = {"active", "suspended", "terminated"}
    return [
        words(f"portal.history.{c.to_status}", date=words.day(c.effective_at)) for c in changes if c.to_status in known
    ]


async def build_view(request: Request, words: Words, customer_id: int) -> OverviewView:
    ctx = context(request)
    facts = await run_in_threadpool(read_ledger, ctx.engine, customer_id, berlin_today())
    view = OverviewView()
    for fact in facts:
        answer = await case_client.case_status(ctx.client, fact.contract.contract_number)
        case, answered = answer.status, answer.answered
        words = Words(words.language, fact.contract.currency)  # this contract's amounts in its currency
        lines = item_lines(words, fact)
        case_lines, schedule = case_words(words, case, answered, answer.closed)
        view.contracts.append(
            ContractView(
                contract=fact.contract,
                lines=lines,
                total_cents=fact.contract.arrears.balance_cents,
                cover=cover_words(words, fact.contract.status, fact.changes),
                case_lines=case_lines,
                schedule=schedule,
                history=history_words(words, fact.changes),
                documents=fact.documents,
                payments=fact.payments,
                agent_code=fact.agent.code if fact.agent else None,
            )
        )
        if fact.agent is not None and all(a.code != fact.agent.code for a in view.agents):
            view.agents.append(fact.agent)
    view.total_cents = sum(c.total_cents for c in view.contracts)
    for c in view.contracts:  # one total per currency: euros and kroner are not added up
        view.totals[c.contract.currency] = view.totals.get(c.contract.currency, 0) + c.total_cents
    return view


def local_day(moment: datetime) -> date:
    """The business day a stored (UTC) moment falls on: what the customer's letters are dated."""
    return local_date(as_utc(moment), BUSINESS_TIMEZONE)


def kind_words(words: Words, kind: str) -> str:
    return words(f"portal.kind.{kind}") if kind in KIND_WORDS else words("portal.kind.other")


@router.get("/portal", response_class=HTMLResponse)
async def overview(request: Request) -> Response:
    who = require(request)
    words = Words(who.language)
    view = await build_view(request, words, who.customer_id)
    return portal_page(
        request,
        "portal/overview.html",
        who.language,
        currency=currency_of(view.totals),
        portal_menu=MENU,
        view=view,
        kind_words=lambda kind: kind_words(words, kind),
        local_day=local_day,
    )


@router.get("/portal/documents/{message_id}")
def document(request: Request, message_id: RowId) -> Response:
    """Exactly the PDF bytes the outbox stored (their SHA-256 is the recorded evidence's)."""
    who = require(request)
    ctx = context(request)
    with session_scope(ctx.engine) as session:
        message = portal.customer_document(session, who.customer_id, message_id)
        if message is None:
            return Response(status_code=404, content=b"not found", media_type="text/plain", headers=CUSTOMER_HEADERS)
        pdf, kind, created = message.pdf or b"", message.kind, message.created_at
    filename = f"{kind}-{created:%Y-%m-%d}-{message_id}.pdf"
    return Response(
        content=pdf,
        media_type="application/pdf",
        headers={**CUSTOMER_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
    )
