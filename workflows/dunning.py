"""The dunning case: one workflow per contract (`dunning-<contract number>`).

It interprets the case's pinned dunning plan step by step: reminder → qualified notice →
cover suspended → SMS with pay link → agency handover → court dunning (after a person
approves). At any moment a payment re-reads the ledger: a partial payment sends a receipt with
the new balance and a fresh pay link and re-anchors the next step on the oldest unpaid item; a
cleared balance reactivates the contract at once, confirms, and ends the case.

Money and time rules live in `core/`; every side effect is an activity keyed by case id + step.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.workflow import ParentClosePolicy

from workflows.common import ACTIVITY_TIMEOUT, RETRY

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from activities.messaging import Outbox
    from core.calendar import local_date, start_of_day
    from core.case_view import case_status_word, current_details
    from core.instalments import add_months, due_so_far, equal_instalments, schedule_problem
    from core.schedule import is_supplement, next_step, payment_hold_end, step_due_at
    from models.activities import (
        ApproveCourtApplication,
        BookPayment,
        ChangeContractStatus,
        CloseCase,
        LoadArrears,
        PrepareCourtApplication,
        SendMessage,
        SentMessage,
    )
    from models.agency import HandoverInput, HandoverOutcome, OutcomeKind
    from models.case import (
        CLOSED_STAGES,
        STAGE_AFTER_STEP,
        AgreeInstalments,
        ApproveCourtFiling,
        Arrears,
        Cancel,
        CaseEvent,
        CaseInput,
        CaseStage,
        CaseState,
        CaseStatus,
        Dispute,
        DunningStopped,
        EscalateNow,
        Hold,
        HoldKind,
        HoldRequest,
        Instalment,
        PaymentBooked,
        PaymentResult,
        PremiumOverdue,
        PromiseToPay,
        RecordPayment,
        Resume,
        StepRecord,
        TerminationDecision,
        WriteOff,
    )
    from models.court import FINAL_STATES as COURT_FINAL_STATES
    from models.court import CaseEnded, CourtApproval, CourtInput, CourtProgress, CourtState, PaymentForwarded
    from models.ledger import ContractStatus
    from models.messages import MessageKind
    from models.plan import MESSAGE_STEPS, Anchor, PlanStep, StepKind
    from models.plans import get_plan
    from workflows import search_attributes as sa
    from workflows.court import CourtDunning
    from workflows.handover import AgentHandover

# A message renders in about a second: a send whose worker died is given to another worker after
# 30 s instead of 2 min (the retry finds what the dead attempt stored; tests/test_faults.py).
SEND_TIMEOUT = timedelta(seconds=30)
MESSAGE_KIND = {
    StepKind.REMINDER: MessageKind.REMINDER,
    StepKind.QUALIFIED_NOTICE: MessageKind.QUALIFIED_NOTICE,
    StepKind.PAY_LINK_SMS: MessageKind.PAY_LINK_SMS,
}
# Patches (docs/workflow-versioning.md): histories recorded before a patch replay on the old path.
WRITE_OFF_REREADS_LEDGER = "write-off-rereads-ledger"  # since 2026-11; old history: write_off_before_patch.json
HANDOVER_FINISHED = "; outcome "  # marks the agency step record once the handover child has finished
SUPPLEMENTARY_NOTICES = "supplementary-notices"  # since 2026-11: premiums joining after the notice get one
# Since 2026-12 (issue #11): a payment signal during a send re-reads the ledger at once, and a
# cleared balance reactivates whatever the case was doing; receipts re-read before each answer.
PAYMENTS_REREAD_LEDGER = "payments-reread-ledger"
# Since 2026-12: the confirmation says what happened (never suspended / restored / termination void /
# termination stands), and an approved termination is sent as a termination letter (§38(3) VVG).
CONFIRMATION_PER_SITUATION = "confirmation-per-situation"
TERMINATION_LETTER = "termination-letter"
T = TypeVar("T")
MAX_PAYMENT_CENTS = 100_000_000  # 1 million EUR: anything larger is a typo


def reject(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidInput", non_retryable=True)


def require_text(field: str, value: str, max_length: int = 500) -> None:
    if not value.strip():
        raise reject(f"{field} must not be empty")
    if len(value) > max_length:
        raise reject(f"{field} must be at most {max_length} characters, got {len(value)}")


@workflow.defn
class DunningCase:
    @workflow.init
    def __init__(self, input: CaseInput) -> None:
        if input.state is not None:
            self.state = input.state
        else:
            now = workflow.now()
            try:
                plan = input.plan or get_plan(input.plan_id or "de-follow-up")
            except KeyError as error:
                # Fail the workflow with the reason; any other exception would fail the task and
                # retry forever while the case looks RUNNING.
                raise ApplicationError(str(error.args[0]), type="InvalidInput", non_retryable=True) from None
            self.state = CaseState(
                case_id=f"{workflow.info().workflow_id}/{now:%Y%m%dT%H%M%S}",
                contract_number=input.contract_number,
                plan=plan,
                opened_at=now,
                arrears=Arrears(contract_number=input.contract_number),
            )
        self._changes = 0  # bumped by every signal/update: wakes the main loop
        self._needs_refresh = input.state is None
        self._pending_payments: list[PaymentBooked] = []  # signalled, not yet answered
        self._clearing: list[PaymentBooked] = []  # answered by the confirmation when the balance clears
        self._payment_signals = 0  # bumped by every new payment: a send in flight re-reads the ledger
        self._unread_payments = 0  # payments signalled since the ledger was last read
        self._lock = asyncio.Lock()  # one ledger-changing action at a time (main loop or handler)
        self._published: dict[str, object] = {}
        self._court_state: CourtState | None = None  # as last reported by the court child
        self._children: dict[str, workflow.ChildWorkflowHandle[Any, Any]] = {}  # started by this run
        for premium in input.premiums:
            self._join(premium)

    # --- the process -------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: CaseInput) -> CaseStatus:
        if input.state is None:
            self._note(f"Case opened on plan {self.state.plan.id} v{self.state.plan.version}")
        while not self.closed:
            if self._needs_refresh or self._pending_payments:
                async with self._lock:
                    await self._refresh()
                    await self._answer_payments()
                continue
            if self.state.arrears.balance_cents <= 0 and not self._stopped():
                async with self._lock:
                    await self._settle()
                continue
            step = self._due_step()
            wake_at = self._wake_at(step)
            self._publish(step, wake_at)
            if not await self._sleep_until(wake_at, step):
                continue  # something changed: re-evaluate before acting
            if self._release_expired_hold():
                continue
            if step is None:
                continue
            async with self._lock:
                await self._refresh()
                if self.state.arrears.balance_cents > 0 and not self.closed and not self._pending_payments:
                    await self._run_step(step)
            if workflow.info().is_continue_as_new_suggested() and not self._pending_payments:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(CaseInput(contract_number=self.state.contract_number, state=self.state))
        self._publish(None, None)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status()

    async def _run_step(self, step: PlanStep) -> None:
        """Execute the next plan step exactly once, then move the pointer on by one."""
        state, now = self.state, workflow.now()
        record = StepRecord(key=step.key, kind=step.kind, at=now)
        key = f"{state.case_id}:{step.key}"
        try:
            if step.kind in MESSAGE_STEPS:
                sent = await self._send_watching_payments(
                    SendMessage(
                        case_id=state.case_id,
                        contract_number=state.contract_number,
                        key=key,
                        kind=MESSAGE_KIND[step.kind],
                        channels=step.channels,
                        copies=step.copies,
                        fees_cents=step.fees_cents,
                        now=now,
                        as_of=self._today(),
                        notice_plan=state.plan if step.kind == StepKind.QUALIFIED_NOTICE else None,
                    ),
                    summary=f"{step.key}: {step.summary or step.kind}",
                )
                if sent.skipped:  # paid while the case was busy: nothing was sent, the case settles
                    self._needs_refresh = True
                    self._note(f"Step {step.key} not sent: nothing is open any more")
                    return
                record.channel, record.copies, record.total_cents = sent.channel, sent.copies, sent.total_cents
                record.fee_cents, record.message_ids, record.deadline = sent.fee_cents, sent.message_ids, sent.deadline
                if sent.deadline is not None and not (is_supplement(step) and self._suspended()):
                    state.deadline = sent.deadline  # a later, consolidated deadline before suspension governs
                if step.kind == StepKind.QUALIFIED_NOTICE and workflow.patched(SUPPLEMENTARY_NOTICES):
                    itemised = {i.premium_id for i in state.arrears.items}
                    state.noticed_items = sorted(itemised.union(state.noticed_items or []))
            elif step.kind == StepKind.SUSPEND_COVER:
                suspended = await self._change_contract_status(
                    ContractStatus.SUSPENDED,
                    "Notice deadline passed with arrears (§38(2) VVG)",
                    key,
                    "Suspend cover",
                    only_with_arrears=True,
                )
                if not suspended:  # refused (paid meanwhile) or done by an earlier attempt
                    await self._refresh()
                    if state.arrears.contract_status != ContractStatus.SUSPENDED:
                        self._note(f"Step {step.key}: cover not suspended, nothing is open any more")
                        return
            elif step.kind == StepKind.AGENCY_HANDOVER:
                # The agent's routine is its own child workflow (workflows/handover.py); its
                # outcome comes back as the signal `handover_outcome`. ABANDON: the case ends it
                # itself (`_end_children`), and a continue-as-new of the case must not cancel it.
                self._children["handover"] = await workflow.start_child_workflow(
                    AgentHandover.run,
                    HandoverInput(
                        case_id=state.case_id,
                        contract_number=state.contract_number,
                        parent_workflow_id=workflow.info().workflow_id,
                        key=key,
                        balance_cents=state.arrears.balance_cents,
                    ),
                    id=self._child_id("handover"),
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    static_summary=f"Agency handover of case {state.case_id}",
                )
                state.handover_at = now
                record.note = f"handover {self._child_id('handover')}"
            elif step.kind == StepKind.TERMINATION:
                # Art. 22 GDPR: a decision with legal effect is never automatic. The case waits for
                # approve_termination / decline_termination (DunningStage='termination_approval').
                record.note = "termination proposed: waits for a person's decision"
            elif step.kind == StepKind.COURT_DUNNING:
                prepared = await workflow.execute_activity_method(
                    LedgerActivities.prepare_court_application,
                    PrepareCourtApplication(case_id=state.case_id, contract_number=state.contract_number, now=now),
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=RETRY,
                    summary="Prepare court application",
                )
                record.total_cents = prepared.claimed_cents
                await self._end_handover(wait=False)  # court starts at once; the handover closes its task itself
                # The court lifecycle (DOMAIN.md §5), years of monitoring included, is a child workflow.
                due_dates = [item.due_date for item in state.arrears.items]
                self._children["court"] = await workflow.start_child_workflow(
                    CourtDunning.run,
                    CourtInput(
                        case_id=state.case_id,
                        contract_number=state.contract_number,
                        parent_workflow_id=workflow.info().workflow_id,
                        application_id=prepared.application_id,
                        claimed_cents=prepared.claimed_cents,
                        oldest_due=min(due_dates) if due_dates else self._today(),
                        court_state=prepared.court_state,
                    ),
                    id=self._child_id("court"),
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    static_summary=f"Court dunning of case {state.case_id}",
                )
                record.note = f"application {prepared.application_id} waits for approval ({self._child_id('court')})"
        except ActivityError as error:
            # Bad master data (no such contract, an amount that does not add up): stop here
            # and ask a person; `resume` tries the same step again with the same key.
            cause = str(error.cause) if error.cause is not None else str(error)
            state.hold = Hold(kind=HoldKind.ATTENTION, reason=f"step {step.key} failed: {cause}")
            self._note(f"Step {step.key} failed and needs a person: {cause}")
            return
        state.steps_done.append(record)
        self._needs_refresh = True  # fees booked by the step change the balance
        if is_supplement(step):  # not a plan step: the pointer and the stage stay where they are
            state.supplements += 1
            state.escalate_requested = False
            self._note(f"Supplementary notice {step.key} sent for premiums that joined after the notice")
            return
        state.next_step += 1
        state.escalate_requested = False
        self._enter(STAGE_AFTER_STEP[step.kind], f"Step {step.key} done" + (f" ({record.note})" if record.note else ""))

    async def _send(self, request: SendMessage, summary: str) -> SentMessage:
        return await workflow.execute_activity_method(
            Outbox.send_message, request, start_to_close_timeout=SEND_TIMEOUT, retry_policy=RETRY, summary=summary
        )

    async def _send_watching_payments(self, request: SendMessage, summary: str) -> SentMessage:
        return await self._watching_payments(self._send(request, summary))

    async def _watching_payments(self, work: Awaitable[T]) -> T:
        """Do slow work (a letter renders for a second; a provider outage retries for minutes) while
        still answering payments: one that clears the balance reactivates the contract at once, not
        when the work is done. The work itself sees the paid balance and sends no demand."""
        task = asyncio.ensure_future(work)
        seen = self._payment_signals
        while not task.done():
            await workflow.wait_condition(functools.partial(self._done_or_paid, task, seen))
            # Counted before the ledger is read: a payment signalled while that read runs wakes
            # the loop again (its booking may not be in what the read returns).
            seen = self._payment_signals
            if not task.done() and workflow.patched(PAYMENTS_REREAD_LEDGER):
                await self._refresh()
                if self.state.arrears.balance_cents <= 0 and not self._stopped():
                    await self._reactivate("Arrears paid: cover restored", self._cleared_at())
        return await task

    def _done_or_paid(self, task: asyncio.Future[Any], payments_seen: int) -> bool:
        return task.done() or self._payment_signals != payments_seen

    async def _refresh(self) -> None:
        """Re-read the arrears from the ledger: the ledger, not the workflow, holds the money."""
        self._needs_refresh = False
        self._unread_payments = 0
        arrears = await workflow.execute_activity_method(
            LedgerActivities.load_arrears,
            LoadArrears(contract_number=self.state.contract_number, as_of=self._today()),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary="Read arrears from the ledger",
        )
        now = workflow.now()
        for item in arrears.items:
            self.state.joined_at.setdefault(item.premium_id, now)
        self.state.arrears = arrears
        if arrears.dunning_stopped and not self._stopped():
            # The ledger stopped the contract (MD07) before its signal reached the case: hold now,
            # or the premiums it blocked would look like a cleared balance.
            self._hold_for_person("stopped", "automated dunning stopped for this contract in the ledger")

    async def _answer_payments(self) -> None:
        """A receipt with that payment's own amount, the new balance and a fresh pay link for each
        partial payment. A payment that came in while the last receipt went out is answered from
        a fresh read of the ledger (it may have cleared the balance: then the confirmation)."""
        while self._pending_payments:
            if self._unread_payments and workflow.patched(PAYMENTS_REREAD_LEDGER):
                await self._refresh()
            payment = self._pending_payments.pop(0)
            await self._forward_to_court(payment.payment_ref)
            if self.state.arrears.balance_cents <= 0:
                self._clearing.append(payment)
                continue  # _settle sends the one confirmation
            if self._small_shortfall():
                self._review_shortfall(payment.payment_ref)
                continue
            if self._stopped():
                self._note(f"Payment {payment.payment_ref} noted; automated dunning is stopped: no receipt")
                continue
            self.state.receipts_sent += 1
            await self._send_watching_payments(
                SendMessage(
                    case_id=self.state.case_id,
                    contract_number=self.state.contract_number,
                    key=f"{self.state.case_id}:receipt:{payment.payment_ref}",
                    kind=MessageKind.PAYMENT_RECEIPT,
                    channels=self.state.plan.confirmation_channels,
                    now=workflow.now(),
                    as_of=self._today(),
                    paid_cents=payment.amount_cents,
                    paid_at=payment.received_at,
                    legal_basis=self.state.plan.legal_basis.value,
                    timezone=self.state.plan.timezone,
                ),
                summary="Receipt for a partial payment",
            )
            open_cents = self.state.arrears.balance_cents
            self._note(f"Partial payment {payment.payment_ref}: receipt sent, {open_cents} cents still open")

    def _small_shortfall(self) -> bool:
        balance, threshold = self.state.arrears.balance_cents, self.state.plan.small_shortfall_cents
        return bool(self.state.payments_seen) and 0 < balance < threshold

    def _review_shortfall(self, ref: str) -> None:
        """Nearly paid: no receipt, no escalation; a person resumes, writes off or books the rest."""
        if self.state.hold is None or self.state.hold.kind != HoldKind.SMALL_SHORTFALL:
            balance = self.state.arrears.balance_cents
            self.state.hold = Hold(kind=HoldKind.SMALL_SHORTFALL, reason=f"only {balance} cents open after {ref}")
            self._enter(self.state.stage, f"Small shortfall of {balance} cents after payment {ref}: manual review")

    def _cleared_at(self) -> datetime:
        """When the balance cleared: the latest receipt time of the payments that cleared it (cover
        returns for events after that moment, §38(2) VVG), or now when no payment did."""
        moments = [p.received_at for p in self._clearing + self._pending_payments if p.received_at is not None]
        return min(max(moments), workflow.now()) if moments else workflow.now()

    def _confirmation(self, paid_at: datetime) -> MessageKind | None:
        """What the customer is told depends on what happened to the contract (DOMAIN.md §2)."""
        state = self.state
        if state.arrears.contract_status == ContractStatus.TERMINATED:
            voided = state.cure_until is not None and paid_at < state.cure_until
            return MessageKind.TERMINATION_VOID if voided else MessageKind.PAID_AFTER_TERMINATION
        if state.arrears.contract_status == ContractStatus.SUSPENDED or state.reactivated_at is not None:
            return MessageKind.REACTIVATION
        return MessageKind.PAID_IN_FULL

    async def _settle(self) -> None:
        """Balance cleared: reactivate at once (effective when the money came), confirm, close."""
        state, now = self.state, workflow.now()
        paid_at = self._cleared_at()
        kind = self._confirmation(paid_at)
        await self._reactivate("Arrears paid: cover restored", paid_at)
        if not workflow.patched(CONFIRMATION_PER_SITUATION):
            kind = None if state.arrears.contract_status == ContractStatus.TERMINATED else MessageKind.REACTIVATION
        if kind is None or kind == MessageKind.PAID_AFTER_TERMINATION:
            # Paid after the cure month: the termination stands, no "cover restored".
            self._note("Balance cleared after the cure month: the termination stands")
        if kind is not None and (state.steps_done or state.payments_seen):
            paid = self._clearing + self._pending_payments
            await self._send(
                SendMessage(
                    case_id=state.case_id,
                    contract_number=state.contract_number,
                    key=f"{state.case_id}:paid",
                    kind=kind,
                    channels=state.plan.confirmation_channels,
                    now=now,
                    as_of=self._today(),
                    paid_cents=sum(p.amount_cents for p in paid),
                    paid_at=paid_at,
                    terminated_on=local_date(state.terminated_at, state.plan.timezone) if state.terminated_at else None,
                    cure_until=self._last_day(state.cure_until),
                    legal_basis=state.plan.legal_basis.value,
                    timezone=state.plan.timezone,
                ),
                summary=f"Confirmation: balance cleared ({kind})",
            )
        await self._close(CaseStage.PAID, "Balance cleared", "paid")

    async def _reactivate(self, reason: str, effective_at: datetime | None = None) -> None:
        """Arrears gone: cover back at once (once per case, whichever way the balance cleared),
        effective when the clearing payment was received."""
        state = self.state
        effective_at = effective_at or workflow.now()
        if state.arrears.contract_status == ContractStatus.TERMINATED and state.cure_until is not None:
            if effective_at < state.cure_until:
                await self._change_contract_status(
                    ContractStatus.ACTIVE,
                    "Termination void: arrears paid within one month (§38(3) VVG); no cover for events in between",
                    f"{state.case_id}:termination-void",
                    "Termination void: reactivate",
                    effective_at=effective_at,
                )
                state.reactivated_at = effective_at
                self._note("Termination void: paid within the cure month, contract active again")
            return
        if self.state.arrears.contract_status == ContractStatus.SUSPENDED:
            await self._change_contract_status(
                ContractStatus.ACTIVE,
                reason,
                f"{self.state.case_id}:reactivate",
                "Reactivate the contract",
                effective_at=effective_at,
            )
            state.reactivated_at = effective_at
            self._note(f"Contract reactivated effective {effective_at:%Y-%m-%d %H:%M:%S} UTC: {reason}")

    async def _change_contract_status(
        self,
        to: ContractStatus,
        reason: str,
        key: str,
        summary: str,
        *,
        effective_at: datetime | None = None,
        only_with_arrears: bool = False,
    ) -> bool:
        state = self.state
        changed = await workflow.execute_activity_method(
            LedgerActivities.change_contract_status,
            ChangeContractStatus(
                contract_number=state.contract_number,
                to_status=to,
                reason=reason,
                key=key,
                case_id=state.case_id,
                at=workflow.now(),
                effective_at=effective_at,
                only_with_arrears=only_with_arrears,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary=summary,
        )
        if changed or not only_with_arrears:
            state.arrears.contract_status = to
        return bool(changed)

    async def _close(self, stage: CaseStage, reason: str, action: str) -> None:
        now = workflow.now()
        await workflow.execute_activity_method(
            LedgerActivities.close_case,
            CloseCase(
                case_id=self.state.case_id,
                contract_number=self.state.contract_number,
                action=action,
                reason=reason,
                now=now,
                as_of=self._today(),
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary=f"Close case: {action}",
        )
        await self._end_children(stage, reason)
        self.state.closed_at = now
        self.state.closed_reason = reason
        self.state.hold = None
        self._enter(stage, reason)

    # --- timing ------------------------------------------------------------------------------

    def _due_step(self) -> PlanStep | None:
        if self.state.stage in (CaseStage.COURT_APPROVAL, CaseStage.TERMINATION_APPROVAL):
            return None  # a person must decide before anything else happens
        with workflow.unsafe.sandbox_unrestricted():  # compares due times: reads the holiday calendar
            return next_step(self.state)

    def _suspended(self) -> bool:
        return any(done.kind == StepKind.SUSPEND_COVER for done in self.state.steps_done)

    def _stopped(self) -> bool:
        """Automated dunning stopped (MD07): only a person moves the case on."""
        return self.state.hold is not None and self.state.hold.kind == HoldKind.STOPPED

    def _wake_at(self, step: PlanStep | None) -> datetime | None:
        hold = self.state.hold
        if hold is not None:
            return hold.until
        if step is None:
            return None
        if self.state.escalate_requested:
            return workflow.now()
        # The holiday calendar (holidays package) reads translation files when first used for a
        # year; its data is part of the code, so the result is the same on every replay.
        with workflow.unsafe.sandbox_unrestricted():
            return step_due_at(self.state, step, workflow.now())

    async def _sleep_until(self, wake_at: datetime | None, step: PlanStep | None) -> bool:
        """True when the time came; False when a signal or update changed something first."""
        seen = self._changes
        if wake_at is None:
            await workflow.wait_condition(lambda: self._changes != seen)
            return False
        delay = wake_at - workflow.now()
        if delay <= timedelta(0):
            return True
        what = "hold ends" if self.state.hold else (step.key if step else "")
        try:
            await workflow.wait_condition(
                lambda: self._changes != seen, timeout=delay, timeout_summary=f"{what} at {wake_at:%Y-%m-%d %H:%M} UTC"
            )
            return False
        except TimeoutError:
            return True

    def _release_expired_hold(self) -> bool:
        hold = self.state.hold
        if hold is None or hold.until is None or workflow.now() < hold.until:
            return False
        self.state.hold = None
        if hold.kind == HoldKind.PROMISE:
            paid = hold.balance_at_promise_cents - self.state.arrears.balance_cents
            promised = hold.promised_cents or hold.balance_at_promise_cents
            if paid < promised:
                self._note(f"Promise to pay broken ({paid} of {promised} cents paid): dunning resumes")
                return True
        if hold.kind == HoldKind.INSTALMENTS:
            paid = hold.balance_at_promise_cents - self.state.arrears.balance_cents
            owed, number, count = due_so_far(hold.schedule, hold.instalment), hold.instalment + 1, len(hold.schedule)
            if paid < owed:
                self._note(f"Instalment {number} of {count} missed ({paid} of {owed} cents paid): dunning resumes")
                return True
            if number < count:
                following = hold.schedule[number]
                self.state.hold = hold.model_copy(update={"instalment": number, "until": self._hold_end(following.due)})
                self._note(
                    f"Instalment {number} of {count} on time; next {following.amount_cents} cents by {following.due}"
                )
                return True
        self._note("Hold ended: dunning resumes")
        return True

    def _hold_end(self, day: date) -> datetime:
        """A hold for a payment date ends after that day plus the plan's grace for the money to arrive."""
        return payment_hold_end(day, self.state.plan)

    def _agree_instalments(self, schedule: list[Instalment], by: str, note: str) -> None:
        self.state.hold = Hold(
            kind=HoldKind.INSTALMENTS,
            reason=note or "instalment plan",
            until=self._hold_end(schedule[0].due),
            balance_at_promise_cents=self.state.arrears.balance_cents,
            set_by=by,
            schedule=schedule,
        )
        last = schedule[-1]
        self._enter(
            self.state.stage, f"Instalment plan agreed by {by}: {len(schedule)} instalments, the last on {last.due}"
        )

    def _last_day(self, expires: datetime | None) -> date | None:
        """The last day of a period that expires at `expires` (the start of the following day)."""
        return local_date(expires - timedelta(seconds=1), self.state.plan.timezone) if expires else None

    def _today(self) -> date:
        return local_date(workflow.now(), self.state.plan.timezone)

    # --- keeping the UI true -----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.state.stage in CLOSED_STAGES

    def _enter(self, stage: CaseStage, why: str) -> None:
        """The one place a stage changes: journal, search attributes and details follow."""
        self.state.stage = stage
        self._note(why)
        step = self._due_step() if not self.closed else None
        self._publish(step, self._wake_at(step) if step or self.state.hold else None)

    def _note(self, text: str) -> None:
        self.state.journal.append(CaseEvent(at=workflow.now(), text=text))
        del self.state.journal[:-100]  # the journal is a view; the history keeps everything

    def _publish(self, step: PlanStep | None, wake_at: datetime | None) -> None:
        state = self.state
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

    def _join(self, premium: PremiumOverdue) -> None:
        if premium.premium_id not in self.state.joined_at:
            self.state.joined_at[premium.premium_id] = workflow.now()
            if premium.reason != "overdue":
                self._note(f"Premium {premium.premium_id} joined: {premium.reason}")
        self._needs_refresh = True
        self._changes += 1

    def _status(self) -> CaseStatus:
        state = self.state
        step = self._due_step() if not self.closed else None
        return CaseStatus(
            case_id=state.case_id,
            contract_number=state.contract_number,
            plan_id=state.plan.id,
            plan_version=state.plan.version,
            stage=state.stage,
            closed=self.closed,
            hold=state.hold,
            balance_cents=state.arrears.balance_cents,
            credit_cents=state.arrears.credit_cents,
            items=state.arrears.items,
            deadline=state.deadline,
            next_step=step.key if step else None,
            next_step_at=self._wake_at(step) if step else None,
            steps_done=state.steps_done,
            journal=state.journal,
        )

    # --- ledger events (signals) -------------------------------------------------------------

    @workflow.signal(
        description="A premium of this contract is overdue (or a direct debit came back): it joins the case."
    )
    def premium_overdue(self, premium: PremiumOverdue) -> None:
        if not self.closed:
            self._join(premium)

    @workflow.signal(description="The ledger booked a payment for this contract: re-read the balance.")
    def payment_booked(self, payment: PaymentBooked) -> None:
        if self.closed or payment.payment_ref in self.state.payments_seen:
            return  # the same payment event twice changes nothing
        self.state.payments_seen.append(payment.payment_ref)
        if payment.received_at is None:
            payment = payment.model_copy(update={"received_at": workflow.now()})
        self._pending_payments.append(payment)
        self._payment_signals += 1
        self._unread_payments += 1
        self._changes += 1

    @workflow.signal(
        description="Automated dunning must stop (e.g. direct debit returned MD07, debtor deceased): "
        "the case holds for a person and sends nothing more."
    )
    def dunning_stopped(self, stop: DunningStopped) -> None:
        if self.closed or self._stopped():
            return  # a repeated stop changes nothing
        self._hold_for_person(stop.code, stop.reason)
        self._needs_refresh = True  # the ledger no longer counts the blocked premiums

    def _hold_for_person(self, code: str, reason: str) -> None:
        self.state.hold = Hold(kind=HoldKind.STOPPED, reason=f"{code}: {reason}", set_by=f"ledger {code}")
        self.state.escalate_requested = False
        self._changes += 1
        self._enter(self.state.stage, f"Automated dunning stopped ({code}): {reason}; a person decides")

    # --- children: agency handover and court dunning (workflows/handover.py, workflows/court.py) ---

    def _child_id(self, kind: str) -> str:
        return f"{self.state.case_id}/{kind}"

    def _step_done(self, kind: StepKind) -> bool:
        return any(record.kind == kind for record in self.state.steps_done)

    def _handover_running(self) -> bool:
        """Started, no outcome yet (marked on its step record, which survives continue-as-new),
        and not already ended by the court step: a second cancel request is an error."""
        records = [r for r in self.state.steps_done if r.kind == StepKind.AGENCY_HANDOVER]
        if not records or HANDOVER_FINISHED in records[-1].note:
            return False
        return not self._step_done(StepKind.COURT_DUNNING)

    async def _end_handover(self, wait: bool = True) -> None:
        """The case moves on (court) or ends: the agent's routine stops and its task is closed."""
        if not self._handover_running():
            return
        try:
            await workflow.get_external_workflow_handle(self._child_id("handover")).cancel()
        except FailureError:
            pass  # it has finished already (an outcome was recorded)
        if wait:
            await self._child_finished("handover")

    async def _child_finished(self, kind: str) -> None:
        """Wait until a child started by this run has ended (after continue-as-new there is no handle,
        and the child ends on its own), so the case never completes with a child's work half done."""
        handle = self._children.pop(kind, None)
        if handle is not None:
            try:
                await handle
            except FailureError:
                pass  # failed or cancelled: its own history says why

    async def _tell_court(self, signal: str, arg: Any) -> None:
        if not self._step_done(StepKind.COURT_DUNNING) or self._court_state in COURT_FINAL_STATES:
            return
        try:
            await workflow.get_external_workflow_handle(self._child_id("court")).signal(signal, arg)
        except FailureError:
            self._note(f"Court dunning has ended; {signal} not delivered")

    async def _forward_to_court(self, payment_ref: str) -> None:
        """A payment during court dunning: partial restarts limitation there, full settles it."""
        paid = PaymentForwarded(
            payment_ref=payment_ref, balance_cents=self.state.arrears.balance_cents, paid_on=self._today()
        )
        await self._tell_court("payment_forwarded", paid)

    async def _end_children(self, stage: CaseStage, reason: str) -> None:
        await self._end_handover()
        await self._tell_court("case_ended", CaseEnded(stage=stage.value, reason=reason))
        if self._step_done(StepKind.COURT_DUNNING):
            await self._child_finished("court")

    @workflow.signal(description="The agent's outcome from the agency handover (child workflow).")
    def handover_outcome(self, outcome: HandoverOutcome) -> None:
        if self.closed:
            return
        state, plan = self.state, self.state.plan
        for record in state.steps_done:
            if record.kind == StepKind.AGENCY_HANDOVER and HANDOVER_FINISHED not in record.note:
                record.note += f"{HANDOVER_FINISHED}{outcome.kind}"
        by = f"agent {outcome.by}"
        balance = state.arrears.balance_cents
        if outcome.kind in (OutcomeKind.PROMISE_TO_PAY, OutcomeKind.INSTALMENT_PLAN) and outcome.pay_by:
            until = workflow.now() if plan.demo else start_of_day(outcome.pay_by, plan.timezone)
            promised = outcome.amount_cents
            reason = outcome.note or "promise to pay (agent)"
            if outcome.kind == OutcomeKind.INSTALMENT_PLAN and outcome.instalments:
                schedule = (
                    equal_instalments(balance, outcome.instalments, outcome.pay_by)
                    if 2 <= outcome.instalments <= balance
                    else []
                )
                if schedule and schedule_problem(schedule, balance, self._today()) is None:
                    self._agree_instalments(schedule, by, outcome.note or "instalment plan (agent)")
                    self._changes += 1
                    return
                # Hold until the first instalment; if it is not paid, dunning resumes (court).
                promised = -(-balance // outcome.instalments)
                reason = f"instalment plan agreed: {outcome.instalments} instalments from {outcome.pay_by}"
            state.hold = Hold(
                kind=HoldKind.PROMISE,
                reason=reason,
                until=until + plan.promise_grace,
                promised_cents=promised,
                balance_at_promise_cents=balance,
                set_by=by,
            )
            text = f"Agent outcome {outcome.kind}: hold until {outcome.pay_by:%d.%m.%Y}"
        elif outcome.kind == OutcomeKind.DISPUTE:
            state.hold = Hold(kind=HoldKind.DISPUTE, reason=outcome.note or "disputed (agent)", set_by=by)
            text = "Agent outcome: customer disputes the claim (manual review)"
        elif outcome.kind == OutcomeKind.WRONG_CONTACT_DATA:
            reason = f"wrong contact data: {outcome.note}; fix the master data, then resume"
            state.hold = Hold(kind=HoldKind.ATTENTION, reason=reason, set_by=by)
            text = "Agent outcome: wrong contact data (needs a person)"
        elif outcome.kind == OutcomeKind.COLLECTED and outcome.payment_ref:
            self.payment_booked(PaymentBooked(payment_ref=outcome.payment_ref, amount_cents=outcome.amount_cents or 0))
            text = f"Agent collected {outcome.amount_cents} cents (payment {outcome.payment_ref})"
        else:  # not reachable: court dunning now
            if state.hold is None or state.hold.kind != HoldKind.ATTENTION:
                state.hold = None
                state.escalate_requested = True
            text = f"Agent outcome {outcome.kind}: escalate to court dunning"
        self._changes += 1
        self._enter(state.stage, text)

    @workflow.signal(description="The court dunning child reports a state change.")
    def court_progress(self, progress: CourtProgress) -> None:
        if self.closed:
            return
        self._court_state = progress.state
        if progress.state == CourtState.FILED and self.state.stage == CaseStage.COURT_APPROVAL:
            self.state.stage = CaseStage.COURT_FILED
        if progress.state in (CourtState.LAPSED, CourtState.CLOSED):
            self.state.hold = Hold(kind=HoldKind.ATTENTION, reason=f"court dunning {progress.state}: {progress.text}")
        self._changes += 1
        self._enter(self.state.stage, f"Court: {progress.text}")

    # --- queries -----------------------------------------------------------------------------

    @workflow.query(description="The whole case: stage, balance, items, hold, next step, steps done, journal.")
    def status(self) -> CaseStatus:
        return self._status()

    # --- staff actions (updates: the caller gets an answer or a clear rejection) ---------------

    def _require_open(self) -> None:
        if self.closed:
            raise reject(f"case is closed ({self.state.stage}); nothing can change it")

    @workflow.update(description="Book a payment received outside the ledger feed (e.g. at the counter).")
    async def record_payment(self, request: RecordPayment) -> PaymentResult:
        async with self._lock:
            result = await workflow.execute_activity_method(
                LedgerActivities.book_payment,
                BookPayment(
                    contract_number=self.state.contract_number,
                    external_ref=f"{request.source}:{request.reference}",
                    amount_cents=request.amount_cents,
                    received_at=workflow.now(),
                    source=request.source,
                    premium_id=request.premium_id,
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
                summary="Book the staff payment",
            )
        if result.booked:
            self.payment_booked(
                PaymentBooked(
                    payment_ref=result.payment_ref, amount_cents=request.amount_cents, received_at=workflow.now()
                )
            )
        return result

    @record_payment.validator
    def _validate_record_payment(self, request: RecordPayment) -> None:
        self._require_open()
        if not 0 < request.amount_cents <= MAX_PAYMENT_CENTS:
            raise reject(f"amount_cents must be between 1 and {MAX_PAYMENT_CENTS}, got {request.amount_cents}")
        require_text("reference", request.reference, 64)
        require_text("source", request.source, 20)
        known = {i.premium_id for i in self.state.arrears.items}
        if request.premium_id is not None and request.premium_id not in known:
            raise reject(f"premium_id {request.premium_id!r} is not an open item of this case; open: {sorted(known)}")

    @workflow.update(description="Pause escalation until a date (e.g. customer in hospital).")
    def hold(self, request: HoldRequest) -> CaseStatus:
        until = start_of_day(request.until, self.state.plan.timezone)
        self.state.hold = Hold(kind=HoldKind.HOLD, reason=request.reason, until=until, set_by=request.by)
        self._changes += 1
        self._enter(self.state.stage, f"On hold until {request.until:%d.%m.%Y} by {request.by}: {request.reason}")
        return self._status()

    @hold.validator
    def _validate_hold(self, request: HoldRequest) -> None:
        self._require_open()
        require_text("reason", request.reason)
        today = self._today()
        if request.until <= today:
            raise reject(f"until must be after today ({today}), got {request.until}")
        if request.until > today + timedelta(days=366):
            raise reject(f"until must be within a year, got {request.until}")

    @workflow.update(description="End a hold, promise or dispute (or retry a step that needed attention).")
    def resume(self, request: Resume) -> CaseStatus:
        previous = self.state.hold
        self.state.hold = None
        self._changes += 1
        kind = previous.kind if previous else "hold"
        self._enter(
            self.state.stage, f"Resumed from {kind} by {request.by}" + (f": {request.reason}" if request.reason else "")
        )
        return self._status()

    @resume.validator
    def _validate_resume(self, request: Resume) -> None:
        self._require_open()
        if self.state.hold is None:
            raise reject("case is not on hold, disputed or waiting for attention; nothing to resume")

    @workflow.update(description="Customer promised to pay by a date: hold until then; escalate if broken.")
    def promise_to_pay(self, request: PromiseToPay) -> CaseStatus:
        plan = self.state.plan
        until = start_of_day(request.pay_by, plan.timezone) + plan.promise_grace
        if plan.demo:
            until = workflow.now() + plan.promise_grace
        self.state.hold = Hold(
            kind=HoldKind.PROMISE,
            reason=request.note or "promise to pay",
            until=until,
            promised_cents=request.amount_cents,
            balance_at_promise_cents=self.state.arrears.balance_cents,
            set_by=request.by,
        )
        self._changes += 1
        self._enter(self.state.stage, f"Promise to pay by {request.pay_by:%d.%m.%Y} recorded by {request.by}")
        return self._status()

    @promise_to_pay.validator
    def _validate_promise(self, request: PromiseToPay) -> None:
        self._require_open()
        today = self._today()
        if request.pay_by < today:
            raise reject(f"pay_by must be today or later ({today}), got {request.pay_by}")
        if request.pay_by > today + timedelta(days=90):
            raise reject(f"pay_by must be within 90 days, got {request.pay_by}; agree an instalment plan instead")
        balance = self.state.arrears.balance_cents
        if request.amount_cents is not None and not 0 < request.amount_cents <= balance:
            raise reject(f"amount_cents must be between 1 and the open balance {balance}, got {request.amount_cents}")

    @workflow.update(
        description="Agree an instalment plan over the whole balance: escalation pauses while instalments arrive "
        "on time; a missed one resumes dunning the next working day."
    )
    def agree_instalments(self, request: AgreeInstalments) -> CaseStatus:
        self._agree_instalments(request.instalments, request.by, request.note)
        self._changes += 1
        return self._status()

    @agree_instalments.validator
    def _validate_instalments(self, request: AgreeInstalments) -> None:
        self._require_open()
        require_text("by", request.by, 64)
        if self.state.stage == CaseStage.COURT_APPROVAL:
            raise reject("the court application waits for approval: decide on it first")
        problem = schedule_problem(request.instalments, self.state.arrears.balance_cents, self._today())
        if problem is not None:
            raise reject(problem)

    @workflow.update(description="Customer disputes the claim: stop escalating until a person resumes.")
    def dispute(self, request: Dispute) -> CaseStatus:
        self.state.hold = Hold(kind=HoldKind.DISPUTE, reason=request.reason, set_by=request.by)
        self._changes += 1
        self._enter(self.state.stage, f"Disputed (manual review) by {request.by}: {request.reason}")
        return self._status()

    @dispute.validator
    def _validate_dispute(self, request: Dispute) -> None:
        self._require_open()
        require_text("reason", request.reason)

    @workflow.update(description="Write off the open balance: the case closes and the contract is reactivated.")
    async def write_off(self, request: WriteOff) -> CaseStatus:
        async with self._lock:
            if self.closed:
                return self._status()
            if workflow.patched(WRITE_OFF_REREADS_LEDGER):
                # A payment may have cleared the balance since the case last read the ledger (its
                # signal still queued behind this update): then the case is paid, not written off.
                await self._refresh()
                if self.state.arrears.balance_cents <= 0:
                    await self._settle()
                    self._changes += 1
                    return self._status()
            await self._reactivate(f"Arrears written off: {request.reason}")
            await self._close(CaseStage.WRITTEN_OFF, f"Written off by {request.by}: {request.reason}", "write_off")
            self._changes += 1
        return self._status()

    @write_off.validator
    def _validate_write_off(self, request: WriteOff) -> None:
        self._require_open()
        require_text("reason", request.reason)

    @workflow.update(description="Run the next step now instead of waiting for its date.")
    def escalate_now(self, request: EscalateNow) -> CaseStatus:
        self.state.escalate_requested = True
        self.state.hold = None
        self._changes += 1
        self._enter(self.state.stage, f"Escalation requested by {request.by}: {request.reason}")
        return self._status()

    @escalate_now.validator
    def _validate_escalate(self, request: EscalateNow) -> None:
        self._require_open()
        require_text("reason", request.reason)
        if self._stopped():
            raise reject("automated dunning is stopped for this contract (see the hold): resume it first")
        if self.state.stage == CaseStage.COURT_APPROVAL:
            raise reject("the court application waits for approval: use approve_court_filing")
        if self.state.stage == CaseStage.TERMINATION_APPROVAL:
            raise reject("a termination waits for a decision: use approve_termination or decline_termination")
        step = self._due_step()
        if step is None:
            raise reject("the plan has no further step; the case waits for payment")
        if step.after == Anchor.DEADLINE and self.state.deadline and workflow.now() < self.state.deadline:
            # The customer was promised this deadline in a legal notice: nothing that depends on
            # it passing (suspension of cover above all) may happen earlier.
            raise reject(
                f"step {step.key} needs the notice deadline {self.state.deadline:%Y-%m-%d %H:%M} UTC to pass first"
            )

    @workflow.update(description="Stop dunning without changing the ledger (e.g. premium booked in error).")
    async def cancel(self, request: Cancel) -> CaseStatus:
        async with self._lock:
            if not self.closed:
                await self._close(CaseStage.CANCELLED, f"Cancelled by {request.by}: {request.reason}", "cancel")
                self._changes += 1
        return self._status()

    @cancel.validator
    def _validate_cancel(self, request: Cancel) -> None:
        self._require_open()
        require_text("reason", request.reason)

    @workflow.update(description="A person approves the prepared court application; it is then filed.")
    async def approve_court_filing(self, request: ApproveCourtFiling) -> CaseStatus:
        async with self._lock:
            await workflow.execute_activity_method(
                LedgerActivities.approve_court_application,
                ApproveCourtApplication(case_id=self.state.case_id, approver=request.approver, now=workflow.now()),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
                summary="Record approval and file",
            )
            # The court child files and runs the court lifecycle from here (workflows/court.py).
            await self._tell_court(
                "approve_filing_requested", CourtApproval(approver=request.approver, note=request.note)
            )
            self.state.court_approved_by = request.approver
            self._changes += 1
            self._enter(CaseStage.COURT_FILED, f"Court filing approved by {request.approver}")
        return self._status()

    @workflow.update(
        description="A person approves the proposed termination (§38(3) VVG): the contract ends now; "
        "paying everything within one month makes the termination void."
    )
    async def approve_termination(self, request: TerminationDecision) -> CaseStatus:
        async with self._lock:
            if self.state.stage != CaseStage.TERMINATION_APPROVAL:
                return self._status()  # decided meanwhile (the validator ran before the lock)
            state, now = self.state, workflow.now()
            if workflow.patched(TERMINATION_LETTER):
                if not await self._send_termination_letter(request):
                    return self._status()
            else:
                await self._change_contract_status(
                    ContractStatus.TERMINATED,
                    f"Terminated without notice (§38(3) VVG), approved by {request.by}",
                    f"{state.case_id}:terminate",
                    "Terminate the contract",
                )
                state.terminated_at = now
                local = local_date(now, state.plan.timezone)
                state.cure_until = start_of_day(add_months(local, 1) + timedelta(days=1), state.plan.timezone)
            self._changes += 1
            assert state.cure_until is not None
            cure_day = local_date(state.cure_until - timedelta(seconds=1), state.plan.timezone)
            self._enter(
                CaseStage.TERMINATED,
                f"Termination approved by {request.by}; void if everything is paid by {cure_day:%d.%m.%Y}",
            )
        return self._status()

    async def _send_termination_letter(self, request: TerminationDecision) -> bool:
        """The termination is a declaration the customer must receive (§38(3) VVG, text form): the
        letter goes out first; the contract ends when it is expected to arrive, and paying
        everything within one month of that voids it. False: nothing was open any more."""
        state = self.state
        notice = next(s for s in state.plan.steps if s.kind == StepKind.QUALIFIED_NOTICE)
        sent = await self._send_watching_payments(
            SendMessage(
                case_id=state.case_id,
                contract_number=state.contract_number,
                key=f"{state.case_id}:termination_letter",
                kind=MessageKind.TERMINATION_LETTER,
                channels=notice.channels,
                copies=notice.copies,
                now=workflow.now(),
                as_of=self._today(),
                notice_plan=state.plan,
                notice_deadline=self._last_day(state.deadline),
                timezone=state.plan.timezone,
            ),
            summary="Termination letter (§38(3) VVG)",
        )
        if sent.skipped or sent.expected_receipt is None or sent.deadline is None:
            self._needs_refresh = True
            self._note("Termination not sent: nothing is open any more")
            return False
        effective = start_of_day(sent.expected_receipt, state.plan.timezone)
        if state.plan.demo:
            effective = workflow.now()
        await self._change_contract_status(
            ContractStatus.TERMINATED,
            f"Terminated without notice (§38(3) VVG), approved by {request.by}; letter {sent.message_ids}",
            f"{state.case_id}:terminate",
            "Terminate the contract",
            effective_at=effective,
        )
        state.terminated_at = effective
        state.cure_until = sent.deadline
        for record in state.steps_done:
            if record.kind == StepKind.TERMINATION:
                record.channel, record.copies, record.message_ids = sent.channel, sent.copies, sent.message_ids
                record.total_cents, record.deadline = sent.total_cents, sent.deadline
        return True

    @approve_termination.validator
    def _validate_approve_termination(self, request: TerminationDecision) -> None:
        self._require_termination_pending(request)

    @workflow.update(description="A person declines the proposed termination: the contract stays, dunning goes on.")
    def decline_termination(self, request: TerminationDecision) -> CaseStatus:
        back = CaseStage.SUSPENDED if self._suspended() else CaseStage.NOTICE_SENT
        self._changes += 1
        self._enter(back, f"Termination declined by {request.by}" + (f": {request.note}" if request.note else ""))
        return self._status()

    @decline_termination.validator
    def _validate_decline_termination(self, request: TerminationDecision) -> None:
        self._require_termination_pending(request)

    def _require_termination_pending(self, request: TerminationDecision) -> None:
        self._require_open()
        require_text("by", request.by, 100)
        require_text("note", request.note or "-", 500)
        if self.state.stage != CaseStage.TERMINATION_APPROVAL:
            raise reject(f"no termination waits for a decision (stage is {self.state.stage})")

    @approve_court_filing.validator
    def _validate_approve(self, request: ApproveCourtFiling) -> None:
        self._require_open()
        require_text("approver", request.approver, 100)
        if self.state.stage != CaseStage.COURT_APPROVAL:
            raise reject(f"no court application waits for approval (stage is {self.state.stage})")
