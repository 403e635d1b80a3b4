"""Abandoned-quote reactivation (`quote-<quote id>`) and the follow-ups after a contract is signed
(`onboarding-<contract>`, `inspection-<contract>`). DOMAIN.md §9, SPEC.md §5.

The quote workflow reads like the campaign: send the double-opt-in mail → wait for the
confirmation (or purge the data when its retention ends) → assign the experiment arms → for each
reminder of the arm: wait until it is due, book a send slot (quiet hours, frequency cap: a later
moment, never a dropped mail), wait for it, send → follow the quote until its conversion window
closes. Any exit signal (touchpoint, unsubscribe, bounce, spam report) ends every wait at once.
The holdout arm runs the same path without the mails.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ApplicationError

from workflows.common import ACTIVITY_TIMEOUT, RETRY

with workflow.unsafe.imports_passed_through():
    from activities.campaign import CampaignActivities, Slot
    from core.campaign import CampaignPlan, Segment, assign_all, inspection_reminder_due
    from models.campaign import (
        CampaignStage,
        CheckExit,
        ConsentConfirmed,
        ExitKind,
        ExitSignal,
        FollowUpInput,
        FollowUpResult,
        MailResult,
        QuoteInput,
        QuoteStatus,
        QuoteStatusView,
        RecordAssignments,
        RecordQuoteOutcome,
        ReserveSlot,
        SendCampaignMail,
        SendConfirmation,
        SentMail,
    )
    from workflows import search_attributes as sa

HOLDOUT_ARM = "holdout"


def quote_workflow_id(quote_id: str) -> str:
    return f"quote-{quote_id}"


def onboarding_workflow_id(contract_number: str) -> str:
    return f"onboarding-{contract_number}"


def inspection_workflow_id(contract_number: str) -> str:
    return f"inspection-{contract_number}"


class _Mailer:
    """What the three campaign workflows share: exits, waits, send slots, the UI."""

    exit: ExitSignal | None
    _published_stage: str | None

    def _accept_exit(self, signal: ExitSignal) -> None:
        if self.exit is None:
            self.exit = signal
            self._note(f"Exit: {signal.kind.value}{' (' + signal.detail + ')' if signal.detail else ''}")

    def _note(self, text: str) -> None:
        raise NotImplementedError

    async def _wait_until(self, moment: datetime, what: str) -> bool:
        """True when the moment came; False when an exit arrived first (the wait ends at once)."""
        delay = moment - workflow.now()
        if self.exit is not None:
            return False
        if delay <= timedelta(0):
            return True
        try:
            await workflow.wait_condition(
                lambda: self.exit is not None, timeout=delay, timeout_summary=f"{what} at {moment:%Y-%m-%d %H:%M} UTC"
            )
            return False
        except TimeoutError:
            return True

    def _set_stage_attribute(self, stage: CampaignStage) -> None:
        if stage.value != self._published_stage:
            updates: list[SearchAttributeUpdate[Any]] = [sa.CAMPAIGN_STAGE.value_set(stage.value)]
            workflow.upsert_search_attributes(updates)
            self._published_stage = stage.value

    async def _send_when_allowed(
        self,
        workflow_id: str,
        person_key: str,
        step: str,
        due: datetime,
        mail: SendCampaignMail,
        plan: CampaignPlan,
    ) -> tuple[SentMail | None, MailResult | None]:
        """Book a slot (quiet hours + cap), wait for it, send. (None, None) on an exit while waiting."""
        key = f"{workflow_id}:{step}"
        slot: Slot = await workflow.execute_activity_method(
            CampaignActivities.reserve_slot,
            ReserveSlot(
                person_key=person_key, key=key, workflow_id=workflow_id, due=due, plan=plan, now=workflow.now()
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary=f"Book a send slot for {step}",
        )
        if slot.postponed_reason:
            self._note(f"{step} postponed by {slot.postponed_reason} to {slot.send_at:%Y-%m-%d %H:%M} UTC")
            self._on_postponed(slot.send_at)
        if not await self._wait_until(slot.send_at, f"{step} ({slot.postponed_reason or 'due'})"):
            return None, None
        mail.key, mail.now, mail.due_at, mail.postponed_reason = key, workflow.now(), due, slot.postponed_reason
        result: MailResult = await workflow.execute_activity_method(
            CampaignActivities.send_campaign_mail,
            mail,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary=f"Send {step}",
        )
        if not result.sent:
            if result.blocked_by is not None:
                self._accept_exit(result.blocked_by)
            return None, result
        sent = SentMail(step=step, due_at=due, sent_at=workflow.now(), postponed_reason=slot.postponed_reason)
        self._note(f"{step} sent")
        return sent, result

    def _on_postponed(self, send_at: datetime) -> None:
        pass


@workflow.defn
class QuoteReactivation(_Mailer):
    @workflow.init
    def __init__(self, input: QuoteInput) -> None:
        self.input = input
        self.exit = None
        self.view = QuoteStatusView(
            quote_id=input.quote_id,
            stage=CampaignStage.AWAITING_CONFIRMATION if input.person_key else CampaignStage.NO_CONSENT,
            segment=input.segment,
        )
        self._published_stage = None

    # --- the process -------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: QuoteInput) -> QuoteStatusView:
        if input.person_key is None:
            self._enter(CampaignStage.NO_CONSENT, "Abandoned without opt-in: no mail will be sent")
            return self.view
        person_key, plan = input.person_key, input.plan
        await self._activity(
            CampaignActivities.send_confirmation,
            SendConfirmation(
                quote_id=input.quote_id,
                key=f"{self._id}:confirmation",
                now=workflow.now(),
                retention_days=plan.confirmation_retention.days,
            ),
            "Send the double-opt-in confirmation mail (no advertising)",
        )
        self._enter(CampaignStage.AWAITING_CONFIRMATION, "Confirmation mail sent; waiting for the person to confirm")
        retention_end = input.abandoned_at + plan.confirmation_retention
        try:
            await workflow.wait_condition(
                lambda: self.view.confirmed_at is not None or self.exit is not None,
                timeout=max(retention_end - workflow.now(), timedelta(seconds=1)),
                timeout_summary="unconfirmed data purged at the end of its retention",
            )
        except TimeoutError:
            pass
        if self.view.confirmed_at is None:
            # Retention over, or an exit before confirming: without a confirmation the address goes.
            purged = await self._activity(
                CampaignActivities.purge_unconfirmed,
                RecordQuoteOutcome(
                    quote_id=input.quote_id,
                    status=QuoteStatus.EXITED if self.exit else QuoteStatus.PURGED,
                    at=workflow.now(),
                    exit=self.exit,
                ),
                "Purge the unconfirmed opt-in",
            )
            if purged:
                self.view.exit = self.exit
                stage = CampaignStage.EXITED if self.exit else CampaignStage.PURGED
                self._enter(stage, "Opt-in not confirmed: personal data purged")
                return self.view
            self.view.confirmed_at = workflow.now()  # confirmed in the ledger; its signal is still on the way
        if self.exit is not None:
            return await self._finish()

        self.view.arms = assign_all(input.quote_id, plan)
        await self._activity(
            CampaignActivities.record_assignments,
            RecordAssignments(quote_id=input.quote_id, arms=self.view.arms, now=workflow.now()),
            "Record the experiment arms",
        )
        self._note("Arms: " + ", ".join(f"{name}={arm}" for name, arm in self.view.arms.items()))
        earlier = await self._activity(
            CampaignActivities.check_exit,
            CheckExit(person_key=person_key, since=input.abandoned_at),
            "Any contact since abandoning?",
        )
        if earlier is not None:
            self._accept_exit(earlier)
        if self.exit is None:
            await self._reminders()
        if self.exit is None:
            self._enter(CampaignStage.WAITING, "Following the quote until its conversion window closes")
            self.view.next_mail_at = None
            await self._wait_until(input.abandoned_at + plan.conversion_window, "conversion window closes")
        return await self._finish()

    async def _reminders(self) -> None:
        input, plan = self.input, self.input.plan
        assert input.person_key is not None and self.view.confirmed_at is not None
        if self.view.arms[plan.holdout.name] == HOLDOUT_ARM:
            self._note("Holdout: no reminders; followed like everyone else")
            return
        waits = plan.wait_times.arm(self.view.arms[plan.wait_times.name]).waits
        tailored = plan.content.arm(self.view.arms[plan.content.name]).tailored
        for number, wait in enumerate(waits, start=1):
            step = f"reminder-{number}"
            due = self.view.confirmed_at + wait
            self.view.next_mail_at = due
            self._enter(CampaignStage.WAITING, f"Waiting for {step}")
            if not await self._wait_until(due, step):
                return
            sent, _ = await self._send_when_allowed(
                self._id,
                input.person_key,
                step,
                due,
                SendCampaignMail(
                    key="",
                    workflow_id=self._id,
                    step=step,
                    kind="quote_reminder",
                    person_key=input.person_key,
                    quote_id=input.quote_id,
                    since=input.abandoned_at,
                    segment=input.segment if tailored else Segment.STANDARD,
                    reminder_number=number,
                    due_at=due,
                    now=workflow.now(),
                ),
                plan,
            )
            if sent is None:
                return
            self.view.mails.append(sent)

    async def _finish(self) -> QuoteStatusView:
        exited = self.exit is not None
        self.view.next_mail_at = None
        await self._activity(
            CampaignActivities.record_outcome,
            RecordQuoteOutcome(
                quote_id=self.input.quote_id,
                status=QuoteStatus.EXITED if exited else QuoteStatus.FINISHED,
                at=workflow.now(),
                exit=self.exit,
            ),
            "Record the outcome",
        )
        self.view.exit = self.exit
        self._enter(
            CampaignStage.EXITED if exited else CampaignStage.FINISHED,
            "Sequence ended by an exit" if exited else "Conversion window closed",
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.view

    # --- messages from outside ---------------------------------------------------------------

    @workflow.signal(description="The person clicked the double-opt-in link (recorded in the consent proof).")
    def consent_confirmed(self, confirmed: ConsentConfirmed) -> None:
        if self.view.confirmed_at is None and self.view.stage == CampaignStage.AWAITING_CONFIRMATION:
            # The reminders count from when the workflow heard of it (its own clock, replay-safe);
            # the proof keeps the moment of the click.
            self.view.confirmed_at = workflow.now()
            self._note(f"Opt-in confirmed (clicked {confirmed.confirmed_at:%Y-%m-%d %H:%M} UTC)")

    @workflow.signal(description="Touchpoint, unsubscribe, bounce or spam report: end the sequence at once.")
    def exit_sequence(self, signal: ExitSignal) -> None:
        if signal.kind == ExitKind.TOUCHPOINT and signal.occurred_at < self.input.abandoned_at:
            return  # contact before the abandonment does not count (DOMAIN.md §9: "since abandoning")
        self._accept_exit(signal)

    @workflow.query(description="The whole quote: stage, arms, mails sent and when, next mail, exit, journal.")
    def status(self) -> QuoteStatusView:
        return self.view

    # --- helpers -----------------------------------------------------------------------------

    @property
    def _id(self) -> str:
        return workflow.info().workflow_id

    async def _activity(self, method: Any, argument: Any, summary: str) -> Any:
        return await workflow.execute_activity_method(
            method, argument, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY, summary=summary
        )

    def _enter(self, stage: CampaignStage, why: str) -> None:
        self.view.stage = stage
        self._note(why)
        self._set_stage_attribute(stage)
        lines = [
            f"**Quote** {self.input.quote_id} · segment {self.input.segment.value} · stage **{stage.value}**",
            "Arms: " + (", ".join(f"{k}={v}" for k, v in self.view.arms.items()) or "not assigned yet"),
            f"Mails sent: {len(self.view.mails)}",
        ]
        if self.view.next_mail_at:
            lines.append(f"Next mail due: {self.view.next_mail_at:%Y-%m-%d %H:%M} UTC")
        if self.exit:
            lines.append(f"Exit: {self.exit.kind.value} {self.exit.detail}".strip())
        workflow.set_current_details("\n\n".join(lines))

    def _note(self, text: str) -> None:
        self.view.journal.append(f"{workflow.now():%Y-%m-%d %H:%M} {text}")
        del self.view.journal[:-100]

    def _on_postponed(self, send_at: datetime) -> None:
        self.view.next_mail_at = send_at
        self._enter(CampaignStage.POSTPONED, f"Held until {send_at:%Y-%m-%d %H:%M} UTC")


class _FollowUp(_Mailer):
    """Onboarding and inspection reminder: mails to a new customer, stopped only by unsubscribe,
    bounce or spam report (a touchpoint is what they are about, not a reason to stop)."""

    def _init(self, input: FollowUpInput) -> None:
        self.input = input
        self.exit = None
        self.result = FollowUpResult()
        self._published_stage = None
        self.journal: list[str] = []

    def _note(self, text: str) -> None:
        self.journal.append(f"{workflow.now():%Y-%m-%d %H:%M} {text}")
        del self.journal[:-100]

    def _accept_follow_up_exit(self, signal: ExitSignal) -> None:
        if signal.kind != ExitKind.TOUCHPOINT:
            self._accept_exit(signal)

    async def _mail(self, step: str, due: datetime, kind: str, number: int) -> bool:
        input = self.input
        workflow_id = workflow.info().workflow_id
        self._set_stage_attribute(CampaignStage.WAITING)
        workflow.set_current_details(f"Contract {input.contract_number}: {step} due {due:%Y-%m-%d %H:%M} UTC")
        if not await self._wait_until(due, step):
            return False
        sent, _ = await self._send_when_allowed(
            workflow_id,
            input.person_key,
            step,
            due,
            SendCampaignMail(
                key="",
                workflow_id=workflow_id,
                step=step,
                kind=kind,
                person_key=input.person_key,
                since=input.signed_at,
                stop_on_touchpoint=False,
                reminder_number=number,
                contract_number=input.contract_number,
                inspection_due=input.inspection_due,
                due_at=due,
                now=workflow.now(),
            ),
            input.plan,
        )
        if sent is None:
            return False
        self.result.mails.append(sent)
        return True

    async def _end(self) -> FollowUpResult:
        self.result.stopped_by = self.exit
        await workflow.execute_activity_method(
            CampaignActivities.release_slots,
            workflow.info().workflow_id,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary="Free unused send slots",
        )
        self._set_stage_attribute(CampaignStage.EXITED if self.exit else CampaignStage.FINISHED)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.result


@workflow.defn
class OnboardingSequence(_FollowUp):
    """Welcome and tips mails after a contract was signed; started once per contract."""

    @workflow.init
    def __init__(self, input: FollowUpInput) -> None:
        self._init(input)

    @workflow.run
    async def run(self, input: FollowUpInput) -> FollowUpResult:
        for number, wait in enumerate(input.plan.onboarding_waits, start=1):
            if not await self._mail(f"onboarding-{number}", input.signed_at + wait, "quote_onboarding", number):
                break
        return await self._end()

    @workflow.signal(description="Unsubscribe, bounce or spam report: stop at once.")
    def exit_sequence(self, signal: ExitSignal) -> None:
        self._accept_follow_up_exit(signal)

    @workflow.query(description="Mails sent so far and why it stopped.")
    def status(self) -> FollowUpResult:
        return self.result


@workflow.defn
class InspectionReminder(_FollowUp):
    """One reminder of the vehicle inspection (Hauptuntersuchung), timed from its due date."""

    @workflow.init
    def __init__(self, input: FollowUpInput) -> None:
        self._init(input)

    @workflow.run
    async def run(self, input: FollowUpInput) -> FollowUpResult:
        if input.inspection_due is None:
            raise ApplicationError(
                "an inspection reminder needs inspection_due", type="InvalidInput", non_retryable=True
            )
        due = max(inspection_reminder_due(input.inspection_due, input.plan), workflow.now())
        await self._mail("inspection", due, "quote_inspection", 1)
        return await self._end()

    @workflow.signal(description="Unsubscribe, bounce or spam report: stop at once.")
    def exit_sequence(self, signal: ExitSignal) -> None:
        self._accept_follow_up_exit(signal)

    @workflow.query(description="Mails sent so far and why it stopped.")
    def status(self) -> FollowUpResult:
        return self.result
