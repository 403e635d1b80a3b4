"""Built-in dunning plans. Plans are data: a new plan is a new entry here (or a JSON file
validated by `DunningPlan`), never new workflow code."""

from __future__ import annotations

from datetime import timedelta

from models.messages import Channel
from models.plan import Anchor, DunningPlan, PlanStep, StepKind

E, L, S = Channel.EMAIL, Channel.LETTER, Channel.SMS


def _german_follow_up() -> DunningPlan:
    """SPEC.md §4: follow-up premium, consumer, Germany."""
    d = timedelta(days=1)
    return DunningPlan(
        id="de-follow-up",
        version=1,
        title="Folgebeitrag Verbraucher (DE)",
        steps=[
            PlanStep(
                key="reminder",
                kind=StepKind.REMINDER,
                offset=3 * d,
                channels=[E, L],
                fees_cents={},
                summary="Friendly reminder 3 days after due",
            ),
            PlanStep(
                key="notice",
                kind=StepKind.QUALIFIED_NOTICE,
                offset=14 * d,
                channels=[L],
                copies=[E],
                fees_cents={L: 150},
                summary="Qualified notice §38 VVG 14 days after due",
            ),
            PlanStep(
                key="suspend",
                kind=StepKind.SUSPEND_COVER,
                after=Anchor.DEADLINE,
                offset=timedelta(0),
                summary="Suspend cover when the deadline passes",
            ),
            PlanStep(
                key="sms",
                kind=StepKind.PAY_LINK_SMS,
                after=Anchor.DEADLINE,
                offset=d,
                channels=[S, E],
                copies=[E],
                summary="SMS with pay link 1 day after deadline",
            ),
            PlanStep(
                key="agency",
                kind=StepKind.AGENCY_HANDOVER,
                after=Anchor.DEADLINE,
                offset=7 * d,
                summary="Hand over to the agent 7 days after deadline",
            ),
            PlanStep(
                key="court",
                kind=StepKind.COURT_DUNNING,
                after=Anchor.HANDOVER,
                offset=30 * d,
                summary="Court dunning 30 days after unresolved handover",
            ),
        ],
    )


def _demo(plan_id: str, m: timedelta, unit: str) -> DunningPlan:
    """The German plan with minutes (or seconds) instead of days, so a person sees cases move."""
    base = _german_follow_up()
    offsets = {"reminder": 1 * m, "notice": 2 * m, "suspend": 0 * m, "sms": 1 * m, "agency": 2 * m, "court": 4 * m}
    return base.model_copy(
        update={
            "id": plan_id,
            "title": f"Demo ({unit}, not legally effective)",
            "anchor_mode": "joined",
            "demo": True,
            "payment_period": 3 * m,
            "receipt_delay": {L: timedelta(0), E: timedelta(0)},
            "promise_grace": m,
            "steps": [
                s.model_copy(update={"offset": offsets[s.key], "summary": _demo_summary(s.summary, offsets[s.key])})
                for s in base.steps
            ],
        }
    )


def _demo_summary(summary: str, offset: timedelta) -> str:
    """'Qualified notice §38 VVG 14 days after due' → 'Qualified notice §38 VVG 120 s after due'."""
    words = summary.split()
    if "days" in words or "day" in words:
        at = words.index("days") if "days" in words else words.index("day")
        words[at - 1 : at + 1] = [f"{int(offset.total_seconds())} s"]
    return " ".join(words)


BUILTIN_PLANS: dict[str, DunningPlan] = {
    p.id: p
    for p in (
        _german_follow_up(),
        _demo("demo", timedelta(minutes=1), "minutes"),  # make run
        _demo("demo-fast", timedelta(seconds=2), "seconds"),  # the end-to-end test
    )
}


def get_plan(plan_id: str) -> DunningPlan:
    try:
        return BUILTIN_PLANS[plan_id]
    except KeyError:
        raise KeyError(f"unknown dunning plan '{plan_id}', known: {sorted(BUILTIN_PLANS)}") from None
