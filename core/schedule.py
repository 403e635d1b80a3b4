"""When is the next step of a case due, and when does a hold for a payment end? Pure functions
of the case state and the plan.

Steps anchored on `due` count from the *current* oldest unpaid item, so after a partial
payment the next step re-anchors; the index of the next step never moves backwards or skips,
so nothing is sent twice or left out.
"""

from __future__ import annotations

from datetime import date, datetime

from core.calendar import dispatch_moment, start_of_day
from models.case import CaseState, OpenItem
from models.plan import MESSAGE_STEPS, Anchor, DunningPlan, PlanStep, StepKind

SUPPLEMENT = "_supplement_"


def due_anchor(state: CaseState, items: list[OpenItem] | None = None) -> datetime:
    """The anchor of the oldest unpaid item (or the case opening if only fees are open)."""
    plan = state.plan
    anchors: list[datetime] = []
    for item in state.arrears.items if items is None else items:
        if plan.anchor_mode == "due_date":
            anchors.append(start_of_day(item.due_date, plan.timezone))
        else:
            anchors.append(state.joined_at.get(item.premium_id, state.opened_at))
    return min(anchors) if anchors else state.opened_at


def next_step(state: CaseState) -> PlanStep | None:
    """The next plan step, or a supplementary notice if that is due earlier."""
    steps = state.plan.steps
    planned = steps[state.next_step] if state.next_step < len(steps) else None
    supplement = supplement_step(state)
    if supplement is None:
        return planned
    if planned is None or step_due_at(state, supplement) <= step_due_at(state, planned):
        return supplement
    return planned


def unnoticed_items(state: CaseState) -> list[OpenItem]:
    """Open premiums the qualified notice did not itemise (they joined the case after it)."""
    if state.deadline is None or state.noticed_items is None:
        return []
    return [i for i in state.arrears.items if i.premium_id not in state.noticed_items]


def supplement_step(state: CaseState) -> PlanStep | None:
    """A premium that falls due after the qualified notice is not covered by it (§38 VVG needs a
    notice that names the amount): it gets a supplementary qualified notice of its own, itemising
    everything open, timed like the plan's notice from that premium's due date."""
    if not unnoticed_items(state):
        return None
    notice = next((s for s in state.plan.steps if s.kind == StepKind.QUALIFIED_NOTICE), None)
    if notice is None:
        return None
    return notice.model_copy(
        update={
            "key": f"{notice.key}{SUPPLEMENT}{state.supplements + 1}",
            "after": Anchor.DUE,
            "summary": "Supplementary qualified notice for premiums that joined after the notice",
        }
    )


def is_supplement(step: PlanStep) -> bool:
    return SUPPLEMENT in step.key


def last_message_at(state: CaseState) -> datetime | None:
    """When the case last sent the customer a message step (reminder, notice, pay-link SMS)."""
    sent = [record.at for record in state.steps_done if record.kind in MESSAGE_STEPS]
    return max(sent) if sent else None


def step_due_at(state: CaseState, step: PlanStep, now: datetime | None = None) -> datetime:
    """When the step runs. With `now`, a step already overdue (a hold or promise just ended, a
    payment re-anchored it) runs at the next dispatch moment from now: a promise broken on a
    Saturday resumes dunning on Monday morning, not at midnight.

    A step with `min_gap` also waits until that long after the previous message was actually sent:
    a case discovered weeks after the due date has every offset in the past, and without the gap
    its reminder and its §38 notice would go out in the same second — the customer gets no time to
    react to the reminder, and in Denmark reminders must really be 10 days apart (renteloven §9b)."""
    if is_supplement(step):
        base = due_anchor(state, unnoticed_items(state))
    elif step.after == Anchor.DUE:
        base = due_anchor(state)
    elif step.after == Anchor.DEADLINE:
        if state.deadline is None:
            raise ValueError(f"step {step.key} counts from the deadline, but no notice set one")
        base = state.deadline
    else:
        if state.handover_at is None:
            raise ValueError(f"step {step.key} counts from the handover, which has not happened")
        base = state.handover_at
    due = base + step.offset
    previous = last_message_at(state)
    if step.min_gap and previous is not None:
        due = max(due, previous + step.min_gap)
    if now is not None and due < now:
        due = now
    if state.plan.demo or step.kind == StepKind.SUSPEND_COVER:
        return due  # suspension is a legal effect at the deadline, not something sent
    # Everything sent or handed to a person waits for a working day, 08:00–20:00 local time.
    # (Reads the holiday calendar: the workflow calls this inside sandbox_unrestricted.)
    return dispatch_moment(due, state.plan.timezone, state.plan.holiday_country)


def payment_hold_end(pay_by: date, plan: DunningPlan, now: datetime | None = None) -> datetime:
    """When a hold that waits for money due on `pay_by` ends: the start of that day in the plan's
    zone plus the plan's `promise_grace` for the money to arrive (one day: the whole day to pay).
    The one rule for a promise to pay (staff or agent) and for each instalment of a plan.

    With `now`, a demo plan (minutes, not days) ends the hold `promise_grace` from now, so a person
    watching sees a promise come due; instalment dates stay real dates, so they pass no `now`.
    """
    if now is not None and plan.demo:
        return now + plan.promise_grace
    return start_of_day(pay_by, plan.timezone) + plan.promise_grace
