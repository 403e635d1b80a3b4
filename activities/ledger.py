"""Activities that read and write the ledger. Each is idempotent on its key."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.calendar import next_working_day
from core.interest import BUSINESS_FLAT_FEE_CENTS, MARGIN_PERCENT, default_interest, total_cents
from ledger import case_register, service
from ledger.db import session_scope
from ledger.interest_claims import FLAT_FEE_LABEL, flat_fees_booked
from models.activities import (
    ApproveCourtApplication,
    BookPayment,
    CaseClosed,
    ChangeContractStatus,
    CloseCase,
    CourtApplicationPrepared,
    LoadArrears,
    PrepareCourtApplication,
)
from models.case import Arrears, OpenItem, PaymentResult
from models.ledger import CourtApplication, CustomerKind, Fee
from models.rates import load_base_rates

COURT_FEE_MINIMUM_CENTS = 3800  # GKG Nr. 1100, half fee, minimum since 2025-06-01


def court_interest(
    items: list[OpenItem],
    kind: CustomerKind,
    as_of: date,
    state: str | None,
    already_booked: dict[str, int] | None = None,
) -> list[dict[str, object]]:
    """Default interest per premium as a side claim (§690 ZPO): rate and period, accrued to `as_of`.

    Default starts the day after the due date, which is first moved to a working day (§§193, 286 BGB).
    Interest a notice already claimed is a ledger item (`already_booked`, per premium): it is among
    the costs, or paid; the side claim is only what accrued beyond it (`claimed_cents`), never twice.
    """
    lines: list[dict[str, object]] = []
    table = load_base_rates()
    for item in items:
        default_from = next_working_day(item.due_date, "DE", state or None) + timedelta(days=1)
        periods = default_interest(item.open_cents, default_from, max(as_of, default_from), kind, table)
        accrued = total_cents(periods)
        booked = (already_booked or {}).get(item.premium_id, 0)
        lines.append(
            {
                "premium_id": item.premium_id,
                "principal_cents": item.open_cents,
                "interest_from": default_from.isoformat(),
                "margin": f"base rate + {MARGIN_PERCENT[kind]} percentage points (§288 BGB)",
                "accrued_to": as_of.isoformat(),
                "accrued_cents": accrued,
                "already_booked_cents": booked,  # claimed by a notice: in the costs, or paid
                "claimed_cents": max(accrued - booked, 0),
                "periods": [
                    {
                        "from": p.start.isoformat(),
                        "to": p.end.isoformat(),
                        "days": p.days,
                        "rate_percent": str(p.rate_percent),
                        "cents": p.cents,
                    }
                    for p in periods
                ],
            }
        )
    return lines


def court_flat_fee(kind: CustomerKind, case_id: str, booked: list[Fee]) -> dict[str, object] | None:
    """The 40 EUR flat fee of §288(5) BGB as a side claim of the application, or None.

    Only a debtor who is not a consumer owes it. It is owed once per default, so it is claimed here
    only if this case has not booked it already (a plan that claims interest books it with the
    notice; then it is among the costs, or paid). A flat fee still open from an earlier case of the
    contract is among the costs too; listing it again would claim 40 EUR twice.
    """
    if kind != CustomerKind.BUSINESS:
        return None
    if any(f.case_id == case_id or (f.paid_cents < f.amount_cents and not f.written_off) for f in booked):
        return None
    return {"label": FLAT_FEE_LABEL, "amount_cents": BUSINESS_FLAT_FEE_CENTS, "basis": "§ 288 Abs. 5 BGB"}


def non_retryable(error: ValueError) -> ApplicationError:
    """Bad data will not get better by retrying: fail the activity at once, with the reason."""
    return ApplicationError(str(error), type=type(error).__name__, non_retryable=True)


class LedgerActivities:
    def __init__(self, engine: Engine, court_state: str | None = None) -> None:
        self.engine = engine
        self.court_state = court_state  # where the insurer's court applications go (config.court_state)

    @activity.defn
    def load_arrears(self, request: LoadArrears) -> Arrears:
        try:
            with session_scope(self.engine) as session:
                arrears = service.arrears(session, request.contract_number, request.as_of)
                if request.case_id is not None:  # the case's first read opens its register row
                    case_register.open_case(
                        session,
                        case_id=request.case_id,
                        contract=service.get_contract(session, request.contract_number),
                        plan_id=request.plan_id,
                        opened_at=request.opened_at or case_register.opened_at_of(request.case_id) or datetime.now(UTC),
                        claimed_cents=arrears.balance_cents,
                    )
                return arrears
        except service.LedgerError as error:
            raise non_retryable(error) from error

    @activity.defn
    def change_contract_status(self, request: ChangeContractStatus) -> bool:
        try:
            with session_scope(self.engine) as session:
                return service.set_contract_status(
                    session,
                    contract_number=request.contract_number,
                    to_status=request.to_status,
                    reason=request.reason,
                    key=request.key,
                    at=request.effective_at or request.at,
                    case_id=request.case_id,
                    recorded_at=request.at,
                    only_with_arrears=request.only_with_arrears,
                )
        except service.LedgerError as error:
            raise non_retryable(error) from error

    @activity.defn
    def book_payment(self, request: BookPayment) -> PaymentResult:
        try:
            with session_scope(self.engine) as session:
                return service.book_payment(
                    session,
                    contract_number=request.contract_number,
                    external_ref=request.external_ref,
                    amount_cents=request.amount_cents,
                    received_at=request.received_at,
                    source=request.source,
                    designated_premium=request.premium_id,
                )
        except service.LedgerError as error:
            raise non_retryable(error) from error

    @activity.defn
    def prepare_court_application(self, request: PrepareCourtApplication) -> CourtApplicationPrepared:
        """The Mahnbescheid application (§690 ZPO) as a structured record for a person to review."""
        try:
            with session_scope(self.engine) as session:
                contract = service.get_contract(session, request.contract_number)
                customer = service.get_customer(session, contract)
                state = service.arrears(session, request.contract_number, service.ledger_date(request.now))
                fees = service.open_fees(session, contract.id or 0)
                record: dict[str, object] = {
                    "case_id": request.case_id,
                    "contract_number": contract.contract_number,
                    "debtor_customer_number": customer.customer_number,
                    "principal": [
                        {
                            "premium_id": i.premium_id,
                            "period": i.period,
                            "due_date": i.due_date.isoformat(),
                            "amount_cents": i.open_cents,
                        }
                        for i in state.items
                    ],
                    "costs": [{"label": f.label, "amount_cents": f.amount_cents - f.paid_cents} for f in fees],
                    "interest": court_interest(
                        state.items,
                        customer.kind,
                        service.ledger_date(request.now),
                        customer.state,
                        {
                            i.premium_id: service.interest_claimed(
                                session, service.get_premium(session, i.premium_id).id or 0
                            )
                            for i in state.items
                        },
                    ),
                    # A side claim like the interest: owed by law, not a ledger item, so not in claimed_cents.
                    "flat_fee": court_flat_fee(
                        customer.kind, request.case_id, flat_fees_booked(session, contract.id or 0)
                    ),
                    "court_fee_estimate_cents": COURT_FEE_MINIMUM_CENTS,
                    "claimed_cents": state.balance_cents,
                    "prepared_at": request.now.isoformat(),
                }
                application = service.add_court_application(
                    session,
                    CourtApplication(
                        case_id=request.case_id, contract_id=contract.id or 0, record=record, prepared_at=request.now
                    ),
                )
                return CourtApplicationPrepared(
                    application_id=application.id or 0,
                    claimed_cents=state.balance_cents,
                    court_state=self.court_state,
                )

        except service.LedgerError as error:
            raise non_retryable(error) from error

    @activity.defn
    def approve_court_application(self, request: ApproveCourtApplication) -> int:
        try:
            with session_scope(self.engine) as session:
                application = service.approve_court_application(session, request.case_id, request.approver, request.now)
                return application.id or 0
        except service.LedgerError as error:
            raise non_retryable(error) from error

    @activity.defn
    def close_case(self, request: CloseCase) -> CaseClosed:
        try:
            with session_scope(self.engine) as session:
                before = case_register.find(session, request.case_id)
                result = CaseClosed(closed_now=before is None or before.closed_at is None)
                if request.action == "write_off":
                    result.written_off_cents = service.write_off(session, request.contract_number, request.as_of)
                elif request.action == "cancel":
                    # Staff cancelled the case (e.g. the premium was booked in error): its premiums
                    # leave the arrears for good, so no later notice or case claims them again.
                    result.blocked_premiums = service.block_dunning(
                        session, request.contract_number, request.as_of, service.cancellation_reason(request.reason)
                    )
                result.tasks_closed = service.close_agent_tasks(session, request.case_id, f"case {request.action}")
                case_register.close_case(
                    session,
                    case_id=request.case_id,
                    contract=service.get_contract(session, request.contract_number),
                    action=request.action,
                    stage=request.stage,
                    now=request.now,
                )
                return result
        except service.LedgerError as error:
            raise non_retryable(error) from error
