"""Built-in dunning plans. Plans are data: a new plan is a new entry here (or a JSON file
validated by `DunningPlan`), never new workflow code."""

from __future__ import annotations

from datetime import timedelta

from models.messages import Channel
from models.plan import Anchor, DunningPlan, LegalBasis, PlanStep, StepKind

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


def _german_first_premium() -> DunningPlan:
    """§37 VVG: the first premium. No cover until it is paid, so nothing to suspend; the separate
    text-form notice tells the customer so. After the deadline an agent calls; withdrawal from the
    contract (Rücktritt) stays a person's decision."""
    d = timedelta(days=1)
    return DunningPlan(
        id="de-first-premium",
        version=1,
        title="Erstbeitrag (DE, § 37 VVG)",
        legal_basis=LegalBasis.FIRST_PREMIUM,
        steps=[
            PlanStep(
                key="reminder",
                kind=StepKind.REMINDER,
                offset=3 * d,
                channels=[E, L],
                summary="Reminder 3 days after the first premium fell due",
            ),
            PlanStep(
                key="notice",
                kind=StepKind.QUALIFIED_NOTICE,
                offset=10 * d,
                channels=[L],
                copies=[E],
                fees_cents={L: 150},
                summary="Separate notice §37(2) VVG 10 days after due",
            ),
            PlanStep(
                key="sms",
                kind=StepKind.PAY_LINK_SMS,
                after=Anchor.DEADLINE,
                offset=d,
                channels=[S, E],
                summary="SMS with pay link 1 day after deadline",
            ),
            PlanStep(
                key="agency",
                kind=StepKind.AGENCY_HANDOVER,
                after=Anchor.DEADLINE,
                offset=5 * d,
                summary="Agent calls 5 days after deadline (withdrawal is a person's decision)",
            ),
        ],
    )


def _danish_follow_up() -> DunningPlan:
    """Denmark: three reminders at most, 10+ days apart, fee at most 100 DKK each (renteloven §9b)."""
    d = timedelta(days=1)
    return DunningPlan(
        id="dk-follow-up",
        version=1,
        title="Rykkerforløb (DK)",
        language="da",
        timezone="Europe/Copenhagen",
        holiday_country="DK",
        legal_basis=LegalBasis.DENMARK,
        currency="DKK",
        steps=[
            PlanStep(
                key="reminder",
                kind=StepKind.REMINDER,
                offset=3 * d,
                channels=[E, L],
                summary="1st reminder (rykker) 3 days after due, free",
            ),
            PlanStep(
                key="notice",
                kind=StepKind.QUALIFIED_NOTICE,
                offset=13 * d,
                channels=[L],
                copies=[E],
                fees_cents={L: 10_000},
                summary="2nd reminder with deadline and consequences 13 days after due, 100 DKK",
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
                offset=34 * d,
                channels=[S, E],
                summary="3rd and last reminder: SMS with pay link 34 days after due",
            ),
            PlanStep(
                key="agency",
                kind=StepKind.AGENCY_HANDOVER,
                after=Anchor.DEADLINE,
                offset=10 * d,
                summary="Hand over to the agent 10 days after deadline",
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
        _german_first_premium(),
        _danish_follow_up(),
        _demo("demo", timedelta(minutes=1), "minutes"),  # make run
        _demo("demo-fast", timedelta(seconds=2), "seconds"),  # the end-to-end test
    )
}


def get_plan(plan_id: str) -> DunningPlan:
    try:
        return BUILTIN_PLANS[plan_id]
    except KeyError:
        raise KeyError(f"unknown dunning plan '{plan_id}', known: {sorted(BUILTIN_PLANS)}") from None
