"""Court dunning (gerichtliches Mahnverfahren, §§688ff ZPO): a child workflow of the case,
id `<case id>/court`.

The state machine of DOMAIN.md §5:

    APPLICATION_PREPARED → (a person approves) → FILED → ISSUED → SERVED | NOT_SERVED (→ refile)
    SERVED → objection (Widerspruch) → LAWSUIT
    SERVED → 2 weeks without objection → ENFORCEMENT_ORDER_DUE → (a person applies, within six
        months of service, §701 ZPO; otherwise LAPSED) → ENFORCEMENT_ORDER_APPLIED
        → ENFORCEMENT_ORDER_SERVED → Einspruch → LAWSUIT | 2 weeks → TITLE_FINAL
    TITLE_FINAL → ENFORCEMENT → LONG_TERM_MONITORING (a check every quarter, for years)
    full payment in any state → SETTLED (the case reactivates the contract)

Court events arrive as signals (a court feed) or as updates (staff, with a validator that
rejects events the current state does not allow). Every input is queued in the state and handled
in arrival order by the main loop, so continue-as-new — every `checks_per_run` monitoring checks —
carries unhandled inputs into the next run and nothing is lost. Legal deadlines are timers.

The limitation date is tracked: 3 years from the end of the year of the oldest due date
(§§195, 199 BGB); a partial payment restarts it (§212 BGB: 3 years, or 30 once a title is final);
a final title lasts 30 years (§197 BGB).
"""

from __future__ import annotations

from datetime import date, datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError

from workflows.common import ACTIVITY_TIMEOUT, RETRY

with workflow.unsafe.imports_passed_through():
    from activities.court import CourtActivities
    from core.calendar import local_date
    from core.court_dates import (
        COURT_TIMEZONE,
        enforcement_objection_last_day,
        enforcement_order_last_day,
        initial_limitation,
        objection_last_day,
        period_end,
        period_end_weekends_only,
        restarted_limitation,
        title_limitation,
    )
    from core.limits import MAX_APPROVER_CHARS, MAX_REASON_CHARS, MAX_REFERENCE_CHARS
    from models.court import (
        FINAL_STATES,
        ApplyEnforcementOrder,
        CaseEnded,
        CourtApproval,
        CourtData,
        CourtEventInput,
        CourtEventKind,
        CourtInput,
        CourtJournalLine,
        CourtMessage,
        CourtProgress,
        CourtState,
        FileCourtApplication,
        MonitoringCheck,
        PaymentForwarded,
        RecordCourtEvent,
        RenderCourtApplication,
    )
    from workflows import search_attributes as sa

TIMEZONE = COURT_TIMEZONE
# Court periods end on the next working day after public holidays too, not only after weekends
# (§222(2) ZPO). A court dunning served before this change computed its windows weekends-only and
# its timers wait for those; replays of it take the old branch (tests/histories/
# court_served_before_court_holidays.json). Added 2026-11; retire per docs/workflow-versioning.md.
COURT_PERIODS_PUBLIC_HOLIDAYS = "court-periods-public-holidays"

S, E = CourtState, CourtEventKind
# Which court event moves which state where. DEBTOR_INFORMATION is welcome in every open state.
TRANSITIONS: dict[CourtState, dict[CourtEventKind, CourtState]] = {
    S.FILED: {E.ISSUED: S.ISSUED, E.SERVED: S.SERVED, E.NOT_SERVED: S.NOT_SERVED},
    S.ISSUED: {E.SERVED: S.SERVED, E.NOT_SERVED: S.NOT_SERVED},
    S.NOT_SERVED: {E.REFILED: S.FILED},
    S.SERVED: {E.OBJECTION: S.LAWSUIT},
    # An objection is allowed until the enforcement order is issued (§694(1) ZPO).
    S.ENFORCEMENT_ORDER_DUE: {E.OBJECTION: S.LAWSUIT},
    S.ENFORCEMENT_ORDER_APPLIED: {
        E.OBJECTION: S.LAWSUIT,
        E.ENFORCEMENT_ORDER_ISSUED: S.ENFORCEMENT_ORDER_APPLIED,
        E.ENFORCEMENT_ORDER_SERVED: S.ENFORCEMENT_ORDER_SERVED,
    },
    S.ENFORCEMENT_ORDER_SERVED: {E.ENFORCEMENT_OBJECTION: S.LAWSUIT},
    S.LAWSUIT: {E.JUDGMENT_FINAL: S.TITLE_FINAL, E.LAWSUIT_LOST: S.CLOSED},
    S.ENFORCEMENT: {E.ENFORCEMENT_UNSUCCESSFUL: S.LONG_TERM_MONITORING},
}


# Every date rule (period lengths, §222(2) ZPO, limitation) lives in core/court_dates.py.


def reject(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidInput", non_retryable=True)


@workflow.defn
class CourtDunning:
    @workflow.init
    def __init__(self, input: CourtInput) -> None:
        self.data = input.state or CourtData(
            case_id=input.case_id,
            contract_number=input.contract_number,
            parent_workflow_id=input.parent_workflow_id,
            application_id=input.application_id,
            claimed_cents=input.claimed_cents,
            oldest_due=input.oldest_due,
            rules=input.rules,
            limitation_date=initial_limitation(input.oldest_due),
            court_state=input.court_state,
        )

    # --- the process ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: CourtInput) -> CourtData:
        d = self.data
        if input.state is None:
            d.pdf_document_id = await workflow.execute_activity_method(
                CourtActivities.render_application,
                RenderCourtApplication(case_id=d.case_id, now=workflow.now(), key=f"{d.case_id}:court:application"),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
                summary="Application record as PDF for review",
            )
            await self._enter(S.APPLICATION_PREPARED, "Application prepared (JSON + PDF): waits for approval")
        else:
            self._publish()
        while d.state not in FINAL_STATES:
            if d.pending:
                await self._handle(d.pending.pop(0))
                d.processed += 1
                continue
            if self._continue_as_new_due():
                await workflow.wait_condition(lambda: workflow.all_handlers_finished() or bool(d.pending))
                if d.pending:
                    continue
                d.run += 1
                d.checks_this_run = 0
                workflow.continue_as_new(CourtInput.model_validate({**input.model_dump(), "state": d}))
            deadline, what = self._next_deadline()
            try:
                await workflow.wait_condition(
                    lambda: bool(d.pending),
                    timeout=(deadline - workflow.now()) if deadline else None,
                    timeout_summary=f"{what} at {deadline:%Y-%m-%d %H:%M} UTC" if deadline else None,
                )
                continue
            except TimeoutError:
                await self._deadline_passed()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return d

    def _continue_as_new_due(self) -> bool:
        d = self.data
        return d.checks_this_run >= d.rules.checks_per_run or workflow.info().is_continue_as_new_suggested()

    def _next_deadline(self) -> tuple[datetime | None, str]:
        d = self.data
        if d.state == S.SERVED:
            return d.objection_window_ends, "objection window ends"
        if d.state == S.ENFORCEMENT_ORDER_DUE:
            return d.enforcement_order_deadline, "six-month limit for the enforcement order application (§701 ZPO)"
        if d.state == S.ENFORCEMENT_ORDER_SERVED:
            return d.enforcement_objection_window_ends, "Einspruch window ends"
        if d.state == S.ENFORCEMENT:
            return d.enforcement_ends, "enforcement period ends"
        if d.state == S.LONG_TERM_MONITORING:
            return d.next_check_at, f"monitoring check {d.checks_done + 1}"
        return None, ""

    async def _deadline_passed(self) -> None:
        d, now = self.data, workflow.now()
        if d.state == S.SERVED:
            deadline = d.enforcement_order_deadline
            await self._event("objection_window_passed", None, S.ENFORCEMENT_ORDER_DUE)
            await self._enter(
                S.ENFORCEMENT_ORDER_DUE,
                f"No objection within two weeks: apply for the enforcement order by {deadline:%Y-%m-%d %H:%M} UTC",
            )
        elif d.state == S.ENFORCEMENT_ORDER_DUE:
            await self._event("enforcement_order_limit_missed", None, S.LAPSED)
            await self._enter(
                S.LAPSED, "Six months since service without an enforcement order application: the order lapsed"
            )
        elif d.state == S.ENFORCEMENT_ORDER_SERVED:
            await self._title_final(self._today(), "No Einspruch within two weeks: the enforcement order is final")
        elif d.state == S.ENFORCEMENT:
            await self._start_monitoring("Enforcement brought no full payment")
        elif d.state == S.LONG_TERM_MONITORING:
            d.checks_done += 1
            d.checks_this_run += 1
            result = await workflow.execute_activity_method(
                CourtActivities.monitoring_check,
                MonitoringCheck(
                    case_id=d.case_id,
                    contract_number=d.contract_number,
                    as_of=self._today(),
                    limitation_date=d.limitation_date,
                    now=now,
                    key=f"{d.case_id}:court:check:{d.checks_done}",
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
                summary=f"Monitoring check {d.checks_done}",
            )
            d.next_check_at = (d.next_check_at or now) + d.rules.monitoring_interval
            text = f"Check {d.checks_done}: {result.balance_cents} cents open"
            if result.limitation_warning:
                text += f"; limitation date {d.limitation_date} is near: act to renew it"
            self._note(text)
            if result.balance_cents <= 0:
                await self._enter(S.SETTLED, "Monitoring found the balance cleared")
            else:
                self._publish()

    # --- inputs --------------------------------------------------------------------------------

    async def _handle(self, message: CourtMessage) -> None:
        d = self.data
        if d.state in FINAL_STATES:
            self._note(f"Ignored {message.kind}: court dunning already {d.state}")
            return
        if message.kind == "event" and message.event is not None:
            await self._court_event(message.event)
        elif message.kind == "payment" and message.payment is not None:
            await self._payment(message.payment)
        elif message.kind == "approve_filing" and message.approval is not None:
            await self._file(message.approval)
        elif message.kind == "apply_enforcement" and message.approval is not None:
            await self._apply_enforcement(message.approval)
        elif message.kind == "case_ended" and message.ended is not None:
            ended = message.ended
            target = S.SETTLED if ended.stage == "paid" else S.CLOSED
            await self._event(f"case_{ended.stage}", None, target, note=ended.reason)
            await self._enter(target, f"The case ended ({ended.stage}): {ended.reason}")

    async def _court_event(self, event: CourtEventInput) -> None:
        d = self.data
        if event.kind == E.DEBTOR_INFORMATION:
            d.debtor_information.append(f"{event.occurred_on}: {event.note}")
            await self._event(event.kind, event.occurred_on, d.state, event.reference, event.note)
            self._note(f"Debtor information recorded by {event.by}")
            return
        target = TRANSITIONS.get(d.state, {}).get(event.kind)
        if target is None:
            # Signals are not validated on arrival: record what came, change nothing.
            await self._event(event.kind, event.occurred_on, d.state, event.reference, f"not allowed in {d.state}")
            self._note(f"Ignored court event {event.kind}: not allowed in state {d.state}")
            return
        if event.reference:
            d.court_reference = event.reference
        await self._event(event.kind, event.occurred_on, target, event.reference, event.note)
        if event.kind == E.SERVED:
            d.served_on = event.occurred_on
            d.objection_window_ends = self._period_end(objection_last_day(event.occurred_on, d.rules))
            d.enforcement_order_deadline = self._period_end(enforcement_order_last_day(event.occurred_on, d.rules))
        elif event.kind == E.ENFORCEMENT_ORDER_SERVED:
            d.enforcement_objection_window_ends = self._period_end(
                enforcement_objection_last_day(event.occurred_on, d.rules)
            )
        if target == S.TITLE_FINAL:
            await self._title_final(event.occurred_on, f"Judgment final ({event.kind})")
            return
        await self._enter(target, f"Court: {event.kind} on {event.occurred_on:%d.%m.%Y}")
        if target == S.LONG_TERM_MONITORING:
            self._start_checks()

    async def _payment(self, payment: PaymentForwarded) -> None:
        d = self.data
        if payment.payment_ref in d.payments:
            return
        d.payments.append(payment.payment_ref)
        if payment.balance_cents <= 0:
            await self._event("payment", payment.paid_on, S.SETTLED, note=payment.payment_ref)
            await self._enter(S.SETTLED, f"Paid in full ({payment.payment_ref})")
            return
        d.limitation_date = restarted_limitation(payment.paid_on, d.title_final_on is not None)
        await self._event("partial_payment", payment.paid_on, d.state, note=f"{payment.payment_ref}")
        self._note(
            f"Partial payment {payment.payment_ref}: {payment.balance_cents} cents open; "
            f"limitation restarts, now {d.limitation_date} (§212 BGB)"
        )
        self._publish()

    async def _file(self, approval: CourtApproval) -> None:
        d = self.data
        if d.state != S.APPLICATION_PREPARED:
            self._note(f"Approval by {approval.approver} ignored: already {d.state}")
            return
        await workflow.execute_activity_method(
            CourtActivities.file_application,
            FileCourtApplication(case_id=d.case_id, approver=approval.approver, now=workflow.now()),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary="Record approval and file the application",
        )
        d.approved_by = approval.approver
        await self._event("filed", self._today(), S.FILED, note=f"approved by {approval.approver}")
        await self._enter(S.FILED, f"Approved by {approval.approver} and filed")

    async def _apply_enforcement(self, approval: CourtApproval) -> None:
        d = self.data
        if d.state != S.ENFORCEMENT_ORDER_DUE or d.served_on is None:
            self._note(f"Enforcement order application by {approval.approver} ignored: state is {d.state}")
            return
        d.sequence += 1
        await workflow.execute_activity_method(
            CourtActivities.apply_enforcement_order,
            ApplyEnforcementOrder(
                case_id=d.case_id,
                contract_number=d.contract_number,
                approver=approval.approver,
                served_on=d.served_on,
                now=workflow.now(),
                key=f"{d.case_id}:court:enforcement-order",
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary="Apply for the enforcement order (Vollstreckungsbescheid)",
        )
        await self._enter(S.ENFORCEMENT_ORDER_APPLIED, f"Enforcement order applied for by {approval.approver}")

    async def _title_final(self, on: date, why: str) -> None:
        d = self.data
        d.title_final_on = on
        d.limitation_date = title_limitation(on)
        await self._event("title_final", on, S.TITLE_FINAL)
        await self._enter(S.TITLE_FINAL, f"{why}; the title lasts until {d.limitation_date} (§197 BGB)")
        d.enforcement_ends = workflow.now() + d.rules.enforcement_period
        await self._event("enforcement_started", self._today(), S.ENFORCEMENT)
        await self._enter(S.ENFORCEMENT, "Enforcement started")

    async def _start_monitoring(self, why: str) -> None:
        await self._event("monitoring_started", self._today(), S.LONG_TERM_MONITORING)
        await self._enter(S.LONG_TERM_MONITORING, f"{why}: long-term monitoring")
        self._start_checks()

    def _start_checks(self) -> None:
        self.data.next_check_at = workflow.now() + self.data.rules.monitoring_interval
        self._publish()

    # --- side effects and the UI ---------------------------------------------------------------

    async def _event(
        self, kind: str, on: date | None, state_after: CourtState, reference: str = "", note: str = ""
    ) -> None:
        d = self.data
        d.sequence += 1
        await workflow.execute_activity_method(
            CourtActivities.record_event,
            RecordCourtEvent(
                case_id=d.case_id,
                kind=kind,
                occurred_on=on,
                state_after=state_after,
                reference=reference,
                note=note,
                now=workflow.now(),
                key=f"{d.case_id}:court:event:{d.sequence}",
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary=f"Court event: {kind}",
        )

    async def _enter(self, state: CourtState, why: str) -> None:
        """The one place the court state changes: journal, search attributes, the case is told."""
        self.data.state = state
        self._note(why)
        self._publish()
        try:
            await workflow.get_external_workflow_handle(self.data.parent_workflow_id).signal(
                "court_progress", CourtProgress(state=state, text=why)
            )
        except FailureError:
            self._note("The case could not be told (it has ended)")

    def _note(self, text: str) -> None:
        d = self.data
        d.journal.append(CourtJournalLine(at=workflow.now(), state=d.state, text=text))
        del d.journal[:-100]

    def _publish(self) -> None:
        d = self.data
        workflow.upsert_search_attributes(
            [sa.CONTRACT_NUMBER.value_set(d.contract_number), sa.COURT_STATE.value_set(d.state.value)]
        )
        deadline, what = self._next_deadline()
        lines = [
            f"**Court dunning** — `{d.state}` (run {d.run})",
            f"- claimed: {d.claimed_cents} cents; application {d.application_id}",
            f"- limitation date: {d.limitation_date}",
        ]
        if d.served_on:
            lines.append(f"- served on {d.served_on}")
        if deadline:
            lines.append(f"- next: {what} at {deadline:%Y-%m-%d %H:%M} UTC")
        if d.state == S.LONG_TERM_MONITORING:
            lines.append(f"- monitoring checks done: {d.checks_done}")
        lines += [f"- {line.at:%Y-%m-%d} {line.text}" for line in d.journal[-5:]]
        workflow.set_current_details("\n".join(lines))

    def _today(self) -> date:
        return local_date(workflow.now(), TIMEZONE)

    def _period_end(self, last_day: date) -> datetime:
        """When a court period with this last day ends (§222(2) ZPO, core/court_dates.py), at the
        court's state where known. Its timer waits for exactly this moment."""
        if not workflow.patched(COURT_PERIODS_PUBLIC_HOLIDAYS):
            return period_end_weekends_only(last_day, TIMEZONE)
        # The holidays package reads its data files when first used for a year: outside the sandbox.
        # The data ships with the code, so every replay computes the same date.
        with workflow.unsafe.sandbox_unrestricted():
            return period_end(last_day, self.data.court_state, TIMEZONE)

    def _enqueue(self, message: CourtMessage) -> int:
        d = self.data
        d.received += 1
        message.number = d.received
        d.pending.append(message)
        return d.received

    async def _until_processed(self, number: int) -> CourtData:
        await workflow.wait_condition(lambda: self.data.processed >= number)
        return self.data

    # --- signals (court feed, the case) ------------------------------------------------------

    @workflow.signal(
        description="A court event from a court feed (not validated: a wrong one is recorded and ignored)."
    )
    def court_event(self, event: CourtEventInput) -> None:
        self._enqueue(CourtMessage(kind="event", event=event))

    @workflow.signal(description="The case forwards a booked payment (balance after it).")
    def payment_forwarded(self, payment: PaymentForwarded) -> None:
        self._enqueue(CourtMessage(kind="payment", payment=payment))

    @workflow.signal(description="The case's staff approved the application (approve_court_filing on the case).")
    def approve_filing_requested(self, approval: CourtApproval) -> None:
        self._enqueue(CourtMessage(kind="approve_filing", approval=approval))

    @workflow.signal(description="The case ended (paid, written off, cancelled).")
    def case_ended(self, ended: CaseEnded) -> None:
        self._enqueue(CourtMessage(kind="case_ended", ended=ended))

    # --- queries and staff updates -------------------------------------------------------------

    @workflow.query(description="The whole court dunning: state, deadlines, limitation date, journal.")
    def status(self) -> CourtData:
        return self.data

    def _require_open(self) -> None:
        if self.data.state in FINAL_STATES:
            raise reject(f"court dunning has ended ({self.data.state}); nothing can change it")

    @workflow.update(description="Record a court event (issued, served, objection, …); checked against the state.")
    async def record_event(self, event: CourtEventInput) -> CourtData:
        return await self._until_processed(self._enqueue(CourtMessage(kind="event", event=event)))

    @record_event.validator
    def _validate_event(self, event: CourtEventInput) -> None:
        self._require_open()
        d = self.data
        if d.pending:
            raise reject("earlier court inputs are still being processed; try again in a moment")
        if event.occurred_on > self._today():
            raise reject(f"occurred_on must not be in the future, got {event.occurred_on}")
        if len(event.note) > MAX_REASON_CHARS or len(event.reference) > MAX_REFERENCE_CHARS:
            raise reject(
                f"note must be at most {MAX_REASON_CHARS} and reference at most {MAX_REFERENCE_CHARS} characters"
            )
        if not event.by.strip():
            raise reject("by must not be empty")
        if event.kind == E.DEBTOR_INFORMATION:
            if not event.note.strip():
                raise reject("debtor_information needs a note")
            return
        allowed = TRANSITIONS.get(d.state, {})
        if event.kind not in allowed:
            raise reject(
                f"court event {event.kind} is not possible in state {d.state}; "
                f"possible: {sorted(k.value for k in allowed) + ['debtor_information']}"
            )
        if event.kind == E.ENFORCEMENT_ORDER_SERVED and d.served_on and event.occurred_on < d.served_on:
            raise reject(f"occurred_on {event.occurred_on} is before the service of the order ({d.served_on})")

    @workflow.update(description="A person approves the prepared application; it is then filed.")
    async def approve_filing(self, approval: CourtApproval) -> CourtData:
        return await self._until_processed(self._enqueue(CourtMessage(kind="approve_filing", approval=approval)))

    @approve_filing.validator
    def _validate_approve(self, approval: CourtApproval) -> None:
        self._require_open()
        if not approval.approver.strip() or len(approval.approver) > MAX_APPROVER_CHARS:
            raise reject(f"approver must not be empty (at most {MAX_APPROVER_CHARS} characters)")
        if self.data.state != S.APPLICATION_PREPARED or any(m.kind == "approve_filing" for m in self.data.pending):
            raise reject(f"no application waits for approval (state is {self.data.state})")

    @workflow.update(description="A person applies for the enforcement order (within six months of service).")
    async def apply_for_enforcement_order(self, approval: CourtApproval) -> CourtData:
        return await self._until_processed(self._enqueue(CourtMessage(kind="apply_enforcement", approval=approval)))

    @apply_for_enforcement_order.validator
    def _validate_apply(self, approval: CourtApproval) -> None:
        self._require_open()
        if not approval.approver.strip() or len(approval.approver) > MAX_APPROVER_CHARS:
            raise reject(f"approver must not be empty (at most {MAX_APPROVER_CHARS} characters)")
        if self.data.state != S.ENFORCEMENT_ORDER_DUE:
            raise reject(f"the enforcement order cannot be applied for in state {self.data.state}")
