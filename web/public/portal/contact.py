"""Customer portal: contact details, messages and callbacks (issue #14).

- A new e-mail address or mobile number is confirmed by a 6-digit code sent TO THE NEW address or
  number (DOMAIN.md §11): the code goes out like every other message (a row in the outbox, handed to
  the e-mail/SMS provider when one is configured), is stored only as its SHA-256, lives
  PORTAL_CODE_MINUTES and dies after PORTAL_CODE_ATTEMPTS wrong tries. Only the right code changes
  the master data; the change is then recorded as a request for the back office (clerk queue) and
  sent to the case like every customer action.
- A new postal address goes to a clerk instead of a code by letter: a letter takes days while a
  portal session lasts minutes, and the postal address is where the legally required notices (§38
  VVG) go, so a person checks it before it is used; the master data stays unchanged until then.
- Messages: a thread with the customer's agent (answer within 24 hours) or, for a question about a
  payment, the finance team (four working days); without an agent, the back office. Each message is
  a request in its queue and a customer note; people's answers join the same thread.
- Callbacks: a time window and the number to call, a request in the agent's queue.

No personal data in URLs or logs: forms post to fixed paths; the audit note names only the contract.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, func, select

from activities.messaging import Outbox
from core.timezone import as_utc
from ledger import requests as service_requests
from ledger.db import session_scope
from ledger.portal import PortalContract, dunning_contracts
from models.ledger import Contract, Customer
from models.messages import Channel
from models.portal import ChallengePurpose, PortalChallenge, RequestKind, RequestQueue, RequestStatus, ServiceRequest
from providers.base import ProviderError
from web.auth import audit
from web.deps import AppContext, berlin_today, context
from web.public.portal import case, session
from web.public.portal.codes import CODE_DIGITS, code_hash, message_key, new_code, send_code
from web.public.portal.i18n import MENU, portal_page, t, texts
from web.public.provider_checks import providers_for

router = APIRouter()

CODES_PER_HOUR = 5  # codes to new addresses a customer may ask for per hour (each is a message to a stranger)
MAX_MESSAGE_CHARS = 2000
MAX_LINE_CHARS = 100
E164 = re.compile(r"\+[1-9][0-9]{7,14}")  # "+" and 8 to 15 digits
PHONE_SEPARATORS = re.compile(r"[\s\-/().]")
POSTCODE = re.compile(r"[A-Za-z0-9 \-]{3,10}")
TOPICS = ("payment", "other")
WINDOWS = ("morning", "midday", "afternoon")


# --- one-time codes -------------------------------------------------------------------------------


# --- input ----------------------------------------------------------------------------------------


class Invalid(ValueError):
    """Bad input: `field` names the form field, `key` the text that says what is wrong."""

    def __init__(self, field: str, key: str, **params: Any) -> None:
        super().__init__(key)
        self.field, self.key, self.params = field, key, params


def parse_email(value: str) -> str:
    value = value.strip()
    if not value:
        raise Invalid("email", "portal.contact.error.email_empty")
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        raise Invalid("email", "portal.contact.error.email") from None


def parse_phone(value: str, field: str = "phone") -> str:
    number = PHONE_SEPARATORS.sub("", value.strip())
    if number.startswith("00"):
        number = "+" + number[2:]
    if not E164.fullmatch(number):
        raise Invalid(field, "portal.contact.error.phone")
    return number


def parse_line(field: str, value: str, key: str) -> str:
    value = " ".join(value.split())
    if not value or len(value) > MAX_LINE_CHARS:
        raise Invalid(field, key, limit=MAX_LINE_CHARS)
    return value


def parse_text(value: str) -> str:
    value = value.strip()
    if not value:
        raise Invalid("text", "portal.messages.error.empty")
    if len(value) > MAX_MESSAGE_CHARS:
        raise Invalid("text", "portal.messages.error.long", limit=MAX_MESSAGE_CHARS, length=len(value))
    return value


# --- the customer and their contracts ---------------------------------------------------------------


@dataclass(frozen=True)
class Mine:
    customer: Customer
    contracts: list[PortalContract]

    def contract(self, contract_id: str) -> PortalContract | None:
        """The customer's contract chosen in a form (by row id; the only one when there is one)."""
        if not contract_id.strip() and len(self.contracts) == 1:
            return self.contracts[0]
        return next((c for c in self.contracts if str(c.contract_id) == contract_id.strip()), None)


def mine(db: Session, customer_id: int) -> Mine:
    customer = db.get(Customer, customer_id)
    assert customer is not None  # the session's foreign key
    db.expunge(customer)
    return Mine(customer, dunning_contracts(db, customer_id, berlin_today()))


def agent_of(db: Session, contract_id: int) -> str | None:
    contract = db.get(Contract, contract_id)
    return contract.agent_code if contract is not None else None


def refusal_text(language: str, refused: case.Refused) -> str:
    key = "portal.contact.no_case" if refused.code == "no_case" else "portal.contact.refused"
    return t(language, key)


async def _ask(
    ctx: AppContext,
    contract: PortalContract,
    customer_id: int,
    *,
    queue: RequestQueue,
    kind: RequestKind,
    summary: str,
    details: dict[str, str],
    agent_code: str | None = None,
) -> ServiceRequest | case.Refused:
    """Write the request (pending), send it to the case; the accepted request as the queue has it."""
    now = datetime.now(UTC)
    with session_scope(ctx.engine) as db:
        row = service_requests.write_pending(
            db,
            customer_id=customer_id,
            contract_id=contract.contract_id,
            case_id=contract.case_id,
            queue=queue,
            kind=kind,
            summary=summary,
            details=details,
            now=now,
            agent_code=agent_code,
        )
        request_id = row.id or 0
    outcome = await case.ask(ctx, contract.contract_number, request_id, kind)
    if isinstance(outcome, case.Refused):
        return outcome
    with session_scope(ctx.engine) as db:
        accepted = db.get(ServiceRequest, request_id)
        assert accepted is not None
        db.expunge(accepted)
    return accepted


def due_words(language: str, row: ServiceRequest) -> str:
    if row.queue == RequestQueue.AGENT:
        return t(language, "portal.messages.due.agent")
    if row.queue == RequestQueue.FINANCE:
        return t(language, "portal.messages.due.finance")
    return t(language, "portal.messages.due.clerk")


# --- contact details ----------------------------------------------------------------------------------


def contact_page(request: Request, who: session.PortalCustomer, status_code: int = 200, **values: Any) -> Response:
    ctx = context(request)
    with session_scope(ctx.engine) as db:
        found = mine(db, who.customer_id)
        if "challenge" not in values:  # a code sent a moment ago: its form stays on the page
            values["challenge"] = live_challenge(db, who.customer_id, ctx.settings.portal_code_attempts)
    return portal_page(
        request,
        "portal/contact.html",
        who.language,
        status_code,
        portal_menu=MENU,
        customer=found.customer,
        **{"errors": {}, "form": {}, "challenge": None, "done": request.query_params.get("done"), **values},
    )


def live_challenge(db: Session, customer_id: int, attempts: int) -> dict[str, Any] | None:
    """The customer's newest contact-change code that can still be entered, as the page shows it."""
    now = datetime.now(UTC)
    row = db.exec(
        select(PortalChallenge)
        .where(
            PortalChallenge.customer_id == customer_id,
            col(PortalChallenge.purpose).in_([ChallengePurpose.NEW_EMAIL, ChallengePurpose.NEW_PHONE]),
            col(PortalChallenge.used_at).is_(None),
            col(PortalChallenge.attempts) < attempts,
        )
        .order_by(col(PortalChallenge.created_at).desc(), col(PortalChallenge.id).desc())
    ).first()
    if row is None or as_utc(row.expires_at) <= now:
        return None
    return {
        "id": row.id,
        "field": "email" if row.purpose == ChallengePurpose.NEW_EMAIL else "phone",
        "to": row.destination,
    }


def _error(who: session.PortalCustomer, error: Invalid) -> dict[str, str]:
    return {error.field: t(who.language, error.key, **error.params)}


@router.get("/portal/contact")
def contact(request: Request) -> Response:
    return contact_page(request, session.require(request))


@router.post("/portal/contact")
async def change_contact(
    request: Request,
    what: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    street: Annotated[str, Form()] = "",
    postal_code: Annotated[str, Form()] = "",
    city: Annotated[str, Form()] = "",
) -> Response:
    who = session.require(request)
    form = {"what": what, "email": email, "phone": phone, "street": street, "postal_code": postal_code, "city": city}
    try:
        if what == "email":
            return await _send_confirmation(request, who, ChallengePurpose.NEW_EMAIL, parse_email(email), form)
        if what == "phone":
            return await _send_confirmation(request, who, ChallengePurpose.NEW_PHONE, parse_phone(phone), form)
        if what == "address":
            address = {
                "street": parse_line("street", street, "portal.contact.error.street"),
                "postal_code": parse_line("postal_code", postal_code, "portal.contact.error.postal_code"),
                "city": parse_line("city", city, "portal.contact.error.city"),
            }
            if not POSTCODE.fullmatch(address["postal_code"]):
                raise Invalid("postal_code", "portal.contact.error.postal_code")
            return await _address_to_clerk(request, who, address, form)
    except Invalid as error:
        return contact_page(request, who, 422, errors=_error(who, error), form=form)
    return contact_page(request, who, 422, errors={"what": t(who.language, "portal.contact.error.what")}, form=form)


async def _send_confirmation(
    request: Request, who: session.PortalCustomer, purpose: ChallengePurpose, value: str, form: dict[str, str]
) -> Response:
    ctx = context(request)
    settings = ctx.settings
    field = "email" if purpose == ChallengePurpose.NEW_EMAIL else "phone"
    channel = Channel.EMAIL if purpose == ChallengePurpose.NEW_EMAIL else Channel.SMS
    now = datetime.now(UTC)
    code = new_code()
    with session_scope(ctx.engine) as db:
        found = mine(db, who.customer_id)
        current = found.customer.email if field == "email" else found.customer.phone
        if current is not None and current.lower() == value.lower():
            raise Invalid(field, f"portal.contact.error.same_{field}")
        if not found.contracts:
            raise Invalid(field, "portal.contact.no_case")
        recent = db.exec(
            select(func.count())
            .select_from(PortalChallenge)
            .where(
                PortalChallenge.customer_id == who.customer_id,
                col(PortalChallenge.purpose).in_([ChallengePurpose.NEW_EMAIL, ChallengePurpose.NEW_PHONE]),
                col(PortalChallenge.created_at) > now - timedelta(hours=1),
            )
        ).one()
        if int(recent) >= CODES_PER_HOUR:
            raise Invalid(field, "portal.contact.error.too_many", limit=CODES_PER_HOUR)
        challenge = PortalChallenge(
            purpose=purpose,
            customer_id=who.customer_id,
            channel=channel,
            destination=value,
            new_value={field: value},
            code_hash=code_hash(code),
            created_at=now,
            expires_at=now + timedelta(minutes=settings.portal_code_minutes),
        )
        db.add(challenge)
        db.flush()
        challenge_id = challenge.id or 0
    contract = found.contracts[0]
    language = found.customer.language if found.customer.language in ("de", "en") else who.language
    minutes = settings.portal_code_minutes
    words = {"code": code, "minutes": minutes, "creditor": settings.creditor_name}
    text_key = "portal.contact.code.email" if channel == Channel.EMAIL else "portal.contact.code.sms"
    outbox = Outbox(ctx.engine, settings, providers_for(request))
    try:
        await run_in_threadpool(
            lambda: send_code(
                outbox,
                key=message_key(contract.case_id, challenge_id),
                case_id=contract.case_id,
                contract_id=contract.contract_id,
                channel=channel,
                to=value,
                subject=t(language, "portal.contact.code.subject", **words),
                text=t(language, text_key, **words),
                now=now,
            )
        )
    except ProviderError:
        with session_scope(ctx.engine) as db:  # never delivered: the code must not be usable
            row = db.get(PortalChallenge, challenge_id)
            if row is not None:
                row.used_at = now
                db.add(row)
        raise Invalid(field, f"portal.contact.error.not_sent_{field}") from None
    audit.note(request, contract_number=contract.contract_number, portal_action=f"contact_code_{field}")
    return contact_page(request, who, challenge={"id": challenge_id, "field": field, "to": value}, form=form)


async def _address_to_clerk(
    request: Request, who: session.PortalCustomer, address: dict[str, str], form: dict[str, str]
) -> Response:
    ctx = context(request)
    with session_scope(ctx.engine) as db:
        found = mine(db, who.customer_id)
    if not found.contracts:
        raise Invalid("street", "portal.contact.no_case")
    contract = found.contracts[0]
    outcome = await _ask(
        ctx,
        contract,
        who.customer_id,
        queue=RequestQueue.CLERK,
        kind=RequestKind.CONTACT_CHANGE,
        summary="New postal address: please check and update the master data",
        details={"change": "address", **address},
    )
    audit.note(request, contract_number=contract.contract_number, portal_action="contact_address")
    if isinstance(outcome, case.Refused):
        return contact_page(request, who, 409, errors={"what": refusal_text(who.language, outcome)}, form=form)
    return RedirectResponse("/portal/contact?done=address", status_code=303)


@dataclass(frozen=True)
class CodeCheck:
    """What an entered code did: refused (status, errors, the form again or not), or right (`value`)."""

    field: str = "what"
    value: str = ""
    status_code: int = 200
    error_key: str = ""
    error_params: dict[str, Any] | None = None
    challenge: dict[str, Any] | None = None


def check_code(db: Session, customer_id: int, challenge: str, entered: str, attempts: int) -> CodeCheck:
    """Judge an entered code (a wrong one is counted; the right one is claimed, so it works once)."""
    now = datetime.now(UTC)
    row = db.get(PortalChallenge, int(challenge)) if challenge.isdigit() and len(challenge) < 19 else None
    if (
        row is None
        or row.customer_id != customer_id
        or row.purpose
        not in (
            ChallengePurpose.NEW_EMAIL,
            ChallengePurpose.NEW_PHONE,
        )
    ):
        return CodeCheck(status_code=404, error_key="portal.contact.error.no_code", challenge=None)
    field = "email" if row.purpose == ChallengePurpose.NEW_EMAIL else "phone"
    shown = {"id": row.id, "field": field, "to": row.destination}
    if row.used_at is not None or as_utc(row.expires_at) <= now or row.attempts >= attempts:
        return CodeCheck(field, status_code=410, error_key="portal.contact.error.code_dead", challenge=None)
    if not re.fullmatch(rf"[0-9]{{{CODE_DIGITS}}}", entered):
        return CodeCheck("code", status_code=422, error_key="portal.contact.error.code_format", challenge=shown)
    if not hmac.compare_digest(code_hash(entered), row.code_hash):
        row.attempts += 1
        db.add(row)
        left = attempts - row.attempts
        if left <= 0:
            return CodeCheck(field, status_code=422, error_key="portal.contact.error.code_dead", challenge=None)
        return CodeCheck(
            "code",
            status_code=422,
            error_key="portal.contact.error.code_wrong",
            error_params={"left": left},
            challenge=shown,
        )
    row.used_at = now  # claimed: a second submit of the same code finds it used
    db.add(row)
    return CodeCheck(field, value=row.new_value[field])


@router.post("/portal/contact/confirm")
async def confirm_contact(
    request: Request, challenge: Annotated[str, Form()] = "", code: Annotated[str, Form()] = ""
) -> Response:
    who = session.require(request)
    ctx = context(request)
    with session_scope(ctx.engine) as db:
        checked = check_code(db, who.customer_id, challenge, re.sub(r"\s", "", code), ctx.settings.portal_code_attempts)
        found = mine(db, who.customer_id)
    if checked.error_key:
        error = t(who.language, checked.error_key, **(checked.error_params or {}))
        return contact_page(
            request, who, checked.status_code, errors={checked.field: error}, challenge=checked.challenge
        )
    field, value = checked.field, checked.value
    if not found.contracts:
        return contact_page(request, who, 409, errors={field: t(who.language, "portal.contact.no_case")})
    contract = found.contracts[0]
    label = "e-mail address" if field == "email" else "mobile number"
    outcome = await _ask(
        ctx,
        contract,
        who.customer_id,
        queue=RequestQueue.CLERK,
        kind=RequestKind.CONTACT_CHANGE,
        summary=f"New {label} confirmed by a code sent to it (applied to the master data)",
        details={"change": field, field: value},
    )
    audit.note(request, contract_number=contract.contract_number, portal_action=f"contact_change_{field}")
    if isinstance(outcome, case.Refused):
        return contact_page(request, who, 409, errors={field: refusal_text(who.language, outcome)})
    with session_scope(ctx.engine) as db:
        customer = db.get(Customer, who.customer_id)
        assert customer is not None
        if field == "email":
            customer.email, customer.email_valid = value, True
        else:
            customer.phone, customer.phone_valid = value, True
        db.add(customer)
    return RedirectResponse(f"/portal/contact?done={field}", status_code=303)


# --- messages and callbacks ---------------------------------------------------------------------------


def messages_page(request: Request, who: session.PortalCustomer, status_code: int = 200, **values: Any) -> Response:
    with session_scope(context(request).engine) as db:
        found = mine(db, who.customer_id)
        notes = service_requests.thread(db, who.customer_id)
        waiting = db.exec(
            select(ServiceRequest)
            .where(
                ServiceRequest.customer_id == who.customer_id,
                col(ServiceRequest.kind).in_([RequestKind.MESSAGE, RequestKind.CALLBACK]),
                ServiceRequest.status == RequestStatus.OPEN,
            )
            .order_by(col(ServiceRequest.created_at))
        ).all()
        for row in waiting:
            db.expunge(row)
        for note in notes:
            db.expunge(note)
    masked = {c.contract_id: c.masked for c in found.contracts}
    return portal_page(
        request,
        "portal/messages.html",
        who.language,
        status_code,
        portal_menu=MENU,
        customer=found.customer,
        contracts=found.contracts,
        masked=masked,
        notes=notes,
        waiting=waiting,
        customer_author=service_requests.CUSTOMER_AUTHOR,
        topics=TOPICS,
        windows=WINDOWS,
        due_words=lambda row: due_words(who.language, row),
        **{"errors": {}, "callback_errors": {}, "form": {}, "sent": None, **values},
    )


@router.get("/portal/messages")
def messages(request: Request) -> Response:
    who = session.require(request)
    sent_id = request.query_params.get("sent", "")
    sent = None
    if sent_id.isdigit() and len(sent_id) < 19:
        with session_scope(context(request).engine) as db:
            row = db.get(ServiceRequest, int(sent_id))
            if row is not None and row.customer_id == who.customer_id:
                db.expunge(row)
                sent = row
    return messages_page(request, who, sent=sent)


@router.post("/portal/messages")
async def send_message(
    request: Request,
    contract: Annotated[str, Form()] = "",
    topic: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
) -> Response:
    who = session.require(request)
    ctx = context(request)
    form = {"contract": contract, "topic": topic, "text": text}
    with session_scope(ctx.engine) as db:
        found = mine(db, who.customer_id)
        chosen = found.contract(contract)
        agent = agent_of(db, chosen.contract_id) if chosen else None
    try:
        if chosen is None:
            raise Invalid("contract", "portal.messages.error.contract")
        if topic not in TOPICS:
            raise Invalid("topic", "portal.messages.error.topic")
        words = parse_text(text)
    except Invalid as error:
        return messages_page(request, who, 422, errors=_error(who, error), form=form)
    if topic == "payment":
        queue, summary = RequestQueue.FINANCE, "Message from the customer: a question about a payment"
    elif agent:
        queue, summary = RequestQueue.AGENT, "Message from the customer to their agent"
    else:
        queue, summary = RequestQueue.CLERK, "Message from the customer (the contract has no agent)"
    outcome = await _ask(
        ctx,
        chosen,
        who.customer_id,
        queue=queue,
        kind=RequestKind.MESSAGE,
        summary=summary,
        details={"topic": topic, "text": words},
        agent_code=agent,
    )
    audit.note(request, contract_number=chosen.contract_number, portal_action=f"message_{topic}")
    if isinstance(outcome, case.Refused):
        return messages_page(request, who, 409, errors={"text": refusal_text(who.language, outcome)}, form=form)
    with session_scope(ctx.engine) as db:
        service_requests.customer_wrote(db, outcome.id or 0, words, outcome.created_at)
    return RedirectResponse(f"/portal/messages?sent={outcome.id}", status_code=303)


@router.post("/portal/callback")
async def request_callback(
    request: Request,
    contract: Annotated[str, Form()] = "",
    window: Annotated[str, Form()] = "",
    when: Annotated[str, Form()] = "",
    number: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
) -> Response:
    """The callback form on the messages page (the agent card on the overview links to it). Fields:
    `contract` (row id; may be left out when the customer has one contract), `window` (morning | midday |
    afternoon) or `when` (free words, at most 100 characters), `number` (on_file | other; left out: other
    if `phone` is filled in, else on_file), `phone`. Without a window or words the customer is called at
    any time of the working day."""
    who = session.require(request)
    ctx = context(request)
    form = {"contract": contract, "window": window, "when": when, "number": number, "phone": phone}
    with session_scope(ctx.engine) as db:
        found = mine(db, who.customer_id)
        chosen = found.contract(contract)
        agent = agent_of(db, chosen.contract_id) if chosen else None
    number = number or ("other" if phone.strip() else "on_file")
    try:
        if chosen is None:
            raise Invalid("contract", "portal.messages.error.contract")
        if window and window not in WINDOWS:
            raise Invalid("window", "portal.contact.callback.error.window")
        preferred = window or " ".join(when.split()) or "any time"
        if len(preferred) > MAX_LINE_CHARS:
            raise Invalid("window", "portal.contact.callback.error.when", limit=MAX_LINE_CHARS)
        if number == "on_file":
            if not found.customer.phone or not found.customer.phone_valid:
                raise Invalid("number", "portal.contact.callback.error.no_phone")
            call_on = found.customer.phone
        elif number == "other":
            call_on = parse_phone(phone)
        else:
            raise Invalid("number", "portal.contact.callback.error.number")
    except Invalid as error:
        return messages_page(request, who, 422, callback_errors=_error(who, error), form=form)
    outcome = await _ask(
        ctx,
        chosen,
        who.customer_id,
        queue=RequestQueue.AGENT if agent else RequestQueue.CLERK,
        kind=RequestKind.CALLBACK,
        summary="Callback requested" + (f" ({window})" if window else ""),
        details={"window": preferred, "phone": call_on, "number": number},
        agent_code=agent,
    )
    audit.note(request, contract_number=chosen.contract_number, portal_action="callback")
    if isinstance(outcome, case.Refused):
        refused = {"window": refusal_text(who.language, outcome)}
        return messages_page(request, who, 409, callback_errors=refused, form=form)
    return RedirectResponse(f"/portal/messages?sent={outcome.id}", status_code=303)


texts(
    {
        "portal.contact.title": ("Kontaktdaten ändern", "Change your contact details", "Ret dine kontaktoplysninger"),
        "portal.contact.intro": (
            "Eine neue E-Mail-Adresse oder Mobilnummer bestätigen Sie mit einem Code, den wir an die neue "
            "Adresse oder Nummer schicken. Erst dann ändern wir sie.",
            "You confirm a new e-mail address or mobile number with a code we send to the new address or "
            "number. Only then do we change it.",
            "En ny e-mailadresse eller et nyt mobilnummer bekræfter du med en kode, som vi sender til den nye adresse "
            "eller det nye nummer. Først derefter ændrer vi det.",
        ),
        "portal.contact.on_file": ("Bei uns hinterlegt", "On file", "Registreret hos os"),
        "portal.contact.none": ("keine", "none", "ingen"),
        "portal.contact.email": ("E-Mail-Adresse", "E-mail address", "E-mailadresse"),
        "portal.contact.email.new": ("Neue E-Mail-Adresse", "New e-mail address", "Ny e-mailadresse"),
        "portal.contact.phone": ("Mobilnummer", "Mobile number", "Mobilnummer"),
        "portal.contact.phone.new": ("Neue Mobilnummer", "New mobile number", "Nyt mobilnummer"),
        "portal.contact.phone.hint": (
            "Mit Ländervorwahl, z. B. +49 151 12345678.",
            "With the country code, e.g. +49 151 12345678.",
            "Med landekode, f.eks. +45 20 12 34 56.",
        ),
        "portal.contact.address": ("Postanschrift", "Postal address", "Postadresse"),
        "portal.contact.address.new": ("Neue Postanschrift", "New postal address", "Ny postadresse"),
        "portal.contact.address.hint": (
            "Eine neue Anschrift prüft ein Mitarbeiter, bevor wir Post dorthin schicken. Wir ändern sie, "
            "sobald sie geprüft ist.",
            "A member of staff checks a new address before we send post there. We change it once it is checked.",
            "En medarbejder kontrollerer en ny adresse, før vi sender post dertil. Vi ændrer den, så snart den er "
            "kontrolleret.",
        ),
        "portal.contact.street": ("Straße und Hausnummer", "Street and number", "Vej og husnummer"),
        "portal.contact.postal_code": ("Postleitzahl", "Postcode", "Postnummer"),
        "portal.contact.city": ("Ort", "Town or city", "By"),
        "portal.contact.send_code": ("Code senden", "Send code", "Send kode"),
        "portal.contact.send_address": ("Zur Prüfung senden", "Send for checking", "Send til kontrol"),
        "portal.contact.confirm.title": ("Code eingeben", "Enter the code", "Skriv koden"),
        "portal.contact.confirm.sent_email": (
            "Wir haben einen {digits}-stelligen Code an {to} geschickt. Er gilt {minutes} Minuten.",
            "We sent a {digits}-digit code to {to}. It is valid for {minutes} minutes.",
            "Vi har sendt en {digits}-cifret kode til {to}. Den gælder i {minutes} minutter.",
        ),
        "portal.contact.confirm.sent_phone": (
            "Wir haben einen {digits}-stelligen Code per SMS an {to} geschickt. Er gilt {minutes} Minuten.",
            "We sent a {digits}-digit code by text message to {to}. It is valid for {minutes} minutes.",
            "Vi har sendt en {digits}-cifret kode på sms til {to}. Den gælder i {minutes} minutter.",
        ),
        "portal.contact.code": ("Code", "Code", "Kode"),
        "portal.contact.confirm": ("Bestätigen", "Confirm", "Bekræft"),
        "portal.contact.done.email": (
            "Ihre neue E-Mail-Adresse ist bestätigt und gespeichert.",
            "Your new e-mail address is confirmed and saved.",
            "Din nye e-mailadresse er bekræftet og gemt.",
        ),
        "portal.contact.done.phone": (
            "Ihre neue Mobilnummer ist bestätigt und gespeichert.",
            "Your new mobile number is confirmed and saved.",
            "Dit nye mobilnummer er bekræftet og gemt.",
        ),
        "portal.contact.done.address": (
            "Danke. Ein Mitarbeiter prüft Ihre neue Anschrift; bis dahin bleibt die bisherige gespeichert.",
            "Thank you. A member of staff checks your new address; until then the old one stays on file.",
            "Tak. En medarbejder kontrollerer din nye adresse; indtil da bevarer vi den hidtidige.",
        ),
        "portal.contact.code.subject": ("Ihr Bestätigungscode", "Your confirmation code", "Din bekræftelseskode"),
        "portal.contact.code.email": (
            "Guten Tag,\n\nIhr Code zur Bestätigung dieser E-Mail-Adresse lautet: {code}\n\nEr gilt {minutes} "
            "Minuten. Haben Sie keine Änderung angefordert, ignorieren Sie diese Nachricht.\n\n{creditor}",
            "Hello,\n\nyour code to confirm this e-mail address is: {code}\n\nIt is valid for {minutes} minutes. "
            "If you did not ask for a change, ignore this message.\n\n{creditor}",
            "Hej\n\nDin kode til at bekræfte denne e-mailadresse er: {code}\n\nDen gælder i {minutes} minutter. Har "
            "du ikke bedt om en ændring, kan du se bort fra denne besked.\n\n{creditor}",
        ),
        "portal.contact.code.sms": (
            "{creditor}: Ihr Bestätigungscode lautet {code}. Gültig {minutes} Minuten.",
            "{creditor}: your confirmation code is {code}. Valid for {minutes} minutes.",
            "{creditor}: Din bekræftelseskode er {code}. Gælder i {minutes} minutter.",
        ),
        "portal.contact.error.what": (
            "Bitte wählen Sie, was Sie ändern möchten.",
            "Please choose what you want to change.",
            "Vælg, hvad du vil ændre.",
        ),
        "portal.contact.error.email_empty": (
            "Bitte geben Sie die neue E-Mail-Adresse ein.",
            "Please enter the new e-mail address.",
            "Skriv den nye e-mailadresse.",
        ),
        "portal.contact.error.email": (
            "Die E-Mail-Adresse ist ungültig. Bitte prüfen Sie sie (Beispiel: name@beispiel.de).",
            "The e-mail address is not valid. Please check it (example: name@example.com).",
            "E-mailadressen er ikke gyldig. Kontrollér den (eksempel: navn@eksempel.dk).",
        ),
        "portal.contact.error.phone": (
            "Die Mobilnummer ist ungültig: bitte mit + und Ländervorwahl, 8 bis 15 Ziffern (z. B. +49 151 12345678).",
            "The mobile number is not valid: please start with + and the country code, 8 to 15 digits "
            "(e.g. +49 151 12345678).",
            "Mobilnummeret er ikke gyldigt: begynd med + og landekoden, 8 til 15 cifre (f.eks. +45 20 12 34 56).",
        ),
        "portal.contact.error.same_email": (
            "Diese E-Mail-Adresse ist schon bei uns hinterlegt.",
            "This e-mail address is already on file.",
            "Denne e-mailadresse er allerede registreret hos os.",
        ),
        "portal.contact.error.same_phone": (
            "Diese Mobilnummer ist schon bei uns hinterlegt.",
            "This mobile number is already on file.",
            "Dette mobilnummer er allerede registreret hos os.",
        ),
        "portal.contact.error.too_many": (
            "Sie haben in der letzten Stunde schon {limit} Codes angefordert. Bitte versuchen Sie es später.",
            "You have asked for {limit} codes in the last hour. Please try again later.",
            "Du har allerede bedt om {limit} koder inden for den seneste time. Prøv igen senere.",
        ),
        "portal.contact.error.not_sent_email": (
            "An diese E-Mail-Adresse konnten wir keinen Code senden. Bitte prüfen Sie sie.",
            "We could not send a code to this e-mail address. Please check it.",
            "Vi kunne ikke sende en kode til denne e-mailadresse. Kontrollér den.",
        ),
        "portal.contact.error.not_sent_phone": (
            "An diese Mobilnummer konnten wir keinen Code senden. Bitte prüfen Sie sie.",
            "We could not send a code to this mobile number. Please check it.",
            "Vi kunne ikke sende en kode til dette mobilnummer. Kontrollér det.",
        ),
        "portal.contact.error.street": (
            "Bitte geben Sie Straße und Hausnummer ein (höchstens {limit} Zeichen).",
            "Please enter the street and number (at most {limit} characters).",
            "Skriv vej og husnummer (højst {limit} tegn).",
        ),
        "portal.contact.error.postal_code": (
            "Bitte geben Sie eine gültige Postleitzahl ein (z. B. 50667).",
            "Please enter a valid postcode (e.g. 50667).",
            "Skriv et gyldigt postnummer (f.eks. 2100).",
        ),
        "portal.contact.error.city": (
            "Bitte geben Sie den Ort ein (höchstens {limit} Zeichen).",
            "Please enter the town or city (at most {limit} characters).",
            "Skriv bynavnet (højst {limit} tegn).",
        ),
        "portal.contact.error.no_code": (
            "Zu dieser Änderung gibt es keinen Code. Bitte fordern Sie einen neuen an.",
            "There is no code for this change. Please ask for a new one.",
            "Der findes ingen kode til denne ændring. Bed om en ny.",
        ),
        "portal.contact.error.code_format": (
            "Der Code hat 6 Ziffern. Bitte geben Sie ihn so ein, wie Sie ihn erhalten haben.",
            "The code has 6 digits. Please enter it as you received it.",
            "Koden har 6 cifre. Skriv den, præcis som du har modtaget den.",
        ),
        "portal.contact.error.code_wrong": (
            "Der Code stimmt nicht. Sie haben noch {left} Versuch(e).",
            "The code is not right. You have {left} more try/tries.",
            "Koden er forkert. Du har {left} forsøg tilbage.",
        ),
        "portal.contact.error.code_dead": (
            "Dieser Code gilt nicht mehr (abgelaufen, verbraucht oder zu oft falsch). Nichts wurde geändert. "
            "Bitte fordern Sie einen neuen Code an.",
            "This code is no longer valid (expired, used or entered wrongly too often). Nothing was changed. "
            "Please ask for a new code.",
            "Denne kode gælder ikke længere (udløbet, brugt eller skrevet forkert for mange gange). Intet er ændret. "
            "Bed om en ny kode.",
        ),
        "portal.contact.no_case": (
            "Zu Ihrem Vertrag läuft kein Mahnverfahren mehr; bitte wenden Sie sich an unseren Kundenservice.",
            "There is no longer a collection case for your contract; please contact our customer service.",
            "Der er ikke længere et inkassoforløb for din police; kontakt vores kundeservice.",
        ),
        "portal.contact.refused": (
            "Das können wir gerade nicht annehmen. Nichts wurde geändert; bitte versuchen Sie es später.",
            "We cannot accept this right now. Nothing was changed; please try again later.",
            "Det kan vi ikke tage imod lige nu. Intet er ændret; prøv igen senere.",
        ),
        "portal.messages.title": ("Nachrichten", "Messages", "Beskeder"),
        "portal.messages.intro": (
            "Schreiben Sie Ihrem Vermittler oder unserem Team. Die Antwort erscheint hier.",
            "Write to your agent or our team. The answer appears here.",
            "Skriv til din formidler eller til vores team. Svaret vises her.",
        ),
        "portal.messages.thread": ("Ihre Nachrichten", "Your messages", "Dine beskeder"),
        "portal.messages.empty": ("Noch keine Nachrichten.", "No messages yet.", "Ingen beskeder endnu."),
        "portal.messages.you": ("Sie", "You", "Dig"),
        "portal.messages.on": ("am {when}", "on {when}", "den {when}"),
        "portal.messages.contract": ("Vertrag", "Contract", "Police"),
        "portal.messages.new": ("Neue Nachricht", "New message", "Ny besked"),
        "portal.messages.topic": ("Worum geht es?", "What is it about?", "Hvad drejer det sig om?"),
        "portal.messages.topic.payment": (
            "Eine Frage zu einer Zahlung (unser Finanzteam antwortet innerhalb von 4 Werktagen)",
            "A question about a payment (our finance team answers within 4 working days)",
            "Et spørgsmål om en betaling (vores økonomiafdeling svarer inden for 4 arbejdsdage)",
        ),
        "portal.messages.topic.other": (
            "Etwas anderes (Ihr Vermittler antwortet innerhalb von 24 Stunden)",
            "Something else (your agent answers within 24 hours)",
            "Noget andet (din formidler svarer inden for 24 timer)",
        ),
        "portal.messages.text": ("Ihre Nachricht", "Your message", "Din besked"),
        "portal.messages.text.hint": (
            "Höchstens {limit} Zeichen.",
            "At most {limit} characters.",
            "Højst {limit} tegn.",
        ),
        "portal.messages.send": ("Nachricht senden", "Send message", "Send besked"),
        "portal.messages.sent": (
            "Ihre Anfrage ist angekommen. Antwort bis spätestens {due}.",
            "Your request has arrived. Answer by {due} at the latest.",
            "Din henvendelse er modtaget. Svar senest den {due}.",
        ),
        "portal.messages.due.agent": (
            "Ihr Vermittler meldet sich",
            "Your agent will get back to you",
            "Din formidler vender tilbage til dig",
        ),
        "portal.messages.due.finance": (
            "Unser Finanzteam antwortet",
            "Our finance team will answer",
            "Vores økonomiafdeling svarer",
        ),
        "portal.messages.due.clerk": ("Unser Team antwortet", "Our team will answer", "Vores team svarer"),
        "portal.messages.waiting": ("Offene Anfragen", "Open requests", "Åbne henvendelser"),
        "portal.messages.kind.message": ("Nachricht", "Message", "Besked"),
        "portal.messages.kind.callback": ("Rückruf", "Callback", "Opringning"),
        "portal.messages.answer_by": ("Antwort bis {due}", "Answer by {due}", "Svar senest den {due}"),
        "portal.messages.error.contract": (
            "Bitte wählen Sie einen Ihrer Verträge.",
            "Please choose one of your contracts.",
            "Vælg en af dine policer.",
        ),
        "portal.messages.error.topic": ("Bitte wählen Sie ein Thema.", "Please choose a topic.", "Vælg et emne."),
        "portal.messages.error.empty": (
            "Bitte schreiben Sie Ihre Nachricht.",
            "Please write your message.",
            "Skriv din besked.",
        ),
        "portal.messages.error.long": (
            "Die Nachricht ist zu lang: {length} Zeichen, höchstens {limit}.",
            "The message is too long: {length} characters, at most {limit}.",
            "Beskeden er for lang: {length} tegn, højst {limit}.",
        ),
        "portal.contact.callback.title": ("Rückruf anfordern", "Ask for a callback", "Bed om at blive ringet op"),
        "portal.contact.callback.window": ("Wann passt es Ihnen?", "When suits you?", "Hvornår passer det dig?"),
        "portal.contact.callback.window.morning": (
            "Vormittags (8–12 Uhr)",
            "Morning (8 am–12 noon)",
            "Formiddag (kl. 8–12)",
        ),
        "portal.contact.callback.window.midday": ("Mittags (12–16 Uhr)", "Midday (12 noon–4 pm)", "Middag (kl. 12–16)"),
        "portal.contact.callback.window.afternoon": (
            "Nachmittags (16–20 Uhr)",
            "Late afternoon (4 pm–8 pm)",
            "Sen eftermiddag (kl. 16–20)",
        ),
        "portal.contact.callback.number": ("Unter welcher Nummer?", "On which number?", "På hvilket nummer?"),
        "portal.contact.callback.number.on_file": (
            "Unter der bei uns hinterlegten Nummer",
            "On the number we have on file",
            "På det nummer, vi har registreret",
        ),
        "portal.contact.callback.number.other": ("Unter dieser Nummer:", "On this number:", "På dette nummer:"),
        "portal.contact.callback.phone": (
            "Telefonnummer für den Rückruf",
            "Phone number for the callback",
            "Telefonnummer til opringningen",
        ),
        "portal.contact.callback.send": ("Rückruf anfordern", "Ask for a callback", "Bed om at blive ringet op"),
        "portal.contact.callback.error.window": (
            "Bitte wählen Sie eine Zeit.",
            "Please choose a time.",
            "Vælg et tidspunkt.",
        ),
        "portal.contact.callback.error.when": (
            "Bitte beschreiben Sie die Zeit kürzer (höchstens {limit} Zeichen).",
            "Please describe the time more briefly (at most {limit} characters).",
            "Beskriv tidspunktet kortere (højst {limit} tegn).",
        ),
        "portal.contact.callback.error.number": (
            "Bitte wählen Sie, unter welcher Nummer wir anrufen sollen.",
            "Please choose which number we should call.",
            "Vælg, hvilket nummer vi skal ringe til.",
        ),
        "portal.contact.callback.error.no_phone": (
            "Bei uns ist keine Telefonnummer hinterlegt. Bitte geben Sie eine Nummer an.",
            "We have no phone number on file. Please enter a number.",
            "Vi har ikke noget telefonnummer registreret. Skriv et nummer.",
        ),
    }
)
