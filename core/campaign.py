"""The abandoned-quote campaign's rules as pure functions (DOMAIN.md §9).

No I/O, no clock, no randomness: segments from the quote's context, deterministic experiment
assignment, quiet hours in Europe/Berlin (public holidays are passed in — the `holidays` package
cannot run in the workflow sandbox), the per-person frequency cap that postpones, and the
statistics of the experiment report (two-proportion z-test, lift with a confidence interval).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from statistics import NormalDist
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import BaseModel, Field, model_validator

from core.timezone import BUSINESS_TIMEZONE

ASSIGNMENT_BUCKETS = 10_000


class Segment(StrEnum):
    """What the reminder talks about, derived from the calculator's context."""

    NEW_CAR = "new_car"  # vehicle at most a year old
    FREQUENT_DRIVER = "frequent_driver"  # 20,000 km a year or more
    STANDARD = "standard"


NEW_CAR_MAX_AGE_YEARS = 1
FREQUENT_DRIVER_MIN_KM = 20_000


def segment_for(vehicle_age_years: int | None, yearly_mileage_km: int | None) -> Segment:
    """New car wins over frequent driver: the car is what the person was just insuring."""
    if vehicle_age_years is not None and vehicle_age_years <= NEW_CAR_MAX_AGE_YEARS:
        return Segment.NEW_CAR
    if yearly_mileage_km is not None and yearly_mileage_km >= FREQUENT_DRIVER_MIN_KM:
        return Segment.FREQUENT_DRIVER
    return Segment.STANDARD


# --- experiments -----------------------------------------------------------------------------


class Arm(BaseModel):
    name: str
    weight: int = Field(gt=0)  # share in percent
    waits: list[timedelta] = Field(default_factory=list)  # reminder offsets from the confirmation
    tailored: bool = True  # content chosen by segment (else the standard text)


class Experiment(BaseModel):
    """One experiment: arms with percentage weights (summing to 100), judged on conversion.

    `sample_size_per_arm` is fixed before the experiment starts: the z-test is read only once
    every arm has that many quotes with a closed conversion window (no peeking).
    """

    name: str
    arms: list[Arm]
    holdout: bool = False  # the first arm is the holdout: it gets no reminders at all
    sample_size_per_arm: int = Field(gt=0)
    alpha: float = Field(default=0.05, gt=0, lt=1)

    @model_validator(mode="after")
    def _weights(self) -> Experiment:
        total = sum(arm.weight for arm in self.arms)
        if total != 100:
            raise ValueError(f"experiment {self.name}: arm weights must sum to 100, got {total}")
        if len({arm.name for arm in self.arms}) != len(self.arms):
            raise ValueError(f"experiment {self.name}: arm names must be unique")
        return self

    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(f"experiment {self.name} has no arm {name!r}")


class CampaignPlan(BaseModel):
    """The campaign's fixed parameters; pinned in every quote workflow when it starts."""

    version: int = 1
    confirmation_retention: timedelta = timedelta(days=7)  # unconfirmed opt-ins are purged after this
    conversion_window: timedelta = timedelta(days=30)  # from abandonment; also how long a quote is followed
    quiet_start: time = time(20, 0)
    quiet_end: time = time(8, 0)
    quiet_hours: bool = True  # quiet hours, Sundays and holidays; off only on the minute-scale demo plan
    timezone: str = BUSINESS_TIMEZONE
    cap_max_mails: int = 2  # per person, across all campaigns …
    cap_window: timedelta = timedelta(days=7)  # … within this rolling period
    onboarding_waits: list[timedelta] = Field(default_factory=lambda: [timedelta(0), timedelta(days=7)])
    inspection_lead: timedelta = timedelta(days=30)  # inspection reminder this long before it is due
    holdout: Experiment
    wait_times: Experiment
    content: Experiment

    @property
    def experiments(self) -> list[Experiment]:
        return [self.holdout, self.wait_times, self.content]


# Sample sizes fixed before the start (required_sample_size_per_arm, α = 0.05 two-sided, power 0.8,
# baseline 2.58 % conversion as in the reference campaign): the holdout must show +1.0 pp, the
# wait-time and content experiments +0.5 pp.
BASELINE_CONVERSION = 0.0258
DEFAULT_PLAN = CampaignPlan(
    holdout=Experiment(
        name="holdout",
        holdout=True,
        arms=[Arm(name="holdout", weight=10), Arm(name="treated", weight=90)],
        sample_size_per_arm=4_685,
    ),
    wait_times=Experiment(
        name="wait-times",
        arms=[
            Arm(name="short", weight=50, waits=[timedelta(days=2), timedelta(days=5)]),
            Arm(name="long", weight=50, waits=[timedelta(days=4), timedelta(days=9)]),
        ],
        sample_size_per_arm=17_266,
    ),
    content=Experiment(
        name="content",
        arms=[Arm(name="tailored", weight=50, tailored=True), Arm(name="generic", weight=50, tailored=False)],
        sample_size_per_arm=17_266,
    ),
)


# `make run`'s campaign (CAMPAIGN_PLAN=demo, never in production): the same experiments and arms,
# every duration in minutes, no quiet hours, so a newcomer sees reminders move, a conversion and
# closed conversion windows in the report within a quarter of an hour.
DEMO_PLAN = DEFAULT_PLAN.model_copy(
    update={
        "confirmation_retention": timedelta(minutes=10),
        "conversion_window": timedelta(minutes=15),
        "quiet_hours": False,
        "cap_window": timedelta(minutes=5),
        "onboarding_waits": [timedelta(0), timedelta(minutes=3)],
        "wait_times": DEFAULT_PLAN.wait_times.model_copy(
            update={
                "arms": [
                    Arm(name="short", weight=50, waits=[timedelta(minutes=2), timedelta(minutes=5)]),
                    Arm(name="long", weight=50, waits=[timedelta(minutes=4), timedelta(minutes=9)]),
                ]
            }
        ),
    }
)
CAMPAIGN_PLANS = {"default": DEFAULT_PLAN, "demo": DEMO_PLAN}


def window_text(window: timedelta) -> str:
    """A conversion window as the report states it: "30 days", "15 minutes"."""
    if window % timedelta(days=1) == timedelta(0):
        return f"{window.days} day{'s' if window.days != 1 else ''}"
    minutes = int(window.total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def assignment_bucket(quote_id: str, experiment: str) -> int:
    """A stable bucket 0…9999 from the quote and the experiment name (independent per experiment)."""
    digest = hashlib.sha256(f"{experiment}\x1f{quote_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % ASSIGNMENT_BUCKETS


def assign_arm(quote_id: str, experiment: Experiment) -> str:
    """The arm of a quote: the same quote always lands in the same arm of the same experiment."""
    bucket = assignment_bucket(quote_id, experiment.name)
    upper = 0
    for arm in experiment.arms:
        upper += arm.weight * ASSIGNMENT_BUCKETS // 100
        if bucket < upper:
            return arm.name
    return experiment.arms[-1].name


def assign_all(quote_id: str, plan: CampaignPlan) -> dict[str, str]:
    return {experiment.name: assign_arm(quote_id, experiment) for experiment in plan.experiments}


# --- sending rules ---------------------------------------------------------------------------


def may_send_at(moment: datetime, holidays: Collection[date], plan: CampaignPlan) -> bool:
    """Marketing mail only 08:00–20:00 local time, never on Sundays or public holidays (unless the
    plan has no quiet hours: the demo plan, whose minutes would otherwise wait for the morning)."""
    if not plan.quiet_hours:
        return True
    local = moment.astimezone(ZoneInfo(plan.timezone))
    if local.weekday() == 6 or local.date() in holidays:
        return False
    return plan.quiet_end <= local.time() < plan.quiet_start


def next_send_window(moment: datetime, holidays: Collection[date], plan: CampaignPlan) -> datetime:
    """`moment` if mail may go out then, else the next 08:00 local on an allowed day.

    08:00 is built as a local wall-clock time and then converted, so the instant is right on
    either side of a daylight-saving change (07:00 UTC in winter, 06:00 UTC in summer).
    """
    if moment.tzinfo is None:
        raise ValueError(f"moment must be timezone-aware, got {moment!r}")
    if may_send_at(moment, holidays, plan):
        return moment
    zone = ZoneInfo(plan.timezone)
    local = moment.astimezone(zone)
    day = local.date()
    if not (local.time() < plan.quiet_end and local.weekday() != 6 and day not in holidays):
        day += timedelta(days=1)
    while day.weekday() == 6 or day in holidays:
        day += timedelta(days=1)
    return datetime.combine(day, plan.quiet_end, tzinfo=zone).astimezone(moment.tzinfo)


def _cap_allows(moment: datetime, others: Sequence[datetime], plan: CampaignPlan) -> bool:
    """Fewer than `cap_max_mails` other mails within `cap_window` before or after `moment`:
    then no rolling window containing `moment` can hold more than the cap."""
    near = sum(1 for other in others if abs(other - moment) < plan.cap_window)
    return near < plan.cap_max_mails


def next_capped_slot(candidate: datetime, others: Iterable[datetime], plan: CampaignPlan) -> datetime:
    """The earliest moment ≥ `candidate` the frequency cap allows. The answer is the candidate
    itself or the moment an earlier mail leaves the window — validity only changes there."""
    ordered = sorted(others)
    options = [candidate] + sorted(other + plan.cap_window for other in ordered if other + plan.cap_window > candidate)
    for option in options:
        if _cap_allows(option, ordered, plan):
            return option
    raise AssertionError("unreachable: after the last mail's window every moment is allowed")


def schedule_send(
    due: datetime, others: Iterable[datetime], holidays: Collection[date], plan: CampaignPlan
) -> datetime:
    """When a marketing mail due at `due` may go out: quiet hours and the cap together.

    Never earlier than due, never dropped: the answer is always a moment (possibly later).
    """
    existing = list(others)
    moment = next_send_window(due, holidays, plan)
    for _ in range(1_000):
        capped = next_capped_slot(moment, existing, plan)
        windowed = next_send_window(capped, holidays, plan)
        if windowed == moment:
            return moment
        moment = windowed
    raise ValueError(f"no send slot found after {due.isoformat()} (holiday table wrong?)")


def inspection_reminder_due(inspection_due: date, plan: CampaignPlan) -> datetime:
    """The vehicle-inspection reminder is due `inspection_lead` before the due date, 09:00 local."""
    day = inspection_due - timedelta(days=plan.inspection_lead.days)
    return datetime.combine(day, time(9, 0), tzinfo=ZoneInfo(plan.timezone))


# --- statistics ------------------------------------------------------------------------------

_NORMAL = NormalDist()


class ZTest(BaseModel):
    rate_a: float
    rate_b: float
    difference: float  # rate_b - rate_a
    z: float
    p_value: float  # two-sided


def two_proportion_z_test(conversions_a: int, n_a: int, conversions_b: int, n_b: int) -> ZTest:
    """Pooled two-proportion z-test (two-sided) of B against A."""
    for name, conversions, n in (("a", conversions_a, n_a), ("b", conversions_b, n_b)):
        if n <= 0:
            raise ValueError(f"sample size n_{name} must be > 0, got {n}")
        if not 0 <= conversions <= n:
            raise ValueError(f"conversions_{name} must be between 0 and {n}, got {conversions}")
    rate_a, rate_b = conversions_a / n_a, conversions_b / n_b
    pooled = (conversions_a + conversions_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return ZTest(rate_a=rate_a, rate_b=rate_b, difference=0.0, z=0.0, p_value=1.0)
    z = (rate_b - rate_a) / se
    return ZTest(rate_a=rate_a, rate_b=rate_b, difference=rate_b - rate_a, z=z, p_value=2 * (1 - _NORMAL.cdf(abs(z))))


class Lift(BaseModel):
    """Incremental conversion of the treated group over the holdout."""

    treated_rate: float
    holdout_rate: float
    absolute: float  # percentage points as a fraction (0.0052 = +0.52 pp)
    low: float
    high: float
    relative: float | None  # absolute / holdout rate; None when the holdout converted nobody
    confidence: float


def incremental_lift(
    treated_conversions: int, treated_n: int, holdout_conversions: int, holdout_n: int, confidence: float = 0.95
) -> Lift:
    """Difference of conversion rates with a Wald (unpooled) confidence interval."""
    test = two_proportion_z_test(holdout_conversions, holdout_n, treated_conversions, treated_n)
    se = math.sqrt(test.rate_a * (1 - test.rate_a) / holdout_n + test.rate_b * (1 - test.rate_b) / treated_n)
    margin = _NORMAL.inv_cdf(0.5 + confidence / 2) * se
    return Lift(
        treated_rate=test.rate_b,
        holdout_rate=test.rate_a,
        absolute=test.difference,
        low=test.difference - margin,
        high=test.difference + margin,
        relative=test.difference / test.rate_a if test.rate_a > 0 else None,
        confidence=confidence,
    )


def required_sample_size_per_arm(
    base_rate: float, minimum_effect: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Quotes per arm needed to detect `minimum_effect` (absolute) over `base_rate` (two-sided)."""
    if not 0 < base_rate < 1 or not 0 < base_rate + minimum_effect < 1 or minimum_effect == 0:
        raise ValueError(f"rates must lie strictly between 0 and 1, got {base_rate} and {base_rate + minimum_effect}")
    other = base_rate + minimum_effect
    mean = (base_rate + other) / 2
    z_alpha, z_beta = _NORMAL.inv_cdf(1 - alpha / 2), _NORMAL.inv_cdf(power)
    numerator = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_beta * math.sqrt(
        base_rate * (1 - base_rate) + other * (1 - other)
    )
    return math.ceil(numerator**2 / minimum_effect**2)


# --- the report ------------------------------------------------------------------------------


class QuoteOutcome(BaseModel):
    """One quote as the report sees it: its arms, when it was abandoned and when it converted."""

    quote_id: str
    arms: dict[str, str]  # experiment → arm
    abandoned_at: datetime
    converted_at: datetime | None = None


class ArmResult(BaseModel):
    arm: str
    quotes: int  # with a closed conversion window
    conversions: int
    pending: int  # window still open: not counted yet
    rate: float | None


class ExperimentReport(BaseModel):
    experiment: str
    sample_size_per_arm: int
    arms: list[ArmResult]
    decided: bool
    verdict: str
    test: ZTest | None = None
    lift: Lift | None = None


def converted_in_window(outcome: QuoteOutcome, window: timedelta) -> bool:
    return outcome.converted_at is not None and outcome.converted_at - outcome.abandoned_at <= window


def experiment_report(
    experiment: Experiment, outcomes: Sequence[QuoteOutcome], window: timedelta, as_of: datetime, holdout_name: str
) -> ExperimentReport:
    """Conversion within the window per arm; the test is read only at the pre-set sample size.

    The holdout experiment compares all treated quotes with the holdout (lift with CI); the
    other experiments compare their two arms among treated quotes only (the holdout got no mail).
    """
    results: list[ArmResult] = []
    for arm in experiment.arms:
        members = [o for o in outcomes if o.arms.get(experiment.name) == arm.name]
        if not experiment.holdout:
            members = [o for o in members if o.arms.get(holdout_name) != "holdout"]
        closed = [o for o in members if o.abandoned_at + window <= as_of]
        conversions = sum(1 for o in closed if converted_in_window(o, window))
        results.append(
            ArmResult(
                arm=arm.name,
                quotes=len(closed),
                conversions=conversions,
                pending=len(members) - len(closed),
                rate=conversions / len(closed) if closed else None,
            )
        )
    report = ExperimentReport(
        experiment=experiment.name,
        sample_size_per_arm=experiment.sample_size_per_arm,
        arms=results,
        decided=False,
        verdict="",
    )
    if len(results) != 2:
        report.verdict = "only two-arm experiments are tested"
        return report
    a, b = results
    if a.quotes and b.quotes:
        report.test = two_proportion_z_test(a.conversions, a.quotes, b.conversions, b.quotes)
        if experiment.holdout:
            report.lift = incremental_lift(b.conversions, b.quotes, a.conversions, a.quotes)
    smallest = min(a.quotes, b.quotes)
    if smallest < experiment.sample_size_per_arm:
        report.verdict = f"collecting: {smallest} of {experiment.sample_size_per_arm} quotes per arm; not decided yet"
        return report
    assert report.test is not None
    report.decided = True
    if report.test.p_value < experiment.alpha:
        winner = b.arm if report.test.difference > 0 else a.arm
        report.verdict = f"significant at α={experiment.alpha}: {winner} converts better (p={report.test.p_value:.4f})"
    else:
        report.verdict = f"no significant difference at α={experiment.alpha} (p={report.test.p_value:.4f})"
    return report


# --- pseudonymous keys and signed links ------------------------------------------------------


def normalise_email(email: str) -> str:
    return email.strip().lower()


def person_key_for(secret: str, email: str) -> str:
    """The pseudonymous person key: a keyed hash of the address (useless without the secret)."""
    return hmac.new(secret.encode(), f"person|{normalise_email(email)}".encode(), hashlib.sha256).hexdigest()[:32]


CONFIRM_SALT = "quote-confirm"
UNSUBSCRIBE_SALT = "campaign-unsubscribe"
RESUME_SALT = "quote-resume"


def expiring_token(secret: str, salt: str, token_id: str, expires_at: datetime) -> str:
    """A signed token carrying an opaque id and its expiry (no personal data). Deterministic for
    the same inputs, so a retried activity writes the same link."""
    return str(URLSafeSerializer(secret, salt=salt).dumps([token_id, int(expires_at.timestamp())]))


class TokenExpired(Exception):
    pass


def read_expiring_token(secret: str, salt: str, token: str, now: datetime) -> str | None:
    """The token id; None for a forged or malformed token; raises TokenExpired after its expiry."""
    try:
        value = URLSafeSerializer(secret, salt=salt).loads(token)
    except BadSignature:
        return None
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)):
        return None
    if now.timestamp() > value[1]:
        raise TokenExpired(f"link expired at {datetime.fromtimestamp(value[1]).isoformat()}")
    return value[0]
