"""What the engine tells a customer is always true, and a cleared balance restores cover at once
(issue #11). Time-skipping server, the real worker, payments through the real ledger route."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import select
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import ledger as ledger_activities
from activities.messaging import Outbox
from core.calendar import add_months, expected_receipt, start_of_day, termination_cure_deadline
from core.coverage import status_at
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from models import inputs
from models.activities import SendMessage, SentMessage
from models.case import CaseStage, CaseStatus, EscalateNow, Resume, TerminationDecision
from models.ledger import ContractStatusChange, Message
from models.messages import Channel, MessageKind
from models.plans import get_plan
from tests.conftest import seed_contract
from tests.helpers import advance_until, berlin_today, contract_status, messages, open_case, status
from workflows.client import notify_dunning_stopped
from workflows.dunning import DunningCase

CONTRACT = "K-100001"
Case = WorkflowHandle[DunningCase, CaseStatus]


@pytest.fixture(autouse=True)
def server_clock_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    """The payments here carry the test server's clock, which runs ahead of the wall clock the API
    checks "not in the future" against (docs/input-rules.md): allow that in this module only."""
    monkeypatch.setattr(inputs, "CLOCK_SKEW", timedelta(days=100 * 366))


async def pay(api: httpx.AsyncClient, ref: str, cents: int, received_at: datetime) -> dict[str, Any]:
    """As the billing system reports it; the receipt time is the test server's clock (which runs
    ahead of the wall clock), so the ledger dates the payment on the case's day."""
    event: dict[str, Any] = {
        "type": "payment_received",
        "event_id": f"evt-{ref}",
        "contract_number": CONTRACT,
        "payment_ref": ref,
        "amount_cents": cents,
    }
    event["received_at"] = received_at.isoformat()
    response = await api.post("/api/ledger/events", json=event)
    assert response.status_code == 200, response.text
    return cast(dict[str, Any], response.json()["result"])


async def eventually(check: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    """Wait (real time, generous) for something the worker does while the test holds a send back."""
    for _ in range(int(seconds * 10)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened within {seconds} s: {what}")


def status_changes(engine: Engine) -> list[ContractStatusChange]:
    with session_scope(engine) as session:
        return list(session.exec(select(ContractStatusChange).order_by(ContractStatusChange.id)))  # type: ignore[arg-type]


def text(message: Message) -> str:
    """Whitespace-insensitive body: babel puts a no-break space before the euro sign."""
    return " ".join(message.body_text.split())


def as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class HeldSends:
    """Holds chosen sends back inside the activity (as a slow letter renderer or a provider outage
    would) until the test releases them; everything else passes straight through."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, kinds: set[MessageKind]) -> None:
        self.kinds, self.entered, self.gate = kinds, threading.Event(), threading.Event()
        original = Outbox._send

        def held(outbox: Outbox, request: SendMessage) -> SentMessage:
            if request.kind in self.kinds and not self.gate.is_set():
                self.entered.set()
                self.gate.wait(timeout=120)
            return original(outbox, request)

        monkeypatch.setattr(Outbox, "_send", held)

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 60), "the held send never started"


async def suspended_case(time_env: WorkflowEnvironment, engine: Engine, settings: Settings, **contact: Any) -> Case:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today, 12_000)], **contact)
    handle = await open_case(time_env, settings.task_queue, CONTRACT, "P-1")
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.SUSPENDED)
    assert contract_status(engine, CONTRACT) == "suspended"
    return handle


# --- 1 and 2: a full payment right after a partial one ------------------------------------------


async def test_a_full_payment_while_the_receipt_letter_goes_out_reactivates_at_once_with_one_receipt(
    time_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    settings: Settings,
    api: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handle = await suspended_case(time_env, engine, settings, email=None)  # receipts by letter
    balance = (await status(handle)).balance_cents
    held = HeldSends(monkeypatch, {MessageKind.PAYMENT_RECEIPT})

    await pay(api, "part-1", 5_000, await time_env.get_current_time())
    await held.wait_entered()  # the receipt letter for 50.00 is being sent ...
    paid_at = await time_env.get_current_time()
    await pay(api, "rest", balance - 5_000, received_at=paid_at)  # ... when the rest comes in

    # The balance is zero: cover is back before the receipt letter has even finished.
    await eventually(lambda: contract_status(engine, CONTRACT) == "active", "contract reactivated")
    assert not held.gate.is_set()
    held.gate.set()
    result = await handle.result()

    assert result.stage == CaseStage.PAID and result.balance_cents == 0
    sent = [(m.kind, m.channel) for m in messages(engine, CONTRACT) if m.kind not in ("reminder", "qualified_notice")]
    assert sent == [("payment_receipt", "letter"), ("reactivation", "letter")]  # one receipt, one confirmation
    receipt = next(m for m in messages(engine, CONTRACT) if m.kind == "payment_receipt")
    assert "vielen Dank für Ihre Zahlung von 50,00 €" in text(receipt)
    reactivation = status_changes(engine)[-1]
    assert (reactivation.from_status, reactivation.to_status) == ("suspended", "active")
    assert as_utc(reactivation.effective_at) == paid_at


async def test_the_ledger_api_answers_with_what_the_payment_did_cover_restored_or_the_balance_left(
    time_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    settings: Settings,
    api: httpx.AsyncClient,
) -> None:
    """Issue #15 P2: the billing system learns at once whether cover is back (the case's answer to
    the payment, update `payment_outcome`); when the API answers "restored", the ledger says so too."""
    handle = await suspended_case(time_env, engine, settings)
    balance = (await status(handle)).balance_cents

    partial = await pay(api, "part-1", 5_000, await time_env.get_current_time())
    assert partial["outcome"] == {
        "payment_ref": "ledger:part-1",
        "balance_cents": balance - 5_000,
        "contract_status": "suspended",
        "cover_restored": False,
        "on_hold": False,
        "closed": False,
    }

    rest = await pay(api, "rest-1", balance - 5_000, await time_env.get_current_time())
    assert rest["outcome"]["cover_restored"] is True and rest["outcome"]["contract_status"] == "active"
    assert rest["outcome"]["balance_cents"] == 0
    assert contract_status(engine, CONTRACT) == "active"  # already when the API answered
    assert (await handle.result()).stage == CaseStage.PAID  # then it confirms and closes


async def test_a_payment_signalled_while_the_case_reads_the_ledger_is_not_missed(
    time_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    settings: Settings,
    api: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The read the case takes after a payment can finish just before the next payment is booked:
    that payment must wake the case again (CI once saw a contract stay suspended at balance 0)."""
    handle = await suspended_case(time_env, engine, settings, email=None)
    balance = (await status(handle)).balance_cents
    held = HeldSends(monkeypatch, {MessageKind.PAYMENT_RECEIPT})
    read_done, read_gate, armed = threading.Event(), threading.Event(), threading.Event()
    original_scope = ledger_activities.session_scope

    @contextmanager
    def slow_read(engine: Engine) -> Iterator[Any]:
        with original_scope(engine) as session:
            yield session
        if activity.in_activity() and activity.info().activity_type == "load_arrears" and armed.is_set():
            armed.clear()
            read_done.set()  # the ledger was read (and its transaction closed) ...
            read_gate.wait(timeout=120)  # ... and the answer is still on its way to the case

    monkeypatch.setattr(ledger_activities, "session_scope", slow_read)

    await pay(api, "part-1", 5_000, await time_env.get_current_time())
    await held.wait_entered()  # the receipt for 50.00 is being sent
    armed.set()
    await pay(api, "part-2", 3_000, await time_env.get_current_time())
    assert await asyncio.to_thread(read_done.wait, 60), "the case never read the ledger after part-2"
    await pay(api, "rest", balance - 8_000, await time_env.get_current_time())  # booked after that read
    read_gate.set()

    await eventually(lambda: contract_status(engine, CONTRACT) == "active", "contract reactivated")
    assert not held.gate.is_set()  # while the first receipt is still stuck
    held.gate.set()
    result = await handle.result()
    assert result.stage == CaseStage.PAID and result.balance_cents == 0


async def test_a_receipt_states_the_amount_of_the_payment_it_answers(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, api: httpx.AsyncClient
) -> None:
    handle = await suspended_case(time_env, engine, settings)
    await pay(api, "part-1", 4_321, await time_env.get_current_time())
    await advance_until(time_env, handle, lambda s: s.balance_cents == 12_150 - 4_321, step=timedelta(minutes=1))
    await advance_until(
        time_env,
        handle,
        lambda s: any(m.kind == "payment_receipt" for m in messages(engine, CONTRACT)),
        step=timedelta(seconds=1),
    )
    receipt = next(m for m in messages(engine, CONTRACT) if m.kind == "payment_receipt")
    assert "vielen Dank für Ihre Zahlung von 43,21 €" in text(receipt)
    assert "noch ein Betrag von 78,29 € offen" in text(receipt)
    # The outbox holds the receipt before its send has finished: end with the case idle (a case terminated
    # in the middle of a send leaves the time-skipping server unable to skip time for the next test).
    await advance_until(
        time_env,
        handle,
        lambda s: any("receipt sent" in line.text for line in s.journal),
        step=timedelta(seconds=1),
    )


# --- 3: reactivation effective when the customer paid, however late a worker records it ----------


async def test_cover_returns_from_the_moment_of_payment_however_late_the_case_records_it(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, api: httpx.AsyncClient
) -> None:
    handle = await suspended_case(time_env, engine, settings)
    balance = (await status(handle)).balance_cents
    # The money came in at 12:41:02; the feed (or a worker that was down) brings it 30 s later.
    paid_at = await time_env.get_current_time() - timedelta(seconds=30)
    await pay(api, "late-feed", balance, received_at=paid_at)
    result = await handle.result()

    assert result.stage == CaseStage.PAID
    reactivation = status_changes(engine)[-1]
    assert reactivation.to_status == "active"
    assert as_utc(reactivation.effective_at) == paid_at  # when the money came ...
    assert reactivation.recorded_at is not None
    assert as_utc(reactivation.recorded_at) >= paid_at + timedelta(seconds=30)  # ... not when it was written
    with session_scope(engine) as session:
        history = service.coverage_history(session, CONTRACT)
    assert status_at(history, paid_at + timedelta(seconds=8)).covered  # "covered at 12:41:10?" — yes
    assert not status_at(history, paid_at - timedelta(seconds=1)).covered


# --- 5: the confirmation says what happened -------------------------------------------------------


FALSE_FOR_THE_NEVER_SUSPENDED = ("besteht wieder", "kein Versicherungsschutz", "wiederhergestellt")


async def test_a_customer_who_pays_at_the_reminder_is_not_told_cover_was_restored(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, api: httpx.AsyncClient
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today, 12_000)])
    handle = await open_case(time_env, settings.task_queue, CONTRACT, "P-1")
    reminded = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.REMINDED)

    await pay(api, "at-reminder", reminded.balance_cents, await time_env.get_current_time())
    result = await handle.result()

    assert result.stage == CaseStage.PAID
    confirmation = messages(engine, CONTRACT)[-1]
    assert confirmation.kind == "paid_in_full"
    for untrue in FALSE_FOR_THE_NEVER_SUSPENDED:
        assert untrue not in text(confirmation), untrue
    assert status_changes(engine) == []  # cover never lapsed, nothing to restore


# --- 6: the termination letter and the cure month from its receipt ------------------------------


async def terminated(time_env: WorkflowEnvironment, engine: Engine, settings: Settings) -> tuple[Case, datetime]:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today, 10_000)])
    handle = await open_case(time_env, settings.task_queue, CONTRACT, "P-1", plan_id="de-follow-up-terminate")
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.TERMINATION_APPROVAL)
    before = {m.id for m in messages(engine, CONTRACT)}
    approved_at = await time_env.get_current_time()
    approved = await handle.execute_update(
        "approve_termination", TerminationDecision(by="J. Richter"), result_type=CaseStatus
    )
    assert approved.stage == CaseStage.TERMINATED
    new = [m for m in messages(engine, CONTRACT) if m.id not in before]
    # The approval sends the termination letter (with its e-mail copy), and nothing else.
    assert [(m.kind, m.channel) for m in new] == [("termination_letter", "letter"), ("termination_letter", "email")]
    return handle, approved_at


async def test_an_approved_termination_is_sent_as_a_letter_and_takes_effect_on_its_expected_receipt(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    handle, approved_at = await terminated(time_env, engine, settings)
    plan = get_plan("de-follow-up-terminate")
    receipt = expected_receipt(plan, approved_at, Channel.LETTER, "NW")
    last_day, _ = termination_cure_deadline(plan, approved_at, Channel.LETTER, "NW")

    letter = next(m for m in messages(engine, CONTRACT) if m.kind == "termination_letter" and m.channel == "letter")
    assert letter.pdf is not None and letter.total_cents == 10_150
    assert "101,50 €" in text(letter) and "§ 38 Abs. 3" in text(letter)
    assert f"{receipt:%d.%m.%Y}" in text(letter) and f"{last_day:%d.%m.%Y}" in text(letter)
    assert "/pay/" in text(letter)
    termination = status_changes(engine)[-1]
    assert (termination.from_status, termination.to_status) == ("suspended", "terminated")
    assert as_utc(termination.effective_at) == start_of_day(receipt, "Europe/Berlin")
    with session_scope(engine) as session:
        notices = [n for n in service_notices(session) if n == letter.id]
    assert notices == [letter.id]  # a qualified message: listed with the notices, evidence can be recorded


def service_notices(session: Any) -> list[int]:
    from ledger.evidence import NOTICE_KINDS

    rows = session.exec(select(Message).where(Message.kind.in_(NOTICE_KINDS)))  # type: ignore[attr-defined]
    return [m.id for m in rows]


async def test_paying_within_a_month_of_the_letters_receipt_voids_the_termination(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, api: httpx.AsyncClient
) -> None:
    handle, approved_at = await terminated(time_env, engine, settings)
    plan = get_plan("de-follow-up-terminate")
    _, cure_expires = termination_cure_deadline(plan, approved_at, Channel.LETTER, "NW")
    # One month and a day after the approval — too late if the month ran from the approval, in time
    # when it runs from the letter's receipt (three working days later).
    pay_day = add_months(berlin_today(approved_at), 1) + timedelta(days=1)
    paid_at = start_of_day(pay_day, "Europe/Berlin") + timedelta(hours=12)
    assert paid_at < cure_expires
    await time_env.sleep(paid_at - await time_env.get_current_time())
    await pay(api, "cure", 10_150, received_at=paid_at)
    result = await handle.result()

    assert result.stage == CaseStage.PAID
    assert contract_status(engine, CONTRACT) == "active"
    assert [(c.from_status, c.to_status) for c in status_changes(engine)][-1] == ("terminated", "active")
    confirmation = messages(engine, CONTRACT)[-1]
    assert confirmation.kind == "termination_void"


async def test_paying_after_the_cure_month_says_the_termination_stands(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings, api: httpx.AsyncClient
) -> None:
    handle, approved_at = await terminated(time_env, engine, settings)
    plan = get_plan("de-follow-up-terminate")
    _, cure_expires = termination_cure_deadline(plan, approved_at, Channel.LETTER, "NW")
    await time_env.sleep(cure_expires - await time_env.get_current_time() + timedelta(hours=1))
    await pay(api, "late", 10_150, await time_env.get_current_time())
    result = await handle.result()

    assert result.stage == CaseStage.PAID and contract_status(engine, CONTRACT) == "terminated"
    confirmation = messages(engine, CONTRACT)[-1]
    assert confirmation.kind == "paid_after_termination"
    assert "besteht wieder" not in text(confirmation)


# --- 4 (the case's side): MD07 stops the running case ---------------------------------------------


async def test_a_stopped_case_sends_nothing_more_and_only_a_person_moves_it_on(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    from models.case import DunningStopped

    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today, 12_000)])
    handle = await open_case(time_env, settings.task_queue, CONTRACT, "P-1")
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.REMINDED)
    sent_before = len(messages(engine, CONTRACT))

    stop = DunningStopped(code="MD07", reason="debtor deceased")
    assert await notify_dunning_stopped(time_env.client, CONTRACT, stop)
    stopped = await advance_until(time_env, handle, lambda s: s.hold is not None, step=timedelta(seconds=1))
    assert stopped.hold is not None and stopped.hold.kind == "stopped"
    await time_env.sleep(timedelta(days=60))
    assert len(messages(engine, CONTRACT)) == sent_before  # no notice, no SMS
    assert (await status(handle)).stage == CaseStage.REMINDED
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(DunningCase.escalate_now, EscalateNow(reason="hurry"))

    resumed = await handle.execute_update(DunningCase.resume, Resume(reason="estate confirmed", by="J. Richter"))
    assert resumed.hold is None
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.NOTICE_SENT)
