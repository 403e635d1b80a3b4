"""Everything that comes in from outside and moves money or cases: ledger events, provider
payments (built-in test provider now, Stripe later), staff bookings through the API.

Order of work, so nothing is lost or booked twice: (1) the ledger change, idempotent on its
key; (2) the Temporal call, idempotent on the workflow side; (3) only then the event id is
recorded as processed. A failure between the steps makes the sender retry, and the retry
repeats (1) and (2) harmlessly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from temporalio.client import Client

from config import Settings
from ledger import service
from ledger.db import transaction_in_thread
from models.case import PaymentBooked, PaymentResult, PremiumOverdue
from models.ledger import AgentTask, Contract, Premium
from observability import payment_booked
from workflows.client import notify_payment, start_or_join_case

T = TypeVar("T")

# SEPA return reason codes (DOMAIN.md §6) and what the engine does with them.
REDUN = {"AM04", "MS02", "MS03", "MD06"}  # re-open the premium and dun at once
SWITCH_TO_SELF_PAYMENT = {"AC01", "AC04", "AC06", "MD01"}  # account/mandate unusable: customer pays himself
TO_A_PERSON = {"MD07"}  # debtor deceased: no automated dunning
KNOWN_RETURN_CODES = REDUN | SWITCH_TO_SELF_PAYMENT | TO_A_PERSON


class Inbound:
    def __init__(self, engine: Engine, client: Client, settings: Settings) -> None:
        self.engine = engine
        self.client = client
        self.settings = settings

    async def in_transaction(self, work: Callable[[Session], T]) -> T:
        return await transaction_in_thread(self.engine, work)

    async def duplicate(self, source: str, event_id: str) -> dict[str, object] | None:
        """The recorded result if this event was processed before."""
        event = await self.in_transaction(lambda s: service.seen_event(s, source, event_id))
        return dict(event.result) if event is not None else None

    async def done(self, source: str, event_id: str, result: dict[str, object]) -> None:
        def record(session: Session) -> None:
            if service.seen_event(session, source, event_id) is None:
                service.record_event(session, source, event_id, datetime.now(UTC), result)

        try:
            await self.in_transaction(record)
        except IntegrityError:
            # The same event delivered twice at once: the other delivery recorded it first
            # (PostgreSQL does not serialise the check above the way SQLite's write lock does).
            if await self.duplicate(source, event_id) is None:
                raise

    async def plan_for(self, contract_number: str) -> str:
        contract = await self.in_transaction(lambda s: service.get_contract(s, contract_number))
        return contract.dunning_plan or self.settings.default_plan

    async def open_case(self, contract_number: str, premium_id: str, reason: str = "overdue") -> str:
        plan = await self.plan_for(contract_number)
        handle = await start_or_join_case(
            self.client,
            self.settings.task_queue,
            contract_number,
            PremiumOverdue(premium_id=premium_id, reason=reason),
            plan,
        )
        return handle.id

    # --- payments ----------------------------------------------------------------------------

    async def payment(
        self,
        *,
        contract_number: str,
        external_ref: str,
        amount_cents: int,
        source: str,
        received_at: datetime | None = None,
        premium_id: str | None = None,
    ) -> PaymentResult:
        """Book a payment (once per reference) and tell the contract's case about it."""
        at = received_at or datetime.now(UTC)
        result = await self.in_transaction(
            lambda s: service.book_payment(
                s,
                contract_number=contract_number,
                external_ref=external_ref,
                amount_cents=amount_cents,
                received_at=at,
                source=source,
                designated_premium=premium_id,
            )
        )
        payment_booked(source, result)  # Prometheus counter (observability.py); repeats count nothing
        # Signalled even when the booking is a repeat: the first attempt may have failed
        # right after booking. The case ignores a payment reference it has seen.
        await notify_payment(
            self.client, contract_number, PaymentBooked(payment_ref=external_ref, amount_cents=amount_cents)
        )
        return result

    async def known_payment_ref(self, *candidates: str) -> str:
        """The first reference the ledger knows; else the last (so an error names what was sent)."""

        def first_known(session: Session) -> str:
            return next((ref for ref in candidates if service.find_payment(session, ref)), candidates[-1])

        return await self.in_transaction(first_known)

    # --- premiums ----------------------------------------------------------------------------

    async def premium_booked(
        self,
        *,
        premium_id: str,
        contract_number: str,
        period_start: date,
        period_end: date,
        due_date: date,
        amount_cents: int,
        today: date,
    ) -> dict[str, object]:
        premium, created = await self.in_transaction(
            lambda s: service.book_premium(
                s,
                external_id=premium_id,
                contract_number=contract_number,
                period_start=period_start,
                period_end=period_end,
                due_date=due_date,
                amount_cents=amount_cents,
            )
        )
        result: dict[str, object] = {"premium_id": premium_id, "booked": created, "case": None}
        # Default starts the day after the due date (§286(2) BGB): a premium booked late joins at once.
        if premium.status == "open" and due_date < today and not premium.dunning_blocked:
            result["case"] = await self.open_case(contract_number, premium_id)
        return result

    async def premium_due(self, *, premium_id: str) -> dict[str, object]:
        """The billing system says this premium fell due and is unpaid: start or join its case."""

        def read(session: Session) -> tuple[Premium, str]:
            premium = service.get_premium(session, premium_id)
            contract = session.get(Contract, premium.contract_id)
            assert contract is not None  # foreign key
            return premium, contract.contract_number

        premium, contract_number = await self.in_transaction(read)
        if premium.status != "open":
            return {"premium_id": premium_id, "case": None, "note": f"premium is {premium.status}"}
        if premium.dunning_blocked:
            return {"premium_id": premium_id, "case": None, "note": "dunning was stopped for this premium by staff"}
        return {"premium_id": premium_id, "case": await self.open_case(contract_number, premium_id)}

    async def direct_debit_returned(self, *, payment_ref: str, reason_code: str) -> dict[str, object]:
        code = reason_code.upper()
        if code not in KNOWN_RETURN_CODES:
            raise service.LedgerError(f"reason_code must be one of {sorted(KNOWN_RETURN_CODES)}, got {reason_code!r}")

        def reverse(session: Session) -> tuple[str, list[str], bool]:
            payment, reopened, changed = service.reverse_payment(session, payment_ref, code)
            contract = session.get(Contract, payment.contract_id)
            assert contract is not None
            if code in SWITCH_TO_SELF_PAYMENT:
                contract.payment_method = "self_payment"
                session.add(contract)
            if code in TO_A_PERSON and changed:
                service.block_dunning(session, contract.contract_number, date.max)
                service.add_agent_task(
                    session,
                    AgentTask(
                        idempotency_key=f"ddreturn:{payment_ref}",
                        case_id="",
                        contract_id=contract.id or 0,
                        agent_code="backoffice",
                        kind="manual_review",
                        open_cents=payment.amount_cents,
                        created_at=datetime.now(UTC),
                        due_at=datetime.now(UTC),
                    ),
                )
            return contract.contract_number, reopened, changed

        contract_number, reopened, changed = await self.in_transaction(reverse)
        result: dict[str, object] = {"payment_ref": payment_ref, "reopened": reopened, "changed": changed, "case": None}
        if code not in TO_A_PERSON:
            for premium_id in reopened:
                result["case"] = await self.open_case(
                    contract_number, premium_id, reason=f"direct debit returned ({code})"
                )
        else:
            result["note"] = "MD07: automated dunning stopped; a back-office task was created"
        return result
