"""What a customer may arrange alone in the portal (issue #14, DOMAIN.md §11): pure, like the decider.

The plan's guardrails (`DunningPlan.self_service`) map the open balance to a band: how many monthly
instalments of at least how much, or a deferral of how many days. Inside them an arrangement is
agreed at once (it only ever favours the customer, so no Art. 22 GDPR question); outside them the
proposal becomes a request for a clerk. One arrangement per case by default; after a broken one the
next needs a clerk; never once the court application is approved (or while it waits for approval,
or around a termination: a person is deciding then).

`judge` answers with a `Verdict`: a code the portal shows in the customer's language with its
params, and an English message for the case's journal, the Temporal history and staff. The portal
asks it to preview; the case's update validator asks it again against the case's own state, which
is what counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from core.instalments import equal_instalments
from core.money import format_eur
from models.case import CaseStage, CaseState, CustomerArrangement, HoldKind, Instalment
from models.plan import SelfServiceRules

# Stages in which a person decides, so a customer's own arrangement would pre-empt them.
PERSON_DECIDES = frozenset(
    {CaseStage.COURT_APPROVAL, CaseStage.COURT_FILED, CaseStage.TERMINATION_APPROVAL, CaseStage.TERMINATED}
)
MIN_PORTAL_INSTALMENTS = 2  # one "instalment" is a deferral


@dataclass(frozen=True)
class Verdict:
    code: str  # "ok", or why not: the portal's text for it (web/public/portal/texts) takes `params`
    message: str = ""  # English, for the journal and staff
    params: dict[str, str | int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.code == "ok"


OK = Verdict("ok")


@dataclass(frozen=True)
class Offer:
    """What the portal's form offers for this balance (nothing when the band allows nothing)."""

    max_instalments: int
    min_instalment_cents: int
    max_deferral_days: int
    first_instalment_by: date
    deferral_until: date

    @property
    def instalments(self) -> bool:
        return self.max_instalments >= MIN_PORTAL_INSTALMENTS

    @property
    def deferral(self) -> bool:
        return self.max_deferral_days > 0


def offer(rules: SelfServiceRules, balance_cents: int, today: date) -> Offer:
    band = rules.band_for(balance_cents)
    # As many instalments as the band allows *and* the minimum instalment leaves room for.
    by_minimum = balance_cents // band.min_instalment_cents if band.min_instalment_cents else band.max_instalments
    return Offer(
        max_instalments=min(band.max_instalments, by_minimum),
        min_instalment_cents=band.min_instalment_cents,
        max_deferral_days=band.max_deferral_days,
        first_instalment_by=today + timedelta(days=rules.first_instalment_within_days),
        deferral_until=today + timedelta(days=band.max_deferral_days),
    )


def schedule(arrangement: CustomerArrangement, balance_cents: int) -> list[Instalment]:
    """The instalments of a judged instalment arrangement (monthly, the odd cents in the first)."""
    assert arrangement.first_due is not None
    return equal_instalments(balance_cents, arrangement.instalments, arrangement.first_due)


def case_blocks(state: CaseState, closed: bool) -> Verdict | None:
    """Why the case itself takes no arrangement from the customer now, or None."""
    if closed:
        return Verdict("case_closed", f"case is closed ({state.stage}); nothing to arrange")
    if state.arrears.balance_cents <= 0:
        return Verdict("nothing_open", "nothing is open on this contract")
    if state.court_approved_by is not None or state.stage in PERSON_DECIDES:
        return Verdict(
            "person_decides",
            f"the case is at {state.stage}: a person decides on any arrangement (request a clerk)",
            {"stage": state.stage.value},
        )
    if state.hold is not None and state.hold.kind in (HoldKind.DISPUTE, HoldKind.STOPPED, HoldKind.ATTENTION):
        return Verdict(
            "person_decides", f"the case waits for a person ({state.hold.kind})", {"stage": state.stage.value}
        )
    return None


def judge(
    rules: SelfServiceRules,
    arrangement: CustomerArrangement,
    balance_cents: int,
    today: date,
    used: int,
) -> Verdict:
    """Is this arrangement inside the guardrails for this balance? (`used`: arrangements the
    customer made in this case already.)"""
    if used >= rules.arrangements_per_case:
        return Verdict(
            "already_used",
            f"{used} self-service arrangement(s) made in this case already (the plan allows "
            f"{rules.arrangements_per_case}): a clerk decides on another",
            {"allowed": rules.arrangements_per_case},
        )
    possible = offer(rules, balance_cents, today)
    balance = format_eur(balance_cents)
    if arrangement.kind == "deferral":
        pay_by = arrangement.pay_by
        if pay_by is None:
            return Verdict("date_missing", "pay_by is missing")
        if pay_by <= today:
            return Verdict("date_not_future", f"pay_by must be after today ({today}), got {pay_by}")
        if not possible.deferral:
            return Verdict(
                "no_deferral", f"the plan allows no self-service deferral for {balance}", {"balance": balance}
            )
        if pay_by > possible.deferral_until:
            return Verdict(
                "deferral_too_long",
                f"a deferral may run {possible.max_deferral_days} days, until {possible.deferral_until}; "
                f"asked until {pay_by}",
                {"days": possible.max_deferral_days, "until": possible.deferral_until.isoformat()},
            )
        return OK
    count, first_due = arrangement.instalments, arrangement.first_due
    if first_due is None:
        return Verdict("date_missing", "first_due is missing")
    if first_due < today:
        return Verdict("date_in_past", f"the first instalment must be due today or later, got {first_due}")
    if not possible.instalments:
        return Verdict(
            "no_instalments", f"the plan allows no self-service instalments for {balance}", {"balance": balance}
        )
    if count < MIN_PORTAL_INSTALMENTS:
        return Verdict("too_few_instalments", f"an instalment plan has at least 2 instalments, got {count}")
    if count > possible.max_instalments:
        return Verdict(
            "too_many_instalments",
            f"at most {possible.max_instalments} instalments of at least "
            f"{format_eur(possible.min_instalment_cents)} for {balance}; asked for {count}",
            {"max": possible.max_instalments, "min_amount": format_eur(possible.min_instalment_cents)},
        )
    if first_due > possible.first_instalment_by:
        return Verdict(
            "first_due_too_late",
            f"the first instalment must be due by {possible.first_instalment_by}, got {first_due}",
            {"latest": possible.first_instalment_by.isoformat()},
        )
    return OK
