"""Agency handover: a child workflow of the case, id `<case id>/handover`.

The insurer's service routine (DOMAIN.md §8), step by step:

1. The task goes to the contract's responsible agent — to the team buddy while the agent is absent
   (availability calendar), to the supervisor when both are — with an e-mail linking to the agent
   page. The agent must make a first attempt within 24 hours (the SLA).
2. Each attempt is logged (update `log_attempt`) and written to the customer notes. Two failed
   calls on one day → the customer gets an SMS (else an e-mail) saying who calls and why, and the
   next attempt is due by the end of the next day. Repeat until reached.
3. A contact deadline that passes without an attempt is escalated to the supervisor (e-mail, note).
   Every morning the assignee is checked against the calendar (to the buddy and back).
4. The agent records the outcome (update `record_outcome`); after `unreachable_after_days` days of
   the full routine without reaching the customer the workflow records "not reachable" itself.
   The outcome goes to the case (signal `handover_outcome`), which acts on it: promise → hold until
   the date, instalment plan → hold until the first instalment, dispute → manual review,
   collected → the payment is booked, not reachable → court dunning, wrong contact data → a person
   fixes the master data.

Cancelled by the case when it ends or goes to court first; the task is then closed.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError

from workflows.common import ACTIVITY_TIMEOUT, RETRY

with workflow.unsafe.imports_passed_through():
    from activities.agency import AgencyActivities
    from activities.ledger import LedgerActivities
    from core.calendar import local_date, next_working_day, start_of_day
    from core.limits import (
        MAX_AGENT_CHARS,
        MAX_INSTALMENTS,
        MAX_REASON_CHARS,
        MAX_REQUEST_CENTS,
        MIN_INSTALMENTS,
    )
    from models.activities import BookPayment
    from models.agency import (
        AttemptView,
        CheckAssignee,
        CloseHandoverTask,
        ContactChannel,
        Escalate,
        HandoverData,
        HandoverInput,
        HandoverOutcome,
        HandoverState,
        LogAttempt,
        NotifyCustomer,
        OpenHandover,
        OutcomeKind,
        RecordOutcome,
        WriteAttempt,
    )
    from workflows import search_attributes as sa

FINISHED = {HandoverState.DONE, HandoverState.CANCELLED}
# Issue #15 (P3, histories ≤ 200 events): the daily check on working mornings only, as a local
# activity. Histories recorded before keep their daily activity (workflow.patched).
WORKING_MORNINGS = "handover-working-mornings-local-check"


def reject(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidInput", non_retryable=True)


@workflow.defn
class AgentHandover:
    @workflow.init
    def __init__(self, input: HandoverInput) -> None:
        self.data = HandoverData(
            case_id=input.case_id,
            contract_number=input.contract_number,
            parent_workflow_id=input.parent_workflow_id,
            key=input.key,
            rules=input.rules,
        )
        self._lock = asyncio.Lock()  # one side effect at a time: handlers and the main loop
        self._changes = 0

    # --- the process ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: HandoverInput) -> HandoverData:
        d = self.data
        try:
            async with self._lock:
                await self._open()
            while d.outcome is None:
                wake_at, what = self._next_wake()
                seen, delay = self._changes, wake_at - workflow.now()
                if delay > timedelta(0):
                    try:
                        await workflow.wait_condition(
                            lambda: d.outcome is not None or self._changes != seen,  # noqa: B023 (awaited at once)
                            timeout=delay,
                            timeout_summary=f"{what} at {wake_at:%Y-%m-%d %H:%M} UTC",
                        )
                        continue
                    except TimeoutError:
                        pass
                async with self._lock:
                    if d.outcome is None:
                        await self._new_day()
                        await self._escalate_if_overdue()
            await workflow.wait_condition(workflow.all_handlers_finished)
            await self._tell_case(d.outcome)
        except asyncio.CancelledError:
            await self._cancelled()
        return d

    async def _open(self) -> None:
        d, now = self.data, workflow.now()
        due = now + d.rules.contact_within
        assigned = await workflow.execute_activity_method(
            AgencyActivities.open_handover,
            OpenHandover(
                case_id=d.case_id,
                contract_number=d.contract_number,
                key=d.key,
                now=now,
                day=self._today(),
                contact_due_at=due,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary="Create the agent's task and e-mail the agent",
        )
        d.task_id, d.agent_code = assigned.task_id, assigned.agent_code
        d.responsible_code, d.supervisor_code = assigned.responsible_code, assigned.supervisor_code
        d.assigned_at, d.contact_due_at, d.last_day_checked = now, due, self._today()
        self._note(f"Task {d.task_id} for {assigned.why}; first attempt due within {d.rules.contact_within}")

    def _next_wake(self) -> tuple[datetime, str]:
        d = self.data
        tomorrow = self._today() + timedelta(days=1)
        if workflow.patched(WORKING_MORNINGS):
            # The routine's daily check on working mornings only (agents do not work weekends or
            # holidays; a contact deadline still wakes the handover whenever it falls).
            with workflow.unsafe.sandbox_unrestricted():  # the holiday calendar (data, part of the code)
                tomorrow = next_working_day(tomorrow)
        morning = start_of_day(tomorrow, d.rules.timezone)
        if d.contact_due_at is not None and not d.reached and d.contact_due_at < morning:
            return d.contact_due_at, "next contact attempt due"
        return morning, "daily check (calendar, deadlines)"

    async def _new_day(self) -> None:
        """Each new day: the buddy takes the task while the agent is absent, and gives it back."""
        d, today = self.data, self._today()
        if d.last_day_checked == today:
            return
        d.last_day_checked = today
        check = CheckAssignee(
            case_id=d.case_id,
            task_id=d.task_id,
            responsible_code=d.responsible_code,
            current_code=d.agent_code,
            day=today,
            now=workflow.now(),
            key=f"{d.key}:assignee:{today.isoformat()}",
        )
        if workflow.patched(WORKING_MORNINGS):
            # A short read (and, rarely, a reassignment with its idempotent note and e-mail): a local
            # activity, one marker in the history instead of three events and a second workflow task.
            assignee = await workflow.execute_local_activity_method(
                AgencyActivities.check_assignee,
                check,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
                summary="Check the assignee against the availability calendar",
            )
        else:
            assignee = await workflow.execute_activity_method(
                AgencyActivities.check_assignee,
                check,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
                summary="Check the assignee against the availability calendar",
            )
        if assignee.changed:
            d.agent_code = assignee.agent_code
            self._note(f"Task moved to {assignee.why}")

    async def _escalate_if_overdue(self) -> None:
        d, now = self.data, workflow.now()
        if d.reached or d.contact_due_at is None or now < d.contact_due_at:
            return
        if not d.sla_met:
            reason = f"no contact attempt within {d.rules.contact_within} of the handover (SLA)"
        else:
            reason = f"no follow-up attempt by {d.contact_due_at:%Y-%m-%d %H:%M} UTC"
        number = len(d.escalations) + 1
        await workflow.execute_activity_method(
            AgencyActivities.escalate,
            Escalate(
                case_id=d.case_id,
                contract_number=d.contract_number,
                task_id=d.task_id,
                agent_code=d.agent_code,
                supervisor_code=d.supervisor_code,
                reason=reason,
                now=now,
                key=f"{d.key}:escalation:{number}",
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary=f"Escalate to the supervisor ({number})",
        )
        d.escalations.append(f"{now:%Y-%m-%d %H:%M} to {d.supervisor_code}: {reason}")
        d.contact_due_at = None  # one escalation per missed deadline; the next attempt sets the next one
        d.state = HandoverState.ESCALATED
        self._note(f"Escalated to supervisor {d.supervisor_code}: {reason}")

    async def _attempt(self, request: LogAttempt) -> None:
        d, now, today = self.data, workflow.now(), self._today()
        await workflow.execute_activity_method(
            AgencyActivities.write_attempt,
            WriteAttempt(
                case_id=d.case_id,
                task_id=d.task_id,
                agent_code=request.by,
                channel=request.channel,
                reached=request.reached,
                note=request.note,
                day=today,
                now=now,
                key=f"{d.key}:attempt:{len(d.attempts) + 1}",
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary="Write the attempt to the customer notes",
        )
        d.attempts.append(
            AttemptView(
                at=now, day=today, channel=request.channel, reached=request.reached, by=request.by, note=request.note
            )
        )
        if d.assigned_at is not None and now <= d.assigned_at + d.rules.contact_within:
            d.sla_met = True
        if request.reached:
            d.reached, d.contact_due_at, d.state = True, None, HandoverState.REACHED
            self._note(f"{request.by} reached the customer ({request.channel})")
            return
        d.state = HandoverState.CONTACTING
        failed_calls = [a for a in d.attempts if a.day == today and not a.reached and a.channel == ContactChannel.CALL]
        end_of_today = start_of_day(today + timedelta(days=1), d.rules.timezone)
        if len(failed_calls) < d.rules.calls_per_day or today in d.unreached_days:
            # the day's routine is not complete yet: the next call is due today
            d.contact_due_at = max(d.contact_due_at or end_of_today, end_of_today)
            self._note(f"{request.by}: {request.channel}, not reached ({len(failed_calls)} failed call(s) today)")
            return
        d.unreached_days.append(today)
        if len(d.unreached_days) >= d.rules.unreachable_after_days:
            self._note(f"Not reached on {len(d.unreached_days)} days of the full routine")
            await self._finish(
                RecordOutcome(
                    kind=OutcomeKind.NOT_REACHABLE,
                    note=f"not reached on {len(d.unreached_days)} days",
                    by="system",
                )
            )
            return
        channel = await workflow.execute_activity_method(
            AgencyActivities.notify_customer,
            NotifyCustomer(
                case_id=d.case_id,
                contract_number=d.contract_number,
                task_id=d.task_id,
                agent_code=d.agent_code,
                now=now,
                key=f"{d.key}:call-notice:{today.isoformat()}",
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary="Tell the customer who calls and why",
        )
        d.notified_days.append(today)
        d.contact_due_at = start_of_day(today + timedelta(days=2), d.rules.timezone)  # repeat tomorrow
        self._note(f"Not reached today after {len(failed_calls)} calls; {channel or 'no'} message to the customer")

    async def _finish(self, request: RecordOutcome) -> None:
        d, now = self.data, workflow.now()
        payment_ref: str | None = None
        if request.kind == OutcomeKind.COLLECTED and request.amount_cents:
            booked = await workflow.execute_activity_method(
                LedgerActivities.book_payment,
                BookPayment(
                    contract_number=d.contract_number,
                    external_ref=f"agent:{d.task_id}:{request.reference}",
                    amount_cents=request.amount_cents,
                    received_at=now,
                    source="agent",
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
                summary="Book the money the agent collected",
            )
            payment_ref = booked.payment_ref
        await workflow.execute_activity_method(
            AgencyActivities.close_task,
            CloseHandoverTask(
                case_id=d.case_id,
                task_id=d.task_id,
                outcome=request.kind.value,
                note=request.note,
                by=request.by,
                now=now,
                key=f"{d.key}:outcome",
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary=f"Close the task: {request.kind}",
        )
        d.outcome = HandoverOutcome(
            kind=request.kind,
            task_id=d.task_id,
            by=request.by,
            pay_by=request.pay_by or request.first_instalment_on,
            amount_cents=request.amount_cents,
            instalments=request.instalments,
            payment_ref=payment_ref,
            note=request.note,
        )
        d.state, d.contact_due_at = HandoverState.DONE, None
        self._note(f"Outcome {request.kind} recorded by {request.by}")

    async def _tell_case(self, outcome: HandoverOutcome | None) -> None:
        if outcome is None:
            return
        try:
            await workflow.get_external_workflow_handle(self.data.parent_workflow_id).signal(
                "handover_outcome", outcome
            )
        except FailureError:
            self._note("The case has ended: the outcome was only recorded on the task")

    async def _cancelled(self) -> None:
        """The case ended or went to court: close the task (if the case did not already).
        The case waits for this to finish before it moves on."""
        d = self.data
        d.state = HandoverState.CANCELLED
        self._note("Handover ended by the case")
        if d.task_id:
            await workflow.execute_activity_method(
                AgencyActivities.close_task,
                CloseHandoverTask(
                    case_id=d.case_id,
                    task_id=d.task_id,
                    outcome="ended by the case",
                    note="the case ended or went to court dunning",
                    by="system",
                    now=workflow.now(),
                    key=f"{d.key}:outcome",
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
                summary="Close the task: ended by the case",
            )

    # --- the UI --------------------------------------------------------------------------------

    def _today(self) -> date:
        return local_date(workflow.now(), self.data.rules.timezone)

    def _note(self, text: str) -> None:
        d = self.data
        d.journal.append(f"{workflow.now():%Y-%m-%d %H:%M} {text}")
        del d.journal[:-100]
        self._changes += 1
        updates = [
            sa.CONTRACT_NUMBER.value_set(d.contract_number),
            sa.HANDOVER_STATE.value_set(d.state.value),
        ]
        if d.agent_code:
            updates.append(sa.AGENT_CODE.value_set(d.agent_code))
        workflow.upsert_search_attributes(updates)
        lines = [
            f"**Agency handover** — `{d.state}`, task {d.task_id} with `{d.agent_code}` "
            f"(responsible `{d.responsible_code}`, supervisor `{d.supervisor_code}`)",
            f"- attempts: {len(d.attempts)}; days not reached: {len(d.unreached_days)}",
            f"- next attempt due: {d.contact_due_at:%Y-%m-%d %H:%M} UTC" if d.contact_due_at else "- no attempt due",
        ]
        if d.escalations:
            lines.append(f"- escalations: {len(d.escalations)}")
        lines += [f"- {line}" for line in d.journal[-5:]]
        workflow.set_current_details("\n".join(lines))

    # --- queries and updates -----------------------------------------------------------------

    @workflow.query(description="The whole handover: assignee, deadlines, attempts, escalations, outcome.")
    def status(self) -> HandoverData:
        return self.data

    def _require_active(self) -> None:
        if self.data.state in FINISHED:
            raise reject(f"the handover has ended ({self.data.state}); nothing can change it")
        if not self.data.task_id:
            raise reject("the task is being created; try again in a moment")

    @workflow.update(description="Log a contact attempt (call, SMS, e-mail, visit): reached or not.")
    async def log_attempt(self, request: LogAttempt) -> HandoverData:
        async with self._lock:
            if self.data.outcome is None:
                await self._attempt(request)
        return self.data

    @log_attempt.validator
    def _validate_attempt(self, request: LogAttempt) -> None:
        self._require_active()
        if self.data.outcome is not None:
            raise reject("an outcome has been recorded; no more attempts")
        if not request.by.strip() or len(request.by) > MAX_AGENT_CHARS:
            raise reject(f"by must name the agent (1 to {MAX_AGENT_CHARS} characters)")
        if len(request.note) > MAX_REASON_CHARS:
            raise reject(f"note must be at most {MAX_REASON_CHARS} characters, got {len(request.note)}")

    @workflow.update(description="Record the outcome: promise to pay, instalment plan, dispute, not reachable, …")
    async def record_outcome(self, request: RecordOutcome) -> HandoverData:
        async with self._lock:
            if self.data.outcome is None:
                await self._finish(request)
        return self.data

    @record_outcome.validator
    def _validate_outcome(self, request: RecordOutcome) -> None:
        self._require_active()
        if self.data.outcome is not None:
            raise reject(f"the outcome {self.data.outcome.kind} has been recorded already")
        if not request.by.strip() or len(request.by) > MAX_AGENT_CHARS:
            raise reject(f"by must name the agent (1 to {MAX_AGENT_CHARS} characters)")
        if len(request.note) > MAX_REASON_CHARS:
            raise reject(f"note must be at most {MAX_REASON_CHARS} characters, got {len(request.note)}")
        today, limit = self._today(), self.data.rules.max_promise_days
        kind = request.kind
        if kind == OutcomeKind.PROMISE_TO_PAY:
            if request.pay_by is None:
                raise reject("a promise to pay needs pay_by (the date the customer promised)")
            if not today <= request.pay_by <= today + timedelta(days=limit):
                raise reject(
                    f"pay_by must be between {today} and {today + timedelta(days=limit)}, got {request.pay_by}"
                )
            if request.amount_cents is not None and not 0 < request.amount_cents <= MAX_REQUEST_CENTS:
                raise reject(f"amount_cents must be between 1 and {MAX_REQUEST_CENTS}, got {request.amount_cents}")
        elif kind == OutcomeKind.INSTALMENT_PLAN:
            if request.instalments is None or not MIN_INSTALMENTS <= request.instalments <= MAX_INSTALMENTS:
                raise reject(
                    f"an instalment plan needs {MIN_INSTALMENTS} to {MAX_INSTALMENTS} instalments, "
                    f"got {request.instalments}"
                )
            first = request.first_instalment_on
            if first is None or not today <= first <= today + timedelta(days=limit):
                raise reject(
                    f"first_instalment_on must be between {today} and {today + timedelta(days=limit)}, got {first}"
                )
        elif kind == OutcomeKind.COLLECTED:
            if request.amount_cents is None or not 0 < request.amount_cents <= MAX_REQUEST_CENTS:
                raise reject(
                    f"collected amount_cents must be between 1 and {MAX_REQUEST_CENTS}, got {request.amount_cents}"
                )
            if not request.reference.strip() or len(request.reference) > MAX_AGENT_CHARS:
                raise reject(
                    f"collected money needs the receipt number as reference (1 to {MAX_AGENT_CHARS} characters)"
                )
        elif kind in (OutcomeKind.DISPUTE, OutcomeKind.WRONG_CONTACT_DATA) and not request.note.strip():
            raise reject(f"{kind} needs a note saying what is disputed or wrong")
