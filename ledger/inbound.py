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

from infra.config import Settings
from infra.observability import payment_booked
from ledger import card_reversals, debit_returns, service
from ledger.audit import touched_contract
from ledger.db import transaction_in_thread
from models.case import DunningStopped, PaymentBooked, PaymentResult, PremiumOverdue
from models.ledger import Contract, Premium
from workflows.client import notify_dunning_stopped, notify_payment, notify_payment_and_answer, start_or_join_case

T = TypeVar("T")


class EventConflict(service.LedgerError):
    """An event id seen before arrived with another payload (HTTP 409): the sender reused an id,
    or two different events collided. Answering with the first result would hide it."""


class Inbound:
    def __init__(self, engine: Engine, client: Client, settings: Settings) -> None:
        self.engine = engine
        self.client = client
        self.settings = settings

    async def in_transaction(self, work: Callable[[Session], T]) -> T:
        return await transaction_in_thread(self.engine, work)

    async def duplicate(
        self, source: str, event_id: str, payload_sha256: str | None = None
    ) -> dict[str, object] | None:
        """The recorded result if this event was processed before. With a payload digest, an event
        recorded with another digest raises EventConflict (events recorded without one, before
        migration 0010, are answered as before)."""
        event = await self.in_transaction(lambda s: service.seen_event(s, source, event_id))
        if event is None:
            return None
        if payload_sha256 is not None and event.payload_sha256 not in (None, payload_sha256):
            raise EventConflict(
                f"event_id {event_id!r} was processed before with a different payload; "
                "send a new event_id for a new event (nothing was changed)"
            )
        return dict(event.result)

    async def done(
        self, source: str, event_id: str, result: dict[str, object], payload_sha256: str | None = None
    ) -> None:
        def record(session: Session) -> None:
            if service.seen_event(session, source, event_id) is None:
                service.record_event(session, source, event_id, datetime.now(UTC), result, payload_sha256)

        try:
            await self.in_transaction(record)
        except IntegrityError:
            # The same event delivered twice at once: the other delivery recorded it first
            # (PostgreSQL does not serialise the check above the way SQLite's write lock does).
            if await self.duplicate(source, event_id) is None:
                raise

    async def dun(self, contract_number: str, premium_id: str, reason: str = "overdue") -> dict[str, object]:
        """Start or join the contract's case for an overdue premium — unless nobody may dun it: the
        contract is stopped for a person (MD07) or staff blocked the premium. Then no case starts or
        joins, and the answer says why: {"case": None, "note": …}; else {"case": workflow id}."""

        def check(session: Session) -> tuple[str | None, str]:
            contract = service.get_contract(session, contract_number)
            premium = service.get_premium(session, premium_id)
            note = service.dunning_stopped_note(contract)
            if note is None and premium.dunning_blocked:
                note = f"dunning was stopped for premium {premium_id} ({premium.dunning_block_reason})"
            return note, contract.dunning_plan or self.settings.default_plan

        note, plan = await self.in_transaction(check)
        if note is not None:
            return {"case": None, "note": note}
        handle = await start_or_join_case(
            self.client,
            self.settings.task_queue,
            contract_number,
            PremiumOverdue(premium_id=premium_id, reason=reason),
            plan,
        )
        return {"case": handle.id}

    async def open_case(self, contract_number: str, premium_id: str, reason: str = "overdue") -> str:
        """The case's workflow id; refused (LedgerError, nothing started) when nobody may dun the
        premium (see `dun`, which answers with a note instead)."""
        dunning = await self.dun(contract_number, premium_id, reason)
        if dunning["case"] is None:
            raise service.LedgerError(str(dunning["note"]))
        return str(dunning["case"])

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
        answer: bool = False,
    ) -> PaymentResult:
        """Book a payment (once per reference) and tell the contract's case about it. With `answer`
        (a payer or billing system waiting: ledger API, pay pages), wait up to PAYMENT_ANSWER_SECONDS
        for the case's answer — cover restored or the balance left — in `PaymentResult.outcome`."""
        touched_contract(contract_number)
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
        payment_booked(source, result)  # Prometheus counter (infra/observability.py); repeats count nothing
        # Signalled even when the booking is a repeat: the first attempt may have failed
        # right after booking. The case ignores a payment reference it has seen.
        booked = PaymentBooked(payment_ref=external_ref, amount_cents=amount_cents, received_at=at)
        if not answer or self.settings.payment_answer_seconds <= 0:
            await notify_payment(self.client, contract_number, booked)
            return result
        # One update carries the payment and brings the answer; should it fail, the payment is signalled.
        outcome = await notify_payment_and_answer(
            self.client, contract_number, booked, self.settings.payment_answer_seconds
        )
        return result.model_copy(update={"outcome": outcome}) if outcome is not None else result

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
        touched_contract(contract_number)
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
        if premium.status == "open" and due_date < today:
            result.update(await self.dun(contract_number, premium_id))
        return result

    async def premium_due(self, *, premium_id: str) -> dict[str, object]:
        """The billing system says this premium fell due and is unpaid: start or join its case."""

        def read(session: Session) -> tuple[Premium, str]:
            premium = service.get_premium(session, premium_id)
            contract = session.get(Contract, premium.contract_id)
            assert contract is not None  # foreign key
            return premium, contract.contract_number

        premium, contract_number = await self.in_transaction(read)
        touched_contract(contract_number)
        if premium.status != "open":
            return {"premium_id": premium_id, "case": None, "note": f"premium is {premium.status}"}
        return {"premium_id": premium_id, **(await self.dun(contract_number, premium_id))}

    async def card_payment_reversed(
        self, *, payment_intent: str, amount_cents: int, kept_cents: int, reason: str
    ) -> dict[str, object]:
        """A refund or dispute of a pay-link payment (ledger/card_reversals.py): re-open what it paid
        (a partial refund keeps the rest booked), then dun the re-opened premiums as a returned
        direct debit does. A stopped contract or a blocked premium gets a note, no case."""
        result = await self.in_transaction(
            lambda s: card_reversals.reverse_card_payment(s, payment_intent, amount_cents, kept_cents, reason)
        )
        touched_contract(result.contract_number)  # the audit trail files the refund under its contract
        reopened = result.shares or [(result.contract_number, result.premiums)]
        answer: dict[str, object] = {
            "payment_ref": card_reversals.payment_ref(payment_intent),
            "reopened": [premium for _, premiums in reopened for premium in premiums],
            "changed": result.changed,
            "case": None,
        }
        if result.shares:  # a portal payment shared among contracts: each one's premiums
            answer["contracts"] = {number: premiums for number, premiums in result.shares}
        for contract_number, premiums in reopened:
            for premium_id in premiums:
                answer.update(await self.dun(contract_number, premium_id, reason=f"Stripe {reason}"))
        return answer

    async def direct_debit_returned(self, *, payment_ref: str, reason_code: str) -> dict[str, object]:
        """Re-open what the debit paid and act on its reason code (ledger/debit_returns.py); then
        tell the cases: dun the re-opened premiums, or — MD07 — tell the running case to stop.

        The stop signal goes out whenever the contract is stopped for this code, also for a repeat
        of the return: the first attempt may have failed after the commit, before the signal."""
        debit_returns.rule_for(reason_code)  # an unknown code is refused before anything is read
        outcome = await self.in_transaction(
            lambda s: debit_returns.apply_return(s, payment_ref, reason_code, datetime.now(UTC))
        )
        touched_contract(outcome.contract_number)
        result: dict[str, object] = {
            "payment_ref": payment_ref,
            "reopened": outcome.reopened,
            "changed": outcome.changed,
            "case": None,
            "actions": outcome.actions,
        }
        for premium_id in outcome.dunned:
            why = f"direct debit returned ({outcome.code})"
            result.update(await self.dun(outcome.contract_number, premium_id, reason=why))
        if outcome.stopped:
            told = await notify_dunning_stopped(
                self.client, outcome.contract_number, DunningStopped(code=outcome.code, reason=outcome.stop_reason)
            )
            result["case_stopped"] = told
            result["note"] = (
                f"{outcome.code}: automated dunning stopped for the contract until a person releases it; "
                "a back-office task was created" + ("; the running case was told to hold" if told else "")
            )
        return result
