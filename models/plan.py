"""The dunning plan: escalation steps as declarative, validated data (like Kill Bill's overdue.xml).

A case pins the whole plan object in its state when it starts, so editing or replacing a plan
never changes a running case.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, model_validator

# Step kinds and what each means (stage after it, message, legal effect) live in the catalogue;
# imported here under their old names, so `from models.plan import StepKind` keeps working.
from core.steps import MESSAGE_STEPS as MESSAGE_STEPS
from core.steps import StepKind as StepKind
from core.steps import message_kind
from core.timezone import BUSINESS_TIMEZONE
from models.messages import MESSAGE_KINDS, Channel

LEGAL_MIN_PAYMENT_PERIOD = timedelta(days=14)  # §38(1) VVG: at least two weeks from receipt
# Denmark, renteloven §9b: a reminder fee of at most 100 DKK, for at most 3 reminders on the same
# debt, sent at least 10 days apart.
DK_FEE_CAP_CENTS = 10_000
DK_MAX_REMINDERS = 3
DK_MIN_REMINDER_GAP = timedelta(days=10)


class Anchor(StrEnum):
    """What a step's offset counts from."""

    DUE = "due"  # the oldest unpaid item: re-anchors after every payment
    DEADLINE = "deadline"  # the payment deadline of the qualified notice
    HANDOVER = "handover"  # when the agency handover happened


class LegalBasis(StrEnum):
    """Which law the plan's notices follow; the validator enforces its rules on the plan."""

    FOLLOW_UP_PREMIUM = "vvg38"  # Germany, follow-up premium: qualified notice, suspension, reactivation
    FIRST_PREMIUM = "vvg37"  # Germany, first premium: no cover until paid, separate text-form notice
    DENMARK = "dk"  # Denmark: renteloven §9b limits on reminders and fees


class PlanStep(BaseModel):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")
    kind: StepKind
    after: Anchor = Anchor.DUE
    offset: timedelta
    channels: list[Channel] = Field(default_factory=list)  # first usable one is used
    copies: list[Channel] = Field(default_factory=list)  # also sent where usable
    fees_cents: dict[Channel, int] = Field(default_factory=dict)  # per channel actually used
    summary: str = ""  # shown on the timer in the Temporal UI
    # Never run earlier than this long after the case's previous message to the customer was actually
    # sent (core/schedule.step_due_at). Offsets alone space steps from the due date; a case discovered
    # late has all of them in the past and would send reminder and notice in the same second.
    # 0 (the default) is left out when a plan is serialized, so plans pinned by cases that started
    # before this field existed keep their shape (and, for Danish plans, stay valid: see _check_denmark).
    min_gap: timedelta = Field(default=timedelta(0), exclude_if=lambda gap: not gap)

    @model_validator(mode="after")
    def _check(self) -> PlanStep:
        if self.offset < timedelta(0):
            raise ValueError(f"step {self.key}: offset must be >= 0, got {self.offset}")
        if self.min_gap < timedelta(0):
            raise ValueError(f"step {self.key}: min_gap must be >= 0, got {self.min_gap}")
        message = message_kind(self.kind)
        if message is not None:
            if not self.channels:
                raise ValueError(f"step {self.key}: a {self.kind} step needs at least one channel")
            spec = MESSAGE_KINDS[message]
            if spec.text_form and Channel.SMS in self.channels:
                raise ValueError(f"step {self.key}: SMS is not text form (§126b BGB), cannot carry the {message}")
            for channel in [*self.channels, *self.copies]:
                if channel not in spec.channels:
                    raise ValueError(
                        f"step {self.key}: a {message} cannot go by {channel}; "
                        f"its channels are {', '.join(sorted(spec.channels))}"
                    )
        for channel, fee in self.fees_cents.items():
            if fee < 0:
                raise ValueError(f"step {self.key}: fee for {channel} must be >= 0, got {fee}")
        return self


class SelfServiceBand(BaseModel):
    """What a customer may arrange alone for an open balance up to `up_to_cents` (DOMAIN.md §11)."""

    up_to_cents: int | None = Field(default=None, ge=0)  # inclusive; None: no upper bound (the last band)
    max_instalments: int = Field(default=0, ge=0, le=24)  # 0: no instalment plan in the portal
    min_instalment_cents: int = Field(default=0, ge=0)
    max_deferral_days: int = Field(default=0, ge=0, le=90)  # 0: no deferral in the portal


class SelfServiceRules(BaseModel):
    """The portal's guardrails, plan data like the steps (DOMAIN.md §11 defaults). Anything outside
    them becomes a request for a clerk; a dispute always goes to a person."""

    bands: list[SelfServiceBand] = Field(
        default_factory=lambda: [
            SelfServiceBand(up_to_cents=19_999, max_deferral_days=14),
            SelfServiceBand(up_to_cents=100_000, max_instalments=4, min_instalment_cents=5_000, max_deferral_days=14),
            SelfServiceBand(up_to_cents=None, max_instalments=6, min_instalment_cents=10_000),
        ]
    )
    arrangements_per_case: int = Field(default=1, ge=0)  # then the next arrangement needs a clerk
    first_instalment_within_days: int = Field(default=14, ge=0, le=60)  # the first instalment is due by then

    @model_validator(mode="after")
    def _check(self) -> SelfServiceRules:
        bounds = [b.up_to_cents for b in self.bands]
        if not bounds or bounds[-1] is not None:
            raise ValueError("self_service.bands: the last band must have no upper bound (up_to_cents null)")
        finite = [b for b in bounds[:-1] if b is not None]
        if len(finite) != len(bounds) - 1 or finite != sorted(set(finite)):
            raise ValueError(f"self_service.bands: up_to_cents must rise strictly, got {bounds}")
        return self

    def band_for(self, balance_cents: int) -> SelfServiceBand:
        return next(b for b in self.bands if b.up_to_cents is None or balance_cents <= b.up_to_cents)


class DunningPlan(BaseModel):
    id: str = Field(pattern=r"^[a-z][a-z0-9-]{1,39}$")
    version: int = Field(ge=1)
    title: str
    language: str = "de"
    timezone: str = BUSINESS_TIMEZONE
    holiday_country: str = "DE"
    # due_date: offsets count from the premium's due date (real plans);
    # joined: from the moment the item joined the case (the demo plan, measured in minutes).
    anchor_mode: Literal["due_date", "joined"] = "due_date"
    # Demo plans may use minute-long deadlines; they are marked as not legally effective.
    demo: bool = False
    legal_basis: LegalBasis = LegalBasis.FOLLOW_UP_PREMIUM
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    payment_period: timedelta = timedelta(days=14)
    # Demo plans only: exact time from dispatch to receipt (minutes, no calendar).
    receipt_delay: dict[Channel, timedelta] = Field(
        default_factory=lambda: {Channel.LETTER: timedelta(days=3), Channel.EMAIL: timedelta(0)}
    )
    # Real plans: receipt is expected on the n-th working day after the day of dispatch. Since the
    # 2025 postal reform (PostModG) the delivery target for a letter is the third working day, so a
    # letter posted on a Friday is expected on Wednesday; an e-mail arrives the day it is sent (0).
    # A channel not listed counts 0. Working days exclude weekends and public holidays.
    receipt_working_days: dict[Channel, int] = Field(default_factory=lambda: {Channel.LETTER: 3, Channel.EMAIL: 0})
    promise_grace: timedelta = timedelta(days=1)
    # A payment that leaves less than this open goes to manual review instead of escalating
    # (DOMAIN.md §2: there is no tolerance in law, so a person decides). 0 switches it off.
    small_shortfall_cents: int = Field(default=100, ge=0)
    # Claim default interest (§288 BGB) in qualified notices. Off by default: a notice must never
    # state an amount that could be too high (DOMAIN.md §2); interest is tracked either way.
    claim_interest: bool = False
    # Receipts for partial payments and the confirmation when the balance clears.
    confirmation_channels: list[Channel] = Field(default_factory=lambda: [Channel.EMAIL, Channel.LETTER])
    # What a customer may arrange alone in the portal (issue #14); outside it a clerk decides.
    self_service: SelfServiceRules = Field(default_factory=SelfServiceRules)
    steps: list[PlanStep]

    @model_validator(mode="after")
    def _check(self) -> DunningPlan:
        keys = [s.key for s in self.steps]
        if len(set(keys)) != len(keys):
            raise ValueError(f"plan {self.id}: step keys must be unique, got {keys}")
        if not self.steps:
            raise ValueError(f"plan {self.id}: needs at least one step")
        for channel, days in self.receipt_working_days.items():
            if days < 0:
                raise ValueError(f"plan {self.id}: receipt_working_days for {channel} must be >= 0, got {days}")
        if not self.demo and self.payment_period < LEGAL_MIN_PAYMENT_PERIOD:
            raise ValueError(
                f"plan {self.id}: payment_period must be at least 14 days (§38 VVG), got {self.payment_period}"
            )
        seen: set[StepKind] = set()
        last_offset: dict[Anchor, timedelta] = {}
        for step in self.steps:
            if step.after == Anchor.DEADLINE and StepKind.QUALIFIED_NOTICE not in seen:
                raise ValueError(f"step {step.key}: counts from the deadline, but no qualified notice comes before it")
            if step.after == Anchor.HANDOVER and StepKind.AGENCY_HANDOVER not in seen:
                raise ValueError(f"step {step.key}: counts from the handover, but no agency handover comes before it")
            if step.kind == StepKind.SUSPEND_COVER and StepKind.QUALIFIED_NOTICE not in seen:
                raise ValueError(f"step {step.key}: cover may only be suspended after a qualified notice (§38(2) VVG)")
            if step.offset < last_offset.get(step.after, timedelta(0)):
                raise ValueError(f"step {step.key}: offsets from '{step.after}' must not decrease along the plan")
            last_offset[step.after] = step.offset
            seen.add(step.kind)
        terminations = [s for s in self.steps if s.kind == StepKind.TERMINATION]
        if len(terminations) > 1:
            raise ValueError(f"plan {self.id}: at most one termination step")
        for step in terminations:
            if self.legal_basis != LegalBasis.FOLLOW_UP_PREMIUM:
                raise ValueError(f"step {step.key}: termination under §38(3) VVG is for follow-up premiums only")
            if step.after != Anchor.DEADLINE:
                raise ValueError(f"step {step.key}: a termination may only follow the notice deadline (after=deadline)")
        if self.legal_basis == LegalBasis.FIRST_PREMIUM:
            self._check_first_premium()
        if self.legal_basis == LegalBasis.DENMARK:
            self._check_denmark()
        return self

    def _check_first_premium(self) -> None:
        """§37 VVG: while the first premium is unpaid there is no cover to suspend; the insurer is
        free only if a separate text-form notice told the customer so. Withdrawal (Rücktritt) is a
        person's decision, never a plan step (Art. 22 GDPR)."""
        kinds = [s.kind for s in self.steps]
        if StepKind.QUALIFIED_NOTICE not in kinds:
            raise ValueError(f"plan {self.id}: a first-premium plan needs the separate §37 notice (qualified_notice)")
        if StepKind.SUSPEND_COVER in kinds:
            raise ValueError(f"plan {self.id}: a first premium has no cover yet: no suspend_cover step")

    def _check_denmark(self) -> None:
        if self.currency != "DKK":
            raise ValueError(f"plan {self.id}: a Danish plan books in DKK, got {self.currency}")
        reminders = [s for s in self.steps if s.kind in MESSAGE_STEPS]
        if len(reminders) > DK_MAX_REMINDERS:
            raise ValueError(
                f"plan {self.id}: at most {DK_MAX_REMINDERS} reminders for the same debt (renteloven §9b), "
                f"got {len(reminders)}"
            )
        for step in reminders:
            if step.after != Anchor.DUE:
                raise ValueError(f"step {step.key}: Danish reminders count from the due date (gaps must be checkable)")
            for channel, fee in step.fees_cents.items():
                if fee > DK_FEE_CAP_CENTS:
                    raise ValueError(
                        f"step {step.key}: reminder fee for {channel} is {fee / 100:.2f} DKK, "
                        f"the cap is {DK_FEE_CAP_CENTS / 100:.2f} DKK (renteloven §9b)"
                    )
        for earlier, later in zip(reminders, reminders[1:], strict=False):
            if later.offset - earlier.offset < DK_MIN_REMINDER_GAP:
                raise ValueError(
                    f"steps {earlier.key} → {later.key}: reminders must be at least 10 days apart (renteloven §9b), "
                    f"got {later.offset - earlier.offset}"
                )
        # Offsets space the reminders on paper; min_gap keeps them 10 days apart when they are really
        # sent (a case found late). A plan in which no step declares min_gap was pinned by a case that
        # started before the field existed: it is accepted as it was, so that case keeps running.
        if not any("min_gap" in s.model_fields_set for s in self.steps):
            return
        for step in reminders[1:]:
            if step.min_gap < DK_MIN_REMINDER_GAP:
                raise ValueError(
                    f"step {step.key}: a Danish reminder after the first needs min_gap >= 10 days, so that it "
                    f"goes out at least 10 days after the previous one (renteloven §9b), got {step.min_gap}"
                )

    def step(self, key: str) -> PlanStep:
        for s in self.steps:
            if s.key == key:
                return s
        raise KeyError(key)
