"""What a customer arranges or asks for in the portal (issue #14, DOMAIN.md §§6, 11).

- `/portal/arrangement`: instalments or a deferral. The form offers what the plan's guardrails allow
  for the contract's balance (core/selfservice.offer); a preview shows the exact schedule and
  whether it is inside them; confirming sends it to the case (`customer_arrangement`), whose
  validator decides. Outside the guardrails — or refused by the case for a reason a person may
  overrule — the same proposal can go to a clerk as a request.
- `/portal/dispute`: a reason and an optional attachment; the case pauses escalation at once.
- `/portal/proof`: a proof of payment (a file) for the finance queue.
- `/portal/bank`: a new IBAN and account holder, a new direct-debit mandate or not — never applied
  to the master data: a clerk checks and confirms (DOMAIN.md §6).

A request for a person is written as a `pending` row (with its upload) in one transaction, then sent
to the case by id (web/public/portal/case.ask); a refused one is discarded there and its upload
deleted here, so nothing stays half-applied. Bad input is answered with the form again, the problem
named, and nothing written. The audit note names the action and the request id, never what the
customer wrote.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import schwifty
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session
from starlette.datastructures import FormData

from core import selfservice
from core.calendar import local_date
from core.limits import MAX_INSTALMENTS, MAX_REASON_CHARS, MAX_REQUEST_CENTS
from core.timezone import BUSINESS_TIMEZONE
from ledger import requests as ledger_requests
from ledger.db import session_scope, transaction_in_thread
from ledger.portal import PortalContract, dunning_contracts
from models.case import CaseStatus, CustomerArrangement, HoldKind, Instalment
from models.plan import SelfServiceRules
from models.portal import RequestKind, RequestQueue, RequestStatus, ServiceRequest
from web.auth.audit import note
from web.deps import AppContext, berlin_today, context
from web.public.portal import case, uploads
from web.public.portal.i18n import DEFAULT_CURRENCY, MENU, Words, money, portal_page, strip_currency, texts
from web.public.portal.session import PortalCustomer, require

router = APIRouter()

# Refusals a person may overrule: the customer can send the same proposal to a clerk.
CLERK_CODES = frozenset(
    {
        "already_used",
        "person_decides",
        "too_many_instalments",
        "no_instalments",
        "no_deferral",
        "deferral_too_long",
        "first_due_too_late",
    }
)
# Refusals the customer fixes in the form (a date missing or in the past, a single instalment).
FIX_CODES = frozenset({"date_missing", "date_not_future", "date_in_past", "too_few_instalments"})

MAX_NOTE_CHARS = MAX_REASON_CHARS  # a note to the clerk or to finance
MAX_DISPUTE_CHARS = 2000  # why the customer disputes the claim
MAX_HOLDER_CHARS = 70  # the SEPA name field's length
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_AMOUNT = re.compile(r"^(\d{1,7})(?:[.,](\d{1,2}))?$")


# --- bad input ----------------------------------------------------------------------------------------


class FormProblem(Exception):
    """Bad input: `key` is the text (with `params`) shown at the form, `field` the input it is about."""

    def __init__(self, key: str, field: str, **params: Any) -> None:
        super().__init__(f"{field}: {key}")
        self.key = key
        self.field = field
        self.params = params


def _text(form: FormData, name: str, *, max_chars: int, required: bool, multiline: bool) -> str:
    raw = form.get(name)
    value = raw.strip() if isinstance(raw, str) else ""
    if not value:
        if required:
            raise FormProblem("portal.form.required", name)
        return ""
    if len(value) > max_chars:
        raise FormProblem("portal.form.too_long", name, max=max_chars, length=len(value))
    allowed = "\n\r\t" if multiline else ""
    for char in value:
        if (unicodedata.category(char) == "Cc" and char not in allowed) or char in _BIDI_CONTROLS:
            raise FormProblem("portal.form.control", name)
    return value


def _date(form: FormData, name: str, *, required: bool) -> date | None:
    raw = form.get(name)
    value = raw.strip() if isinstance(raw, str) else ""
    if not value:
        if required:
            raise FormProblem("portal.form.required", name)
        return None
    try:
        if len(value) != 10:  # yyyy-mm-dd, as a date input sends it
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise FormProblem("portal.form.not_a_date", name) from None


def _count(form: FormData, name: str) -> int:
    raw = form.get(name)
    value = raw.strip() if isinstance(raw, str) else ""
    if not value:
        raise FormProblem("portal.form.required", name)
    if not value.isdigit() or not 1 <= int(value) <= MAX_INSTALMENTS:
        raise FormProblem("portal.form.count", name, max=MAX_INSTALMENTS)
    return int(value)


def _amount(form: FormData, name: str) -> int | None:
    """An amount as people type it ("123", "123,45", "123.45", "123,45 kr.") → cents; never a float."""
    raw = form.get(name)
    value = strip_currency(raw) if isinstance(raw, str) else ""
    if not value:
        return None
    match = _AMOUNT.match(value)
    if match is None:
        raise FormProblem("portal.form.amount", name)
    try:
        cents = int(Decimal(f"{match.group(1)}.{(match.group(2) or '0').ljust(2, '0')}") * 100)
    except InvalidOperation:
        raise FormProblem("portal.form.amount", name) from None
    if not 0 < cents <= MAX_REQUEST_CENTS:
        raise FormProblem("portal.form.amount", name)
    return cents


def _iban(form: FormData, name: str) -> schwifty.IBAN:
    raw = form.get(name)
    value = raw.strip() if isinstance(raw, str) else ""
    if not value:
        raise FormProblem("portal.form.required", name)
    if len(value) > 50:
        raise FormProblem("portal.bank.iban.structure", name)
    try:
        iban = schwifty.IBAN(value)
    except schwifty.exceptions.InvalidCountryCode:
        raise FormProblem("portal.bank.iban.country", name, country=value[:2].upper()) from None
    except schwifty.exceptions.InvalidLength:
        raise FormProblem("portal.bank.iban.length", name) from None
    except schwifty.exceptions.InvalidChecksumDigits:
        raise FormProblem("portal.bank.iban.checksum", name) from None
    except (schwifty.exceptions.SchwiftyException, ValueError):
        raise FormProblem("portal.bank.iban.structure", name) from None
    if not iban.in_sepa_zone:
        raise FormProblem("portal.bank.iban.sepa", name, country=iban.country_code)
    return iban


def _problem_text(words: Words, problem: FormProblem) -> str:
    label = words(f"portal.field.{problem.field}")
    return words(problem.key, field=label, **problem.params)


# --- the customer's contracts and cases ------------------------------------------------------------


def _contracts(ctx: AppContext, customer: PortalCustomer) -> list[PortalContract]:
    with session_scope(ctx.engine) as session:
        return dunning_contracts(session, customer.customer_id, berlin_today())


def _pick(contracts: list[PortalContract], raw: object) -> PortalContract:
    """The contract the customer chose (by row id, never the number); the first when only one."""
    value = raw.strip() if isinstance(raw, str) else ""
    if not value:
        if len(contracts) == 1:
            return contracts[0]
        raise FormProblem("portal.form.contract", "contract")
    chosen = next((c for c in contracts if str(c.contract_id) == value), None)
    if chosen is None:
        raise FormProblem("portal.form.contract", "contract")
    return chosen


async def _case_status(ctx: AppContext, contract_number: str) -> CaseStatus | None:
    """The running case's status; None when there is none (a closed case included) or it cannot
    answer now (web/public/portal/case.case_status)."""
    return (await case.case_status(ctx.client, contract_number)).status


def _rules(status: CaseStatus) -> SelfServiceRules:
    """The guardrails as the case pinned them with its plan (the case's status carries them); the
    engine's defaults only for a case too old to report them."""
    return status.self_service or SelfServiceRules()


def _today() -> date:
    return berlin_today()


def _last_day(due_at: datetime | None) -> date | None:
    """A request's due moment is the start of the day after its last working day: show that day."""
    if due_at is None:
        return None
    moment = due_at if due_at.tzinfo else due_at.replace(tzinfo=UTC)
    return local_date(moment - timedelta(microseconds=1), BUSINESS_TIMEZONE)


def _refusal_text(words: Words, refused: case.Refused) -> str:
    """The case's refusal in the customer's language, its params formatted for the locale."""
    params: dict[str, Any] = {}
    for key, value in refused.params.items():
        if key in ("until", "latest") and isinstance(value, str):
            try:
                params[key] = words.day(date.fromisoformat(value))
            except ValueError:
                params[key] = value
        elif key in ("balance", "min_amount") and isinstance(value, str):
            cents = _eur_cents(value)
            params[key] = words.money(cents) if cents is not None else value
        else:
            params[key] = value
    key = f"portal.refused.{refused.code}"
    try:
        return words(key, **params)
    except KeyError:
        return words("portal.refused.refused")


def _eur_cents(text: str) -> int | None:
    """Back from core.money.format_eur ("1.234,56 €") to cents, to format it for the page's locale."""
    digits = text.replace("€", "").replace(".", "").replace(",", "").strip()
    negative = digits.startswith("-")
    digits = digits.removeprefix("-")
    if not digits.isdigit():
        return None
    return -int(digits) if negative else int(digits)


def _page(request: Request, customer: PortalCustomer, template: str, status_code: int = 200, **values: Any) -> Response:
    """A request page; its amounts in the currency of the contract it is about (EUR when none)."""
    contract = values.get("contract")
    currency = contract.currency if isinstance(contract, PortalContract) else DEFAULT_CURRENCY
    return portal_page(
        request, f"portal/{template}", customer.language, status_code, currency=currency, portal_menu=MENU, **values
    )


def _words(customer: PortalCustomer, contract: PortalContract | None) -> Words:
    """The customer's words, amounts in the contract's currency."""
    return Words(customer.language, contract.currency if contract is not None else DEFAULT_CURRENCY)


# --- a request for a person -------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """A request the case accepted: it is in `queue`, answered by the end of `answer_by`."""

    request_id: int
    queue: str
    answer_by: date | None


async def _ask_person(
    request: Request,
    customer: PortalCustomer,
    contract: PortalContract,
    *,
    queue: RequestQueue,
    kind: RequestKind,
    summary: str,
    details: dict[str, str],
    attachment: uploads.CheckedFile | None = None,
) -> Sent | case.Refused:
    """Write the request (and its file) as pending, send it to the case; refused: nothing stays."""
    ctx = context(request)
    status = await _case_status(ctx, contract.contract_number)
    if status is None:
        return case.Refused("no_case", "no running case for this contract")
    if status.closed:
        return case.Refused("case_closed", f"case is closed ({status.stage})")
    now = datetime.now(UTC)

    def write(session: Session) -> int:
        upload_id = None
        if attachment is not None:
            upload_id = uploads.store(session, customer.customer_id, attachment, now).id
        row = ServiceRequest(
            customer_id=customer.customer_id,
            contract_id=contract.contract_id,
            case_id=status.case_id,
            queue=queue,
            kind=kind,
            status=RequestStatus.PENDING,
            summary=summary,
            details=details,
            upload_id=upload_id,
            created_by=case.BY,
            created_at=now,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id

    def undo(session: Session) -> None:
        ledger_requests.discard(session, request_id)
        uploads.drop_orphan(session, request_id)

    request_id = await transaction_in_thread(ctx.engine, write)
    try:
        outcome = await case.ask(ctx, contract.contract_number, request_id, kind)
    except Exception:
        await transaction_in_thread(ctx.engine, undo)
        raise
    if isinstance(outcome, case.Refused):
        await transaction_in_thread(ctx.engine, undo)  # case.ask discarded the row already
        note(request, contract_number=contract.contract_number, portal_action=kind.value, refused=outcome.code)
        return outcome

    def read(session: Session) -> Sent:
        row = session.get(ServiceRequest, request_id)
        assert row is not None
        return Sent(request_id, row.queue, _last_day(row.due_at))

    sent = await transaction_in_thread(ctx.engine, read)
    note(request, contract_number=contract.contract_number, portal_action=kind.value, request_id=request_id)
    return sent


def _sent_page(request: Request, customer: PortalCustomer, contract: PortalContract, sent: Sent, kind: str) -> Response:
    return _page(
        request,
        customer,
        "request_sent.html",
        kind=kind,
        contract=contract,
        request_id=sent.request_id,
        queue=sent.queue,
        answer_by=sent.answer_by,
    )


# --- instalments or a deferral ------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    arrangement: CustomerArrangement
    note: str

    def fields(self) -> dict[str, str]:
        """The proposal as the preview's hidden fields carry it on."""
        a = self.arrangement
        return {
            "kind": a.kind,
            "instalments": str(a.instalments) if a.kind == "instalments" else "",
            "first_due": a.first_due.isoformat() if a.first_due else "",
            "pay_by": a.pay_by.isoformat() if a.pay_by else "",
        }


def _proposal(form: FormData) -> Proposal:
    kind = form.get("kind")
    if kind == "instalments":
        arrangement = CustomerArrangement(
            kind="instalments",
            instalments=_count(form, "instalments"),
            first_due=_date(form, "first_due", required=True),
        )
    elif kind == "deferral":
        arrangement = CustomerArrangement(kind="deferral", pay_by=_date(form, "pay_by", required=True))
    else:
        raise FormProblem("portal.form.choose", "kind")
    return Proposal(arrangement, _text(form, "note", max_chars=MAX_NOTE_CHARS, required=False, multiline=True))


def _schedule(proposal: Proposal, balance_cents: int) -> list[Instalment]:
    a = proposal.arrangement
    if a.kind != "instalments" or a.first_due is None or balance_cents < a.instalments:
        return []
    return selfservice.schedule(a, balance_cents)


def _offer_values(status: CaseStatus, today: date) -> dict[str, Any]:
    possible = selfservice.offer(_rules(status), status.balance_cents, today)
    first_due = min(today + timedelta(days=7), possible.first_instalment_by)
    return {
        "offer": possible,
        "balance_cents": status.balance_cents,
        "defaults": {
            "kind": "instalments" if possible.instalments else "deferral",
            "instalments": str(min(3, possible.max_instalments)) if possible.instalments else "2",
            "first_due": first_due.isoformat(),
            "pay_by": (possible.deferral_until if possible.deferral else today + timedelta(days=14)).isoformat(),
        },
    }


def _unavailable(status: CaseStatus | None) -> str | None:
    """Why nothing can be arranged on this contract now (a refusal code), or None."""
    if status is None:
        return "no_case"
    if status.closed:
        return "case_closed"
    if status.balance_cents <= 0:
        return "nothing_open"
    return None


async def _arrangement_form(
    request: Request,
    customer: PortalCustomer,
    contracts: list[PortalContract],
    contract: PortalContract | None,
    status_code: int = 200,
    *,
    error: str | None = None,
    error_field: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    words = _words(customer, contract)
    page: dict[str, Any] = {"contracts": contracts, "contract": contract, "error": error, "error_field": error_field}
    if contract is not None:
        status = await _case_status(context(request), contract.contract_number)
        blocked = _unavailable(status)
        if blocked is not None or status is None:
            page["blocked"] = _refusal_text(words, case.Refused(blocked or "no_case", ""))
        else:
            page.update(_offer_values(status, _today()))
            if values:
                page["defaults"] = {**page["defaults"], **values}
    return _page(request, customer, "arrangement.html", status_code, **page)


def _fix_field(code: str, proposal: Proposal) -> str:
    if code == "too_few_instalments":
        return "instalments"
    return "first_due" if proposal.arrangement.kind == "instalments" else "pay_by"


@router.get("/portal/arrangement")
async def arrangement_page(request: Request) -> Response:
    customer = require(request)
    contracts = _contracts(context(request), customer)
    raw = request.query_params.get("contract")
    try:
        contract = _pick(contracts, raw or (str(contracts[0].contract_id) if contracts else "")) if contracts else None
    except FormProblem as problem:
        words = Words(customer.language)
        return await _arrangement_form(
            request, customer, contracts, contracts[0], 422, error=_problem_text(words, problem), error_field="contract"
        )
    return await _arrangement_form(request, customer, contracts, contract)


@router.post("/portal/arrangement")
async def arrangement_submit(request: Request) -> Response:
    customer = require(request)
    ctx = context(request)
    words = Words(customer.language)
    form = await request.form()  # no file fields
    contracts = _contracts(ctx, customer)
    if not contracts:
        return await _arrangement_form(request, customer, contracts, None, 409)
    step = form.get("step")
    try:
        contract = _pick(contracts, form.get("contract"))
    except FormProblem as problem:
        return await _arrangement_form(
            request, customer, contracts, contracts[0], 422, error=_problem_text(words, problem), error_field="contract"
        )
    words = _words(customer, contract)
    try:
        proposal = _proposal(form)
    except FormProblem as problem:
        entered = {k: v for k in ("kind", "instalments", "first_due", "pay_by") if isinstance(v := form.get(k), str)}
        return await _arrangement_form(
            request,
            customer,
            contracts,
            contract,
            422,
            error=_problem_text(words, problem),
            error_field=problem.field,
            values=entered,
        )
    status = await _case_status(ctx, contract.contract_number)
    blocked = _unavailable(status)
    if blocked is not None or status is None:
        return await _arrangement_form(request, customer, contracts, contract, 409)
    today = _today()
    if status.self_service_blocked == "person_decides":  # the case says so itself: a clerk decides
        verdict = selfservice.Verdict("person_decides", "a person decides on any arrangement now")
    else:
        verdict = selfservice.judge(
            _rules(status), proposal.arrangement, status.balance_cents, today, used=status.self_service_arrangements
        )
    if verdict.code in FIX_CODES:
        return await _arrangement_form(
            request,
            customer,
            contracts,
            contract,
            422,
            error=_refusal_text(words, case.Refused(verdict.code, verdict.message, dict(verdict.params))),
            error_field=_fix_field(verdict.code, proposal),
            values=proposal.fields(),
        )
    refused: case.Refused | None = None
    if not verdict.ok:
        refused = case.Refused(verdict.code, verdict.message, dict(verdict.params))
    if step == "confirm" and refused is None:
        outcome = await case.arrange(ctx, contract.contract_number, proposal.arrangement)
        if isinstance(outcome, CaseStatus):
            note(
                request,
                contract_number=contract.contract_number,
                portal_action=f"arrangement_{proposal.arrangement.kind}",
            )
            return _agreed_page(request, customer, contract, proposal, outcome)
        note(request, contract_number=contract.contract_number, portal_action="arrangement", refused=outcome.code)
        if outcome.code not in CLERK_CODES:
            return await _arrangement_form(
                request,
                customer,
                contracts,
                contract,
                409,
                error=_refusal_text(words, outcome),
                values=proposal.fields(),
            )
        refused = outcome
    elif step == "request":
        # The case's refusal the preview showed (e.g. already_used, which only the case knows) goes
        # with the request as a hint for the clerk; it decides nothing.
        said = form.get("refused")
        if refused is None and isinstance(said, str) and said in CLERK_CODES:
            refused = case.Refused(said, "as the case said when the customer confirmed")
        return await _arrangement_request(request, customer, contract, proposal, status, refused)
    return _page(
        request,
        customer,
        "arrangement_preview.html",
        contracts=contracts,
        contract=contract,
        proposal=proposal,
        hidden=proposal.fields() | ({"refused": refused.code} if refused is not None else {}),
        balance_cents=status.balance_cents,
        schedule=_schedule(proposal, status.balance_cents),
        inside=refused is None,
        outside=_refusal_text(words, refused) if refused is not None else None,
    )


async def _arrangement_request(
    request: Request,
    customer: PortalCustomer,
    contract: PortalContract,
    proposal: Proposal,
    status: CaseStatus,
    refused: case.Refused | None,
) -> Response:
    a = proposal.arrangement
    schedule = _schedule(proposal, status.balance_cents)
    details = {
        "kind": a.kind,
        "balance_cents": str(status.balance_cents),
        "note": proposal.note,
        "outside_guardrails": refused.code if refused is not None else "",
    }
    if a.kind == "instalments":
        assert a.first_due is not None
        details |= {
            "instalments": str(a.instalments),
            "first_due": a.first_due.isoformat(),
            "schedule": "; ".join(f"{i.due.isoformat()} {i.amount_cents}" for i in schedule),
        }
        what = f"{a.instalments} monthly instalments from {a.first_due.isoformat()}"
    else:
        assert a.pay_by is not None
        details["pay_by"] = a.pay_by.isoformat()
        what = f"deferral until {a.pay_by.isoformat()}"
    over = money("de", status.balance_cents, contract.currency)  # as format_eur wrote it; DKK on the Danish plan
    summary = f"Arrangement for contract {contract.masked}: {what} over {over}" + (
        f" (outside the guardrails: {refused.code})" if refused is not None else ""
    )
    outcome = await _ask_person(
        request,
        customer,
        contract,
        queue=RequestQueue.CLERK,
        kind=RequestKind.ARRANGEMENT,
        summary=summary,
        details=details,
    )
    if isinstance(outcome, case.Refused):
        words = _words(customer, contract)
        contracts = _contracts(context(request), customer)
        return await _arrangement_form(
            request, customer, contracts, contract, 409, error=_refusal_text(words, outcome), values=proposal.fields()
        )
    return _sent_page(request, customer, contract, outcome, "arrangement")


def _agreed_page(
    request: Request, customer: PortalCustomer, contract: PortalContract, proposal: Proposal, status: CaseStatus
) -> Response:
    hold = status.hold
    schedule = hold.schedule if hold is not None and hold.kind == HoldKind.INSTALMENTS else []
    return _page(
        request,
        customer,
        "arrangement_agreed.html",
        contract=contract,
        kind=proposal.arrangement.kind,
        schedule=schedule,
        total_cents=sum(i.amount_cents for i in schedule),
        balance_cents=status.balance_cents,
        pay_by=proposal.arrangement.pay_by,
    )


# --- dispute ---------------------------------------------------------------------------------------


def _request_form(
    request: Request,
    customer: PortalCustomer,
    template: str,
    contracts: list[PortalContract],
    status_code: int = 200,
    *,
    error: str | None = None,
    error_field: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    limit = context(request).settings.portal_upload_bytes
    return _page(
        request,
        customer,
        template,
        status_code,
        contracts=contracts,
        error=error,
        error_field=error_field,
        values=values or {},
        upload_limit=uploads.limit_text(limit),
    )


def _form_problem(
    request: Request,
    customer: PortalCustomer,
    template: str,
    contracts: list[PortalContract],
    problem: FormProblem,
    values: dict[str, str],
) -> Response:
    """Bad input: the form again (422) with the problem named at its field; nothing was written."""
    words = Words(customer.language)
    return _request_form(
        request,
        customer,
        template,
        contracts,
        422,
        error=_problem_text(words, problem),
        error_field=problem.field,
        values=values,
    )


async def _send_to_person(
    request: Request,
    customer: PortalCustomer,
    template: str,
    contracts: list[PortalContract],
    contract: PortalContract,
    values: dict[str, str],
    page: str,
    **ask: Any,
) -> Response:
    """The request goes to the case (`_ask_person`): the page that says so, or the form again with
    the case's refusal in the customer's words (409; nothing stays)."""
    outcome = await _ask_person(request, customer, contract, **ask)
    if isinstance(outcome, case.Refused):
        words = Words(customer.language)
        error = _refusal_text(words, outcome)
        return _request_form(request, customer, template, contracts, 409, error=error, values=values)
    return _sent_page(request, customer, contract, outcome, page)


def _entered(form: FormData, *names: str) -> dict[str, str]:
    return {name: value for name in names if isinstance(value := form.get(name), str)}


async def _attachment(request: Request, form: FormData, name: str, *, required: bool) -> uploads.CheckedFile | None:
    file = uploads.chosen(form.get(name))
    if file is None:
        if required:
            raise FormProblem("portal.form.file_required", name)
        return None
    try:
        return await uploads.read(file, context(request).settings.portal_upload_bytes)
    except uploads.UploadRefused as refused:
        raise FormProblem(refused.key, name, **refused.params) from None


@router.get("/portal/dispute")
async def dispute_page(request: Request) -> Response:
    customer = require(request)
    return _request_form(request, customer, "dispute.html", _contracts(context(request), customer))


@router.post("/portal/dispute")
async def dispute_submit(request: Request) -> Response:
    customer = require(request)
    contracts = _contracts(context(request), customer)
    async with request.form() as form:
        try:
            contract = _pick(contracts, form.get("contract"))
            reason = _text(form, "reason", max_chars=MAX_DISPUTE_CHARS, required=True, multiline=True)
            attachment = await _attachment(request, form, "attachment", required=False)
        except FormProblem as problem:
            return _form_problem(
                request, customer, "dispute.html", contracts, problem, _entered(form, "contract", "reason")
            )
    with_file = f" with attachment ({attachment.content_type}, {attachment.size} bytes)" if attachment else ""
    return await _send_to_person(
        request,
        customer,
        "dispute.html",
        contracts,
        contract,
        {"contract": str(contract.contract_id), "reason": reason},
        "dispute",
        queue=RequestQueue.CLERK,
        kind=RequestKind.DISPUTE,
        summary=f"Dispute of the claim on contract {contract.masked}{with_file}",
        details={"reason": reason},
        attachment=attachment,
    )


# --- proof of payment ------------------------------------------------------------------------------


@router.get("/portal/proof")
async def proof_page(request: Request) -> Response:
    customer = require(request)
    return _request_form(request, customer, "proof.html", _contracts(context(request), customer))


@router.post("/portal/proof")
async def proof_submit(request: Request) -> Response:
    customer = require(request)
    contracts = _contracts(context(request), customer)
    async with request.form() as form:
        try:
            contract = _pick(contracts, form.get("contract"))
            amount_cents = _amount(form, "amount")
            paid_on = _date(form, "paid_on", required=False)
            if paid_on is not None and paid_on > _today():
                raise FormProblem("portal.form.not_future", "paid_on")
            remark = _text(form, "note", max_chars=MAX_NOTE_CHARS, required=False, multiline=True)
            attachment = await _attachment(request, form, "attachment", required=True)
            assert attachment is not None
        except FormProblem as problem:
            return _form_problem(
                request,
                customer,
                "proof.html",
                contracts,
                problem,
                _entered(form, "contract", "amount", "paid_on", "note"),
            )
    details = {
        "note": remark,
        "amount_cents": str(amount_cents) if amount_cents is not None else "",
        "paid_on": paid_on.isoformat() if paid_on else "",
    }
    paid = f", {money('de', amount_cents, contract.currency)}" if amount_cents is not None else ""
    on = f" paid on {paid_on.isoformat()}" if paid_on else ""
    return await _send_to_person(
        request,
        customer,
        "proof.html",
        contracts,
        contract,
        {"contract": str(contract.contract_id), "note": remark},
        "proof",
        queue=RequestQueue.FINANCE,
        kind=RequestKind.PROOF_OF_PAYMENT,
        summary=f"Proof of payment for contract {contract.masked} ({attachment.content_type}){paid}{on}",
        details=details,
        attachment=attachment,
    )


# --- new bank details -------------------------------------------------------------------------------


@router.get("/portal/bank")
async def bank_page(request: Request) -> Response:
    customer = require(request)
    return _request_form(request, customer, "bank.html", _contracts(context(request), customer))


@router.post("/portal/bank")
async def bank_submit(request: Request) -> Response:
    customer = require(request)
    contracts = _contracts(context(request), customer)
    form = await request.form()  # no file fields
    try:
        contract = _pick(contracts, form.get("contract"))
        iban = _iban(form, "iban")
        holder = _text(form, "holder", max_chars=MAX_HOLDER_CHARS, required=True, multiline=False)
        mandate = form.get("mandate")
        if mandate not in ("yes", "no"):
            raise FormProblem("portal.form.choose", "mandate")
    except FormProblem as problem:
        return _form_problem(
            request, customer, "bank.html", contracts, problem, _entered(form, "contract", "iban", "holder", "mandate")
        )
    return await _send_to_person(
        request,
        customer,
        "bank.html",
        contracts,
        contract,
        {"contract": str(contract.contract_id)},
        "bank",
        queue=RequestQueue.CLERK,
        kind=RequestKind.BANK_DETAILS,
        summary=f"New bank details for contract {contract.masked}; new SEPA direct-debit mandate wanted: {mandate}",
        details={"iban": iban.compact, "holder": holder, "mandate": str(mandate)},
    )


# --- words ------------------------------------------------------------------------------------------

texts(
    {
        # the case's refusals (core/selfservice.Verdict codes, web/public/portal/case.py's own)
        "portal.refused.no_case": (
            "Für diesen Vertrag läuft kein Mahnverfahren. Bitte wenden Sie sich an uns, wenn Sie Fragen haben.",
            "There is no dunning case for this contract. Please contact us if you have questions.",
            "Der er ikke noget inkassoforløb for denne police. Kontakt os, hvis du har spørgsmål.",
        ),
        "portal.refused.refused": (
            "Das ist gerade nicht möglich. Bitte versuchen Sie es später noch einmal oder schreiben Sie uns.",
            "This is not possible right now. Please try again later or write to us.",
            "Det er ikke muligt lige nu. Prøv igen senere, eller skriv til os.",
        ),
        "portal.refused.case_closed": (
            "Das Mahnverfahren zu diesem Vertrag ist abgeschlossen; hier ist nichts mehr zu vereinbaren.",
            "The dunning case for this contract is closed; there is nothing left to arrange here.",
            "Inkassoforløbet for denne police er afsluttet; der er ikke mere at aftale her.",
        ),
        "portal.refused.nothing_open": (
            "Auf diesem Vertrag ist nichts offen.",
            "Nothing is open on this contract.",
            "Der er intet skyldigt på denne police.",
        ),
        "portal.refused.person_decides": (
            "In diesem Stand des Verfahrens entscheidet eine Sachbearbeiterin oder ein Sachbearbeiter über jede "
            "Vereinbarung. Sie können Ihren Vorschlag dorthin schicken.",
            "At this point of the case a clerk decides on any arrangement. You can send your proposal to them.",
            "På dette trin i sagen afgør en sagsbehandler, om der kan indgås en aftale. Du kan sende dit forslag til "
            "sagsbehandleren.",
        ),
        "portal.refused.already_used": (
            "In diesem Verfahren wurde schon {allowed} Vereinbarung selbst getroffen; über eine weitere entscheidet "
            "eine Sachbearbeiterin oder ein Sachbearbeiter.",
            "{allowed} arrangement(s) have already been made yourself in this case; a clerk decides on another one.",
            "Der er allerede indgået {allowed} aftale(r) af dig selv i denne sag; en sagsbehandler afgør, om der kan "
            "indgås endnu en.",
        ),
        "portal.refused.date_missing": ("Bitte geben Sie ein Datum an.", "Please enter a date.", "Skriv en dato."),
        "portal.refused.date_not_future": (
            "Das Datum muss nach dem heutigen Tag liegen.",
            "The date must be after today.",
            "Datoen skal ligge efter i dag.",
        ),
        "portal.refused.date_in_past": (
            "Die erste Rate darf nicht in der Vergangenheit fällig sein.",
            "The first instalment cannot be due in the past.",
            "Det første afdrag kan ikke forfalde i fortiden.",
        ),
        "portal.refused.no_deferral": (
            "Für einen offenen Betrag von {balance} ist ein Aufschub hier nicht möglich.",
            "A deferral is not possible here for an open balance of {balance}.",
            "Henstand er ikke mulig her for et skyldigt beløb på {balance}.",
        ),
        "portal.refused.deferral_too_long": (
            "Ein Aufschub ist hier bis zu {days} Tage möglich, also bis zum {until}.",
            "A deferral is possible here for up to {days} days, that is until {until}.",
            "Henstand er mulig her i op til {days} dage, altså til den {until}.",
        ),
        "portal.refused.no_instalments": (
            "Für einen offenen Betrag von {balance} ist eine Ratenzahlung hier nicht möglich.",
            "Instalments are not possible here for an open balance of {balance}.",
            "Afdrag er ikke mulige her for et skyldigt beløb på {balance}.",
        ),
        "portal.refused.too_few_instalments": (
            "Eine Ratenzahlung hat mindestens 2 Raten; für eine Zahlung wählen Sie den Aufschub.",
            "An instalment plan has at least 2 instalments; for a single payment choose the deferral.",
            "En afdragsordning har mindst 2 afdrag; vælg henstand, hvis du vil betale på én gang.",
        ),
        "portal.refused.too_many_instalments": (
            "Hier sind höchstens {max} Raten von mindestens {min_amount} möglich.",
            "At most {max} instalments of at least {min_amount} are possible here.",
            "Her er højst {max} afdrag på mindst {min_amount} mulige.",
        ),
        "portal.refused.first_due_too_late": (
            "Die erste Rate muss spätestens am {latest} fällig sein.",
            "The first instalment must be due by {latest} at the latest.",
            "Det første afdrag skal forfalde senest den {latest}.",
        ),
        # form problems
        "portal.form.required": ("Bitte füllen Sie „{field}“ aus.", "Please fill in “{field}”.", "Udfyld „{field}“."),
        "portal.form.too_long": (
            "„{field}“ darf höchstens {max} Zeichen lang sein (jetzt {length}).",
            "“{field}” may be at most {max} characters long (now {length}).",
            "„{field}“ må højst være {max} tegn lang (nu {length}).",
        ),
        "portal.form.control": (
            "„{field}“ enthält unzulässige Steuerzeichen.",
            "“{field}” contains control characters that are not allowed.",
            "„{field}“ indeholder kontroltegn, som ikke er tilladt.",
        ),
        "portal.form.not_a_date": (
            "„{field}“ ist kein Datum (TT.MM.JJJJ).",
            "“{field}” is not a date (DD/MM/YYYY).",
            "„{field}“ er ikke en dato (DD.MM.ÅÅÅÅ).",
        ),
        "portal.form.not_future": (
            "„{field}“ darf nicht in der Zukunft liegen.",
            "“{field}” cannot be in the future.",
            "„{field}“ kan ikke ligge i fremtiden.",
        ),
        "portal.form.count": (
            "„{field}“ muss eine ganze Zahl von 1 bis {max} sein.",
            "“{field}” must be a whole number from 1 to {max}.",
            "„{field}“ skal være et helt tal fra 1 til {max}.",
        ),
        "portal.form.amount": (
            "„{field}“ ist kein Betrag; bitte z. B. 123,45 eingeben.",
            "“{field}” is not an amount; please enter e.g. 123.45.",
            "„{field}“ er ikke et beløb; skriv f.eks. 123,45.",
        ),
        "portal.form.choose": (
            "Bitte wählen Sie bei „{field}“ eine Möglichkeit.",
            "Please choose an option for “{field}”.",
            "Vælg en mulighed for „{field}“.",
        ),
        "portal.form.contract": (
            "Bitte wählen Sie einen Ihrer Verträge.",
            "Please choose one of your contracts.",
            "Vælg en af dine policer.",
        ),
        "portal.form.file_required": ("Bitte wählen Sie eine Datei aus.", "Please choose a file.", "Vælg en fil."),
        "portal.bank.iban.checksum": (
            "Die Prüfziffern der IBAN stimmen nicht; bitte prüfen Sie die Eingabe.",
            "The IBAN's check digits do not match; please check what you entered.",
            "IBAN-nummerets kontrolcifre passer ikke; kontrollér det, du har skrevet.",
        ),
        "portal.bank.iban.length": (
            "Die IBAN hat nicht die richtige Länge für ihr Land.",
            "The IBAN does not have the right length for its country.",
            "IBAN-nummeret har ikke den rigtige længde for sit land.",
        ),
        "portal.bank.iban.country": (
            "Die IBAN beginnt mit „{country}“; das ist kein Ländercode.",
            "The IBAN starts with “{country}”, which is not a country code.",
            "IBAN-nummeret begynder med „{country}“, som ikke er en landekode.",
        ),
        "portal.bank.iban.structure": (
            "Die IBAN ist nicht richtig aufgebaut (Kontonummer oder Bankleitzahl passen nicht zum Land).",
            "The IBAN is not built correctly (the account or bank code does not fit its country).",
            "IBAN-nummeret er ikke opbygget korrekt (konto- eller registreringsnummeret passer ikke til landet).",
        ),
        "portal.bank.iban.sepa": (
            "Konten aus {country} liegen nicht im SEPA-Raum; bitte geben Sie ein Konto im SEPA-Raum an.",
            "Accounts from {country} are outside the SEPA area; please give an account in the SEPA area.",
            "Konti fra {country} ligger uden for SEPA-området; angiv en konto i SEPA-området.",
        ),
        # field names (named in the problems)
        "portal.field.contract": ("Vertrag", "Contract", "Police"),
        "portal.field.kind": ("Art der Vereinbarung", "Kind of arrangement", "Type aftale"),
        "portal.field.instalments": ("Anzahl der Raten", "Number of instalments", "Antal afdrag"),
        "portal.field.first_due": ("Erste Rate am", "First instalment on", "Første afdrag den"),
        "portal.field.pay_by": ("Alles bezahlt bis", "Everything paid by", "Alt betalt senest"),
        "portal.field.note": ("Ihre Nachricht", "Your message", "Din besked"),
        "portal.field.reason": ("Begründung", "Reason", "Begrundelse"),
        "portal.field.attachment": ("Datei", "File", "Fil"),
        "portal.field.amount": ("Betrag", "Amount", "Beløb"),
        "portal.field.paid_on": ("Bezahlt am", "Paid on", "Betalt den"),
        "portal.field.iban": ("IBAN", "IBAN", "IBAN"),
        "portal.field.holder": ("Kontoinhaber", "Account holder", "Kontohaver"),
        "portal.field.mandate": ("SEPA-Lastschriftmandat", "SEPA direct-debit mandate", "SEPA-betalingsmandat"),
        # shared
        "portal.requests.no_contracts": (
            "Zu Ihnen gibt es keinen Vertrag in einem Mahnverfahren.",
            "You have no contract in a dunning case.",
            "Du har ingen police i et inkassoforløb.",
        ),
        "portal.requests.contract": ("Vertrag", "Contract", "Police"),
        "portal.requests.optional": ("(freiwillig)", "(optional)", "(valgfrit)"),
        "portal.requests.balance": ("Offener Betrag", "Open balance", "Skyldigt beløb"),
        "portal.requests.send": ("Absenden", "Send", "Send"),
        # arrangement
        "portal.arrangement.title": (
            "Raten oder Aufschub vereinbaren",
            "Arrange instalments or a deferral",
            "Aftal afdrag eller henstand",
        ),
        "portal.arrangement.intro": (
            "Schlagen Sie eine Ratenzahlung oder einen Aufschub vor. Innerhalb der unten genannten Grenzen ist "
            "Ihr Vorschlag sofort vereinbart; sonst geht er an eine Sachbearbeiterin oder einen Sachbearbeiter.",
            "Propose instalments or a deferral. Within the limits below your proposal is agreed at once; "
            "otherwise it goes to a clerk.",
            "Foreslå afdrag eller henstand. Inden for grænserne nedenfor er dit forslag aftalt med det samme; ellers "
            "går det videre til en sagsbehandler.",
        ),
        "portal.arrangement.switch": ("Vertrag wechseln", "Switch contract", "Skift police"),
        "portal.arrangement.possible": (
            "Was Sie selbst vereinbaren können",
            "What you can arrange yourself",
            "Det kan du selv aftale",
        ),
        "portal.arrangement.offer.instalments": (
            "Bis zu {count} monatliche Raten von mindestens {amount}; die erste Rate spätestens am {latest}.",
            "Up to {count} monthly instalments of at least {amount}; the first one due by {latest} at the latest.",
            "Op til {count} månedlige afdrag på mindst {amount}; det første forfalder senest den {latest}.",
        ),
        "portal.arrangement.offer.no_instalments": (
            "Eine Ratenzahlung ist für diesen Betrag nur mit einer Sachbearbeiterin oder einem Sachbearbeiter möglich.",
            "Instalments for this amount are only possible with a clerk.",
            "Afdrag på dette beløb er kun mulige gennem en sagsbehandler.",
        ),
        "portal.arrangement.offer.deferral": (
            "Ein Aufschub: alles bezahlt bis spätestens {until}.",
            "A deferral: everything paid by {until} at the latest.",
            "Henstand: alt betalt senest den {until}.",
        ),
        "portal.arrangement.offer.no_deferral": (
            "Ein Aufschub ist für diesen Betrag nur mit einer Sachbearbeiterin oder einem Sachbearbeiter möglich.",
            "A deferral for this amount is only possible with a clerk.",
            "Henstand for dette beløb er kun mulig gennem en sagsbehandler.",
        ),
        "portal.arrangement.kind": (
            "Was möchten Sie vorschlagen?",
            "What would you like to propose?",
            "Hvad vil du foreslå?",
        ),
        "portal.arrangement.kind.instalments": ("Monatliche Raten", "Monthly instalments", "Månedlige afdrag"),
        "portal.arrangement.kind.deferral": (
            "Aufschub: alles auf einmal bis zu einem Datum",
            "Deferral: everything at once by a date",
            "Henstand: alt på én gang senest en bestemt dato",
        ),
        "portal.arrangement.instalments": ("Anzahl der Raten", "Number of instalments", "Antal afdrag"),
        "portal.arrangement.first_due": ("Erste Rate am", "First instalment on", "Første afdrag den"),
        "portal.arrangement.pay_by": ("Alles bezahlt bis", "Everything paid by", "Alt betalt senest"),
        "portal.arrangement.note": ("Nachricht an uns", "Message to us", "Besked til os"),
        "portal.arrangement.note.hint": (
            "Nur wenn Ihr Vorschlag an eine Sachbearbeiterin oder einen Sachbearbeiter geht.",
            "Only read if your proposal goes to a clerk.",
            "Læses kun, hvis dit forslag går videre til en sagsbehandler.",
        ),
        "portal.arrangement.preview": ("Vorschau anzeigen", "Show preview", "Vis forslaget"),
        "portal.arrangement.preview.title": ("Ihr Vorschlag", "Your proposal", "Dit forslag"),
        "portal.arrangement.schedule": ("Ratenplan", "Instalment schedule", "Afdragsplan"),
        "portal.arrangement.due": ("Fällig am", "Due on", "Forfalder den"),
        "portal.arrangement.amount": ("Betrag", "Amount", "Beløb"),
        "portal.arrangement.number": ("Rate", "Instalment", "Afdrag"),
        "portal.arrangement.total": ("Summe", "Total", "I alt"),
        "portal.arrangement.deferral": (
            "{amount} bis spätestens {date} in einer Zahlung.",
            "{amount} in one payment by {date} at the latest.",
            "{amount} i én betaling senest den {date}.",
        ),
        "portal.arrangement.inside": (
            "Ihr Vorschlag liegt innerhalb der Grenzen: mit „Verbindlich vereinbaren“ gilt er sofort.",
            "Your proposal is within the limits: with “Agree now” it applies at once.",
            "Dit forslag ligger inden for grænserne: med „Aftal nu“ gælder det med det samme.",
        ),
        "portal.arrangement.outside": (
            "Diesen Vorschlag können Sie nicht selbst vereinbaren:",
            "You cannot agree this proposal yourself:",
            "Dette forslag kan du ikke selv aftale:",
        ),
        "portal.arrangement.outside.clerk": (
            "Sie können ihn als Anfrage an eine Sachbearbeiterin oder einen Sachbearbeiter schicken. "
            "Bis zur Antwort läuft das Mahnverfahren weiter.",
            "You can send it as a request to a clerk. Until they answer, the dunning case goes on.",
            "Du kan sende det som en anmodning til en sagsbehandler. Indtil du får svar, fortsætter inkassoforløbet.",
        ),
        "portal.arrangement.confirm": ("Verbindlich vereinbaren", "Agree now", "Aftal nu"),
        "portal.arrangement.request": (
            "An eine Sachbearbeiterin / einen Sachbearbeiter senden",
            "Send to a clerk",
            "Send til en sagsbehandler",
        ),
        "portal.arrangement.change": ("Vorschlag ändern", "Change the proposal", "Ret forslaget"),
        "portal.arrangement.agreed.title": ("Vereinbart", "Agreed", "Aftalt"),
        "portal.arrangement.agreed.instalments": (
            "Ihre Ratenzahlung ist vereinbart. Das Mahnverfahren ruht, solange die Raten pünktlich eingehen.",
            "Your instalment plan is agreed. Dunning is paused while the instalments arrive on time.",
            "Din afdragsordning er aftalt. Inkassoforløbet er sat på pause, så længe afdragene kommer til tiden.",
        ),
        "portal.arrangement.agreed.instalments.missed": (
            "Geht eine Rate nicht rechtzeitig ein, läuft das Mahnverfahren am nächsten Werktag weiter.",
            "If an instalment does not arrive on time, dunning resumes on the next working day.",
            "Kommer et afdrag ikke til tiden, fortsætter inkassoforløbet på den næste arbejdsdag.",
        ),
        "portal.arrangement.agreed.deferral": (
            "Ihr Aufschub ist vereinbart: bitte zahlen Sie {amount} bis spätestens {date}. Bis dahin ruht das "
            "Mahnverfahren.",
            "Your deferral is agreed: please pay {amount} by {date} at the latest. Until then dunning is paused.",
            "Din henstand er aftalt: betal {amount} senest den {date}. Indtil da er inkassoforløbet sat på pause.",
        ),
        "portal.arrangement.agreed.deferral.missed": (
            "Geht die Zahlung nicht rechtzeitig ein, läuft das Mahnverfahren weiter.",
            "If the payment does not arrive in time, dunning resumes.",
            "Kommer betalingen ikke til tiden, fortsætter inkassoforløbet.",
        ),
        "portal.arrangement.agreed.pay": ("Jetzt bezahlen", "Pay now", "Betal nu"),
        # the request pages
        "portal.dispute.title": ("Forderung bestreiten", "Dispute the claim", "Gør indsigelse mod kravet"),
        "portal.dispute.intro": (
            "Sagen Sie uns, warum die Forderung aus Ihrer Sicht nicht stimmt. Solange eine Sachbearbeiterin oder "
            "ein Sachbearbeiter das prüft, ruht das Mahnverfahren.",
            "Tell us why you think the claim is not right. While a clerk reviews it, collection is paused.",
            "Fortæl os, hvorfor du mener, at kravet ikke er korrekt. Mens en sagsbehandler gennemgår det, er "
            "inkassoforløbet sat på pause.",
        ),
        "portal.dispute.reason": ("Begründung", "Reason", "Begrundelse"),
        "portal.dispute.reason.hint": ("Höchstens {max} Zeichen.", "At most {max} characters.", "Højst {max} tegn."),
        "portal.dispute.attachment": ("Beleg", "Supporting document", "Dokumentation"),
        "portal.proof.title": (
            "Zahlungsnachweis hochladen",
            "Upload a proof of payment",
            "Upload dokumentation for betaling",
        ),
        "portal.proof.intro": (
            "Sie haben schon bezahlt? Laden Sie den Nachweis hoch (z. B. Kontoauszug oder Überweisungsbeleg); "
            "unsere Buchhaltung prüft ihn.",
            "Already paid? Upload the proof (e.g. a bank statement or a transfer receipt); our finance team checks it.",
            "Har du allerede betalt? Upload dokumentationen (f.eks. et kontoudtog eller en kvittering for "
            "overførslen); vores økonomiafdeling kontrollerer den.",
        ),
        "portal.proof.attachment": ("Nachweis", "Proof", "Dokumentation"),
        "portal.proof.amount": ("Bezahlter Betrag", "Amount paid", "Betalt beløb"),
        "portal.proof.paid_on": ("Bezahlt am", "Paid on", "Betalt den"),
        "portal.proof.note": ("Nachricht an uns", "Message to us", "Besked til os"),
        "portal.bank.title": ("Neue Bankverbindung", "New bank details", "Nye bankoplysninger"),
        "portal.bank.intro": (
            "Während eines Mahnverfahrens ändern wir die Bankverbindung nicht automatisch: eine Sachbearbeiterin "
            "oder ein Sachbearbeiter prüft Ihre Angaben und bestätigt sie Ihnen.",
            "During a dunning case we do not change bank details automatically: a clerk checks what you "
            "entered and confirms it to you.",
            "Under et inkassoforløb ændrer vi ikke bankoplysninger automatisk: en sagsbehandler kontrollerer det, du "
            "har skrevet, og bekræfter det over for dig.",
        ),
        "portal.bank.iban": ("IBAN", "IBAN", "IBAN"),
        "portal.bank.holder": ("Kontoinhaber", "Account holder", "Kontohaver"),
        "portal.bank.mandate": (
            "Sollen wir die Beiträge per SEPA-Lastschrift von diesem Konto einziehen?",
            "Should we collect the premiums from this account by SEPA direct debit?",
            "Skal vi opkræve præmierne fra denne konto via SEPA-direkte debitering?",
        ),
        "portal.bank.mandate.yes": (
            "Ja, ich möchte ein neues SEPA-Lastschriftmandat erteilen",
            "Yes, I want to give a new SEPA direct-debit mandate",
            "Ja, jeg vil give et nyt SEPA-betalingsmandat",
        ),
        "portal.bank.mandate.no": (
            "Nein, ich überweise selbst",
            "No, I pay by transfer myself",
            "Nej, jeg betaler selv med overførsel",
        ),
        "portal.sent.title": ("Ihre Anfrage ist angekommen", "Your request has arrived", "Din henvendelse er modtaget"),
        "portal.sent.number": ("Ihre Anfragenummer: {id}", "Your request number: {id}", "Dit henvendelsesnummer: {id}"),
        "portal.sent.clerk": (
            "Eine Sachbearbeiterin oder ein Sachbearbeiter antwortet innerhalb von zwei Werktagen, "
            "spätestens am {date}.",
            "A clerk will answer within two working days, by {date} at the latest.",
            "En sagsbehandler svarer inden for to arbejdsdage, senest den {date}.",
        ),
        "portal.sent.finance": (
            "Unsere Buchhaltung antwortet innerhalb von vier Werktagen, spätestens am {date}.",
            "Our finance team will answer within four working days, by {date} at the latest.",
            "Vores økonomiafdeling svarer inden for fire arbejdsdage, senest den {date}.",
        ),
        "portal.sent.agent": (
            "Ihre Vermittlerin oder Ihr Vermittler antwortet innerhalb von 24 Stunden.",
            "Your agent will answer within 24 hours.",
            "Din formidler svarer inden for 24 timer.",
        ),
        "portal.sent.arrangement": (
            "Bis zur Antwort läuft das Mahnverfahren weiter; zahlen Sie, was Sie können.",
            "Until then the dunning case goes on; please pay what you can.",
            "Indtil da fortsætter inkassoforløbet; betal gerne det, du kan.",
        ),
        "portal.sent.dispute": (
            "Das Mahnverfahren ruht, solange eine Sachbearbeiterin oder ein Sachbearbeiter Ihren Einwand prüft.",
            "Collection is paused while a clerk reviews your dispute.",
            "Inkassoforløbet er sat på pause, mens en sagsbehandler gennemgår din indsigelse.",
        ),
        "portal.sent.proof": (
            "Bis der Nachweis geprüft ist, kann das Mahnverfahren weiterlaufen.",
            "Until the proof has been checked, the dunning case may go on.",
            "Indtil dokumentationen er kontrolleret, kan inkassoforløbet fortsætte.",
        ),
        "portal.sent.bank": (
            "Wir ändern Ihre Bankverbindung erst, wenn sie geprüft ist; Sie erhalten eine Bestätigung.",
            "We change your bank details only once they are checked; you will receive a confirmation.",
            "Vi ændrer først dine bankoplysninger, når de er kontrolleret; du får en bekræftelse.",
        ),
        "portal.sent.back": ("Zur Übersicht", "Back to the overview", "Tilbage til oversigten"),
    }
)
