"""The dunning case: one workflow per contract (`dunning-<contract number>`).

It interprets the case's pinned dunning plan step by step: reminder → qualified notice →
cover suspended → SMS with pay link → agency handover → court dunning (after a person
approves). At any moment a payment re-reads the ledger: a partial payment sends a receipt with
the new balance and a fresh pay link and re-anchors the next step on the oldest unpaid item; a
cleared balance reactivates the contract at once, confirms, and ends the case.

The rules live in the pure decider `core/case/` (`decide(case, event, now) -> new case + commands`);
this workflow is its shell: it feeds every signal, update and answer in as an event and performs the
commands as activities, timers and child workflows. Money and time rules live in `core/`; every
side effect is an activity keyed by case id + step.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.workflow import ParentClosePolicy

from workflows.common import ACTIVITY_TIMEOUT, RETRY

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from activities.messaging import Outbox
    from activities.portal import PortalActivities
    from core.case import commands as c
    from core.case import events as e
    from core.case.decider import (
        CONFIRMATION_PER_SITUATION,
        PAYMENTS_REREAD_LEDGER,
        SUPPLEMENTARY_NOTICES,
        TERMINATION_LETTER,
        WRITE_OFF_REREADS_LEDGER,
        case_status,
        decide,
        open_case,
        payment_outcome,
    )
    from core.case.refusals import customer_refusal, refusal
    from core.case_view import case_status_word, current_details
    from models.agency import HandoverOutcome
    from models.case import (
        AgreeInstalments,
        ApproveCourtFiling,
        Cancel,
        CaseInput,
        CaseStatus,
        CustomerArrangement,
        CustomerRequest,
        Dispute,
        DunningStopped,
        EscalateNow,
        HoldRequest,
        PaymentAwaited,
        PaymentBooked,
        PaymentOutcome,
        PaymentResult,
        PremiumOverdue,
        PromiseToPay,
        RecordPayment,
        Resume,
        TerminationDecision,
        WriteOff,
    )
    from models.court import CourtProgress
    from models.plan import PlanStep
    from workflows import search_attributes as sa
    from workflows.court import CourtDunning
    from workflows.handover import AgentHandover

# A message renders in about a second: a send whose worker died is given to another worker after
# 30 s instead of 2 min (the retry finds what the dead attempt stored; tests/test_faults.py).
SEND_TIMEOUT = timedelta(seconds=30)
# The recorded behaviour changes (workflow.patched ids) are decided in core/case/decider.py, where
# each branch lives; named here too, as docs/workflow-versioning.md asks.
# Since 2026-12 (issue #15): a payment arriving while the case waits to continue as new is answered
# first (its `payment_outcome` update waits for the loop); histories recorded before did not wait.
ANSWER_BEFORE_CONTINUING = "answer-payments-before-continue-as-new"
# Since 2026-12 (issue #15 P2): the ledger's short reads and writes run as local activities.
LEDGER_LOCAL = "ledger-calls-local"
PATCHES = (
    LEDGER_LOCAL,
    ANSWER_BEFORE_CONTINUING,
    WRITE_OFF_REREADS_LEDGER,
    SUPPLEMENTARY_NOTICES,
    PAYMENTS_REREAD_LEDGER,
    CONFIRMATION_PER_SITUATION,
    TERMINATION_LETTER,
)


@workflow.defn
class DunningCase:
    @workflow.init
    def __init__(self, input: CaseInput) -> None:
        try:
            self.case = open_case(input, workflow.info().workflow_id, workflow.now())
        except KeyError as error:
            # Fail the workflow with the reason; any other exception would fail the task and
            # retry forever while the case looks RUNNING.
            raise ApplicationError(str(error.args[0]), type="InvalidInput", non_retryable=True) from None
        self._lock = asyncio.Lock()  # one ledger-changing action at a time (the loop or a staff action)
        self._published: dict[str, object] = {}
        self._children: dict[str, workflow.ChildWorkflowHandle[Any, Any]] = {}  # started by this run

    # --- the process: what now? → do it → what now? ----------------------------------------------

    @workflow.run
    async def run(self, input: CaseInput) -> CaseStatus:
        while not self.case.closed:
            await self._perform_all(self._decide(e.Turn()))
        self._publish(None, None)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status()

    def _decide(self, event: e.Event) -> list[c.Command]:
        # Due times read the holiday calendar (translation files, the first time a year is used);
        # its data is part of the code, so the result is the same on every replay.
        with workflow.unsafe.sandbox_unrestricted():
            decision = decide(self.case, event, workflow.now(), workflow.patched)
        self.case = decision.case
        return decision.commands

    async def _perform_all(self, commands: Sequence[c.Command]) -> None:
        """Each command, then what the case decides on its answer, before the next command."""
        for command in commands:
            if isinstance(command, c.WithLock):
                async with self._lock:
                    await self._perform_all(self._decide(e.Done(command)))
                continue
            try:
                result = await self._perform(command)
            except ActivityError as error:
                if not command.asks_person_on_failure:
                    raise
                cause = str(error.cause) if error.cause is not None else str(error)
                await self._perform_all(self._decide(e.Failed(command, cause)))
                continue
            await self._perform_all(self._decide(e.Done(command, result)))

    async def _perform(self, command: c.Command) -> object:
        match command:
            case c.ReadArrears(request=request):
                return await self._ledger(LedgerActivities.load_arrears, request, "Read arrears from the ledger")
            case c.Send():
                return await self._send(command)
            case c.ChangeStatus(request=request, summary=summary):
                return await self._ledger(LedgerActivities.change_contract_status, request, summary)
            case c.PrepareCourt(request=request, summary=summary):
                return await workflow.execute_activity_method(
                    LedgerActivities.prepare_court_application,
                    request,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=RETRY,
                    summary=summary,
                )
            case c.CloseInLedger(request=request, summary=summary):
                return await self._ledger(LedgerActivities.close_case, request, summary)
            case c.ApproveFiling(request=request, summary=summary):
                return await workflow.execute_activity_method(
                    LedgerActivities.approve_court_application,
                    request,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=RETRY,
                    summary=summary,
                )
            case c.OpenRequest(request=request, summary=summary):
                return await workflow.execute_activity_method(
                    PortalActivities.open_service_request,
                    request,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=RETRY,
                    summary=summary,
                )
            case c.RecordStaffPayment(request=request, summary=summary):
                return await workflow.execute_activity_method(
                    LedgerActivities.book_payment,
                    request,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=RETRY,
                    summary=summary,
                )
            case c.StartHandover(input=handover, workflow_id=child_id, summary=summary):
                # ABANDON: the case ends its children itself; a continue-as-new must not cancel them.
                self._children["handover"] = await workflow.start_child_workflow(
                    AgentHandover.run,
                    handover.model_copy(update={"parent_workflow_id": workflow.info().workflow_id}),
                    id=child_id,
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    static_summary=summary,
                )
            case c.StartCourt(input=court, workflow_id=child_id, summary=summary):
                self._children["court"] = await workflow.start_child_workflow(
                    CourtDunning.run,
                    court.model_copy(update={"parent_workflow_id": workflow.info().workflow_id}),
                    id=child_id,
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    static_summary=summary,
                )
            case c.EndHandover(workflow_id=child_id, wait=wait):
                try:
                    await workflow.get_external_workflow_handle(child_id).cancel()
                except FailureError:
                    pass  # it has finished already (an outcome was recorded)
                if wait:
                    await self._child_finished("handover")
            case c.SignalCourt(workflow_id=child_id, signal=signal, arg=arg):
                try:
                    await workflow.get_external_workflow_handle(child_id).signal(signal, arg)
                except FailureError:
                    return False
                return True
            case c.AwaitCourt():
                await self._child_finished("court")
            case c.Publish(step=step, at=at):
                self._publish(step, at)
            case c.Sleep(until=until, step=step, summary=summary):
                self._publish(step, until)
                return await self._sleep_until(until, summary)
            case c.Checkpoint():
                if workflow.info().is_continue_as_new_suggested() and not self.case.pending_payments:
                    # A payment arriving meanwhile (its `payment_outcome` update waits for this loop)
                    # is answered first; the next checkpoint continues as new.
                    answer_first = workflow.patched(ANSWER_BEFORE_CONTINUING)
                    await workflow.wait_condition(
                        lambda: workflow.all_handlers_finished() or (answer_first and self._paid_meanwhile())
                    )
                    if answer_first and self._paid_meanwhile():
                        return None
                    workflow.continue_as_new(
                        CaseInput(contract_number=self.case.state.contract_number, state=self.case.state)
                    )
            case c.Continue():
                pass
            case _:
                raise ValueError(f"unknown command {command!r}")
        return None

    async def _ledger(self, activity: Callable[[Any, Any], Any], request: object, summary: str) -> Any:
        """A short read or write of the ledger (arrears, contract status, the case register): a local
        activity on this worker — a marker in the history instead of three events, and no second
        workflow task, so a payment's update is answered from one workflow task (issue #15 P2).
        Histories recorded before ran them as activities."""
        if workflow.patched(LEDGER_LOCAL):
            return await workflow.execute_local_activity_method(
                activity, request, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY, summary=summary
            )
        return await workflow.execute_activity_method(
            activity, request, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY, summary=summary
        )

    async def _send(self, command: c.Send) -> object:
        """`Outbox.send_message`. A letter renders for a second, a provider outage retries for
        minutes: meanwhile a payment still re-reads the ledger, and one that clears the balance
        restores cover at once, not when the send is done. The send itself sees the paid balance and
        sends no demand."""
        work = workflow.execute_activity_method(
            Outbox.send_message,
            command.request,
            start_to_close_timeout=SEND_TIMEOUT,
            retry_policy=RETRY,
            summary=command.summary,
        )
        if not command.watch_payments:
            return await work
        task = asyncio.ensure_future(work)
        seen = self.case.payment_signals
        while not task.done():
            await workflow.wait_condition(functools.partial(self._done_or_paid, task, seen))
            # Counted before the ledger is read: a payment signalled while that read runs wakes
            # the loop again (its booking may not be in what the read returns).
            seen = self.case.payment_signals
            if not task.done():
                await self._perform_all(self._decide(e.PaymentsWhileBusy()))
        return await task

    def _paid_meanwhile(self) -> bool:
        return bool(self.case.pending_payments)

    def _done_or_paid(self, task: asyncio.Future[Any], payments_seen: int) -> bool:
        return task.done() or self.case.payment_signals != payments_seen

    async def _sleep_until(self, wake_at: datetime | None, summary: str) -> bool:
        """True when the time came; False when a signal or update changed something first."""
        seen = self.case.changes
        if wake_at is None:
            await workflow.wait_condition(lambda: self.case.changes != seen)
            return False
        delay = wake_at - workflow.now()
        if delay <= timedelta(0):
            return True
        try:
            await workflow.wait_condition(lambda: self.case.changes != seen, timeout=delay, timeout_summary=summary)
            return False
        except TimeoutError:
            return True

    async def _child_finished(self, kind: str) -> None:
        """Wait until a child started by this run has ended (after continue-as-new there is no handle,
        and the child ends on its own), so the case never completes with a child's work half done."""
        handle = self._children.pop(kind, None)
        if handle is not None:
            try:
                await handle
            except FailureError:
                pass  # failed or cancelled: its own history says why

    # --- keeping the UI true ------------------------------------------------------------------

    def _publish(self, step: PlanStep | None, wake_at: datetime | None) -> None:
        state = self.case.state
        values: dict[str, object] = {
            "stage": state.stage.value,
            "status": case_status_word(state),
            "open": state.arrears.balance_cents,
            "next": wake_at.replace(microsecond=0) if wake_at else None,
            "agent": state.arrears.agent_code or "",
        }
        if values != self._published:
            updates: list[SearchAttributeUpdate[Any]] = [
                sa.CONTRACT_NUMBER.value_set(state.contract_number),
                sa.DUNNING_PLAN.value_set(state.plan.id),
                sa.DUNNING_STAGE.value_set(state.stage.value),
                sa.CASE_STATUS.value_set(str(values["status"])),
                sa.OPEN_AMOUNT_CENTS.value_set(state.arrears.balance_cents),
                sa.NEXT_ACTION_TIME.value_set(wake_at) if wake_at else sa.NEXT_ACTION_TIME.value_unset(),
            ]
            if state.arrears.agent_code:
                updates.append(sa.AGENT_CODE.value_set(state.arrears.agent_code))
            workflow.upsert_search_attributes(updates)
            self._published = values
        workflow.set_current_details(current_details(state, step, wake_at))

    def _status(self) -> CaseStatus:
        with workflow.unsafe.sandbox_unrestricted():  # the next step's time reads the holiday calendar
            return case_status(self.case, workflow.now())

    # --- events from outside: signals apply at once, updates answer with the case's status -------

    def _apply(self, event: e.Event) -> None:
        """A signal or a synchronous update: only the UI follows at once (no activity)."""
        for command in self._decide(event):
            assert isinstance(command, c.Publish), f"{event!r} asked for {command!r} outside the loop"
            self._publish(command.step, command.at)

    async def _act(self, event: e.StaffAction) -> CaseStatus:
        """A staff action that touches the ledger: never interleaved with a step of the loop."""
        async with self._lock:
            await self._perform_all(self._decide(event))
        return self._status()

    def _refuse(self, action: e.StaffAction) -> None:
        with workflow.unsafe.sandbox_unrestricted():
            problem = refusal(self.case, action, workflow.now())
        if problem is not None:
            raise ApplicationError(problem, type="InvalidInput", non_retryable=True)

    @workflow.signal(
        description="A premium of this contract is overdue (or a direct debit came back): it joins the case."
    )
    def premium_overdue(self, premium: PremiumOverdue) -> None:
        self._apply(e.PremiumJoined(premium))

    @workflow.signal(description="The ledger booked a payment for this contract: re-read the balance.")
    def payment_booked(self, payment: PaymentBooked) -> None:
        self._apply(e.PaymentReceived(payment))

    @workflow.update(
        description="The ledger booked a payment: take it as the signal would, answer with what it did "
        "(balance left, contract status, cover restored)."
    )
    async def payment_booked_answer(self, payment: PaymentBooked) -> PaymentOutcome:
        self._apply(e.PaymentReceived(payment))
        return await self._answer(payment.payment_ref)

    @workflow.update(
        description="Wait for what a payment signalled before did: balance left, contract status, cover restored."
    )
    async def payment_outcome(self, awaited: PaymentAwaited) -> PaymentOutcome:
        return await self._answer(awaited.payment_ref)

    @payment_outcome.validator
    def _validate_payment_outcome(self, awaited: PaymentAwaited) -> None:
        if not self.case.closed and awaited.payment_ref not in self.case.state.payments_seen:
            raise ApplicationError(
                f"payment_ref {awaited.payment_ref!r} was not signalled to this case", type="InvalidInput"
            )

    async def _answer(self, payment_ref: str) -> PaymentOutcome:
        # self.case is replaced by every decision: the condition reads the current one.
        await workflow.wait_condition(lambda: payment_outcome(self.case, payment_ref) is not None)
        answer = payment_outcome(self.case, payment_ref)
        assert answer is not None
        return answer

    @workflow.signal(
        description="Automated dunning must stop (e.g. direct debit returned MD07, debtor deceased): "
        "the case holds for a person and sends nothing more."
    )
    def dunning_stopped(self, stop: DunningStopped) -> None:
        self._apply(e.LedgerStoppedDunning(stop))

    @workflow.signal(description="The agent's outcome from the agency handover (child workflow).")
    def handover_outcome(self, outcome: HandoverOutcome) -> None:
        self._apply(e.AgentReported(outcome))

    @workflow.signal(description="The court dunning child reports a state change.")
    def court_progress(self, progress: CourtProgress) -> None:
        self._apply(e.CourtReported(progress))

    @workflow.query(description="The whole case: stage, balance, items, hold, next step, steps done, journal.")
    def status(self) -> CaseStatus:
        return self._status()

    @workflow.update(description="Book a payment received outside the ledger feed (e.g. at the counter).")
    async def record_payment(self, request: RecordPayment) -> PaymentResult:
        async with self._lock:
            [booking] = self._decide(e.PaymentRecorded(request))
            result = await self._perform(booking)
            self._apply(e.Done(booking, result))  # a new payment joins the case like a signalled one
        assert isinstance(result, PaymentResult)
        return result

    @record_payment.validator
    def _validate_record_payment(self, request: RecordPayment) -> None:
        self._refuse(e.PaymentRecorded(request))

    @workflow.update(description="Pause escalation until a date (e.g. customer in hospital).")
    def hold(self, request: HoldRequest) -> CaseStatus:
        self._apply(e.HoldRequested(request))
        return self._status()

    @hold.validator
    def _validate_hold(self, request: HoldRequest) -> None:
        self._refuse(e.HoldRequested(request))

    @workflow.update(description="End a hold, promise or dispute (or retry a step that needed attention).")
    def resume(self, request: Resume) -> CaseStatus:
        self._apply(e.Resumed(request))
        return self._status()

    @resume.validator
    def _validate_resume(self, request: Resume) -> None:
        self._refuse(e.Resumed(request))

    @workflow.update(description="Customer promised to pay by a date: hold until then; escalate if broken.")
    def promise_to_pay(self, request: PromiseToPay) -> CaseStatus:
        self._apply(e.Promised(request))
        return self._status()

    @promise_to_pay.validator
    def _validate_promise(self, request: PromiseToPay) -> None:
        self._refuse(e.Promised(request))

    @workflow.update(
        description="Agree an instalment plan over the whole balance: escalation pauses while instalments arrive "
        "on time; a missed one resumes dunning the next working day."
    )
    def agree_instalments(self, request: AgreeInstalments) -> CaseStatus:
        self._apply(e.InstalmentsAgreed(request))
        return self._status()

    @agree_instalments.validator
    def _validate_instalments(self, request: AgreeInstalments) -> None:
        self._refuse(e.InstalmentsAgreed(request))

    @workflow.update(description="Customer disputes the claim: stop escalating until a person resumes.")
    def dispute(self, request: Dispute) -> CaseStatus:
        self._apply(e.Disputed(request))
        return self._status()

    @dispute.validator
    def _validate_dispute(self, request: Dispute) -> None:
        self._refuse(e.Disputed(request))

    @workflow.update(
        description="The customer arranges instalments or a deferral in the portal, within the plan's guardrails "
        "(DOMAIN.md §11); outside them the validator refuses and the portal asks a clerk instead."
    )
    def customer_arrangement(self, request: CustomerArrangement) -> CaseStatus:
        self._apply(e.CustomerArranged(request))
        return self._status()

    @customer_arrangement.validator
    def _validate_customer_arrangement(self, request: CustomerArrangement) -> None:
        with workflow.unsafe.sandbox_unrestricted():
            verdict = customer_refusal(self.case, request, workflow.now())
        if verdict is not None:  # the portal shows the code's text in the customer's language
            raise ApplicationError(
                verdict.message, {"code": verdict.code, "params": verdict.params}, type="CustomerRefused"
            )
        self._refuse(e.CustomerArranged(request))

    @workflow.update(
        description="The customer asks a person from the portal (dispute, arrangement outside the guardrails, "
        "proof of payment, bank details, message, callback): it joins a queue; a dispute pauses escalation."
    )
    async def customer_request(self, request: CustomerRequest) -> CaseStatus:
        return await self._act(e.CustomerAsked(request))

    @customer_request.validator
    def _validate_customer_request(self, request: CustomerRequest) -> None:
        self._refuse(e.CustomerAsked(request))

    @workflow.update(description="Write off the open balance: the case closes and the contract is reactivated.")
    async def write_off(self, request: WriteOff) -> CaseStatus:
        return await self._act(e.WriteOffRequested(request))

    @write_off.validator
    def _validate_write_off(self, request: WriteOff) -> None:
        self._refuse(e.WriteOffRequested(request))

    @workflow.update(description="Run the next step now instead of waiting for its date.")
    def escalate_now(self, request: EscalateNow) -> CaseStatus:
        self._apply(e.EscalationRequested(request))
        return self._status()

    @escalate_now.validator
    def _validate_escalate(self, request: EscalateNow) -> None:
        self._refuse(e.EscalationRequested(request))

    @workflow.update(description="Stop dunning without changing the ledger (e.g. premium booked in error).")
    async def cancel(self, request: Cancel) -> CaseStatus:
        return await self._act(e.CancelRequested(request))

    @cancel.validator
    def _validate_cancel(self, request: Cancel) -> None:
        self._refuse(e.CancelRequested(request))

    @workflow.update(description="A person approves the prepared court application; it is then filed.")
    async def approve_court_filing(self, request: ApproveCourtFiling) -> CaseStatus:
        return await self._act(e.CourtFilingApproved(request))

    @approve_court_filing.validator
    def _validate_approve(self, request: ApproveCourtFiling) -> None:
        self._refuse(e.CourtFilingApproved(request))

    @workflow.update(
        description="A person approves the proposed termination (§38(3) VVG): the contract ends now; "
        "paying everything within one month makes the termination void."
    )
    async def approve_termination(self, request: TerminationDecision) -> CaseStatus:
        return await self._act(e.TerminationApproved(request))

    @approve_termination.validator
    def _validate_approve_termination(self, request: TerminationDecision) -> None:
        self._refuse(e.TerminationApproved(request))

    @workflow.update(description="A person declines the proposed termination: the contract stays, dunning goes on.")
    def decline_termination(self, request: TerminationDecision) -> CaseStatus:
        self._apply(e.TerminationDeclined(request))
        return self._status()

    @decline_termination.validator
    def _validate_decline_termination(self, request: TerminationDecision) -> None:
        self._refuse(e.TerminationDeclined(request))
