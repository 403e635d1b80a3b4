"""The campaign's pure rules: statistics against worked numbers, quiet hours across daylight-saving
changes and holidays, the frequency cap that postpones, deterministic assignment, segments, links."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activities.campaign import german_holidays
from core.campaign import (
    DEFAULT_PLAN,
    Arm,
    Experiment,
    QuoteOutcome,
    Segment,
    TokenExpired,
    assign_arm,
    experiment_report,
    expiring_token,
    incremental_lift,
    may_send_at,
    next_send_window,
    person_key_for,
    read_expiring_token,
    required_sample_size_per_arm,
    schedule_send,
    segment_for,
    two_proportion_z_test,
)

BERLIN = ZoneInfo("Europe/Berlin")
HOLIDAYS = german_holidays(2026, 2028)
PLAN = DEFAULT_PLAN


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


# --- statistics --------------------------------------------------------------------------------


def test_z_test_matches_the_worked_example_258_vs_310_of_10000() -> None:
    result = two_proportion_z_test(258, 10_000, 310, 10_000)
    # pooled p = 568/20000 = 0.0284; se = sqrt(0.0284 * 0.9716 * 2/10000) = 0.0023492; z = 0.0052 / se
    assert result.z == pytest.approx(2.2135, abs=1e-4)
    assert result.p_value == pytest.approx(0.02686, abs=1e-4)
    assert result.difference == pytest.approx(0.0052)


def test_z_test_is_antisymmetric_and_zero_for_equal_rates() -> None:
    forward = two_proportion_z_test(258, 10_000, 310, 10_000)
    backward = two_proportion_z_test(310, 10_000, 258, 10_000)
    assert backward.z == pytest.approx(-forward.z)
    assert backward.p_value == pytest.approx(forward.p_value)
    same = two_proportion_z_test(50, 1000, 100, 2000)
    assert same.z == 0 and same.p_value == pytest.approx(1.0)


def test_z_test_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="n_a must be > 0"):
        two_proportion_z_test(0, 0, 1, 10)
    with pytest.raises(ValueError, match="conversions_b must be between 0 and 10"):
        two_proportion_z_test(1, 10, 11, 10)


def test_holdout_lift_and_its_95_percent_interval_from_worked_numbers() -> None:
    lift = incremental_lift(treated_conversions=310, treated_n=10_000, holdout_conversions=258, holdout_n=10_000)
    # unpooled se = sqrt(.0258*.9742/1e4 + .031*.969/1e4) = 0.0023489; margin = 1.959964 * se = 0.0046038
    assert lift.absolute == pytest.approx(0.0052)
    assert lift.low == pytest.approx(0.0052 - 0.0046038, abs=1e-6)
    assert lift.high == pytest.approx(0.0052 + 0.0046038, abs=1e-6)
    assert lift.relative == pytest.approx(0.0052 / 0.0258)


def test_sample_size_for_a_half_point_lift_on_2_58_percent() -> None:
    # classic formula: (1.96*sqrt(2*p̄q̄) + 0.8416*sqrt(p1q1 + p2q2))² / δ², p̄ = 0.0283
    expected = (
        1.959964 * math.sqrt(2 * 0.0283 * 0.9717) + 0.841621 * math.sqrt(0.0258 * 0.9742 + 0.0308 * 0.9692)
    ) ** 2 / 0.005**2
    assert required_sample_size_per_arm(0.0258, 0.005) == math.ceil(expected)


def test_the_default_plan_s_sample_sizes_come_from_its_stated_assumptions() -> None:
    assert PLAN.holdout.sample_size_per_arm == required_sample_size_per_arm(0.0258, 0.01)
    assert PLAN.wait_times.sample_size_per_arm == required_sample_size_per_arm(0.0258, 0.005)
    assert PLAN.content.sample_size_per_arm == required_sample_size_per_arm(0.0258, 0.005)


def _outcomes(experiment: str, arm: str, n: int, converted: int, abandoned: datetime) -> list[QuoteOutcome]:
    return [
        QuoteOutcome(
            quote_id=f"{arm}-{i}",
            arms={experiment: arm, "holdout": "treated"},
            abandoned_at=abandoned,
            converted_at=abandoned + timedelta(days=3) if i < converted else None,
        )
        for i in range(n)
    ]


def test_report_is_undecided_before_the_pre_set_sample_size_and_decides_at_it() -> None:
    experiment = Experiment(
        name="subject", arms=[Arm(name="a", weight=50), Arm(name="b", weight=50)], sample_size_per_arm=10_000
    )
    start = datetime(2026, 1, 5, tzinfo=UTC)
    outcomes = _outcomes("subject", "a", 10_000, 258, start) + _outcomes("subject", "b", 9_999, 310, start)
    early = experiment_report(experiment, outcomes, timedelta(days=30), start + timedelta(days=31), "holdout")
    assert not early.decided and "collecting: 9999 of 10000" in early.verdict
    outcomes.append(QuoteOutcome(quote_id="b-last", arms={"subject": "b"}, abandoned_at=start))
    final = experiment_report(experiment, outcomes, timedelta(days=30), start + timedelta(days=31), "holdout")
    assert final.decided
    assert final.test is not None and final.test.z == pytest.approx(2.2135, abs=1e-3)
    assert "significant" in final.verdict and "b converts better" in final.verdict


def test_report_counts_only_conversions_inside_the_window_and_only_closed_windows() -> None:
    experiment = PLAN.holdout
    start = datetime(2026, 1, 5, tzinfo=UTC)
    outcomes = [
        QuoteOutcome(
            quote_id="h1", arms={"holdout": "holdout"}, abandoned_at=start, converted_at=start + timedelta(days=29)
        ),
        QuoteOutcome(
            quote_id="h2", arms={"holdout": "holdout"}, abandoned_at=start, converted_at=start + timedelta(days=31)
        ),
        QuoteOutcome(
            quote_id="t1", arms={"holdout": "treated"}, abandoned_at=start, converted_at=start + timedelta(days=1)
        ),
        QuoteOutcome(quote_id="t2", arms={"holdout": "treated"}, abandoned_at=start + timedelta(days=20)),
    ]
    report = experiment_report(experiment, outcomes, timedelta(days=30), start + timedelta(days=40), "holdout")
    holdout, treated = report.arms
    assert (holdout.quotes, holdout.conversions, holdout.pending) == (2, 1, 0)
    assert (treated.quotes, treated.conversions, treated.pending) == (1, 1, 1)
    assert report.lift is not None and report.lift.absolute == pytest.approx(1.0 - 0.5)


def test_other_experiments_leave_the_holdout_out() -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    outcomes = [
        QuoteOutcome(quote_id="x", arms={"holdout": "holdout", "content": "tailored"}, abandoned_at=start),
        QuoteOutcome(quote_id="y", arms={"holdout": "treated", "content": "tailored"}, abandoned_at=start),
    ]
    report = experiment_report(PLAN.content, outcomes, timedelta(days=30), start + timedelta(days=31), "holdout")
    assert report.arms[0].quotes == 1


# --- quiet hours -------------------------------------------------------------------------------


def test_a_mail_inside_the_day_window_goes_at_once() -> None:
    moment = berlin(2026, 11, 24, 10, 0)
    assert next_send_window(moment, HOLIDAYS, PLAN) == moment


def test_after_20_00_waits_for_08_00_next_morning() -> None:
    assert next_send_window(berlin(2026, 11, 24, 20, 0), HOLIDAYS, PLAN) == berlin(2026, 11, 25, 8, 0)
    assert next_send_window(berlin(2026, 11, 25, 5, 30), HOLIDAYS, PLAN) == berlin(2026, 11, 25, 8, 0)


def test_saturday_night_before_the_october_dst_change_goes_monday_08_00_cet() -> None:
    # Sunday 25.10.2026 clocks go back: Saturday 21:30 CEST → Monday 08:00 CET = 07:00 UTC
    moment = berlin(2026, 10, 24, 21, 30)
    result = next_send_window(moment, HOLIDAYS, PLAN)
    assert result.astimezone(UTC) == datetime(2026, 10, 26, 7, 0, tzinfo=UTC)
    assert result.astimezone(BERLIN).hour == 8


def test_saturday_night_before_the_march_dst_change_skips_easter_monday() -> None:
    # 28.03.2027 is Easter Sunday and the change to summer time; 29.03. is Easter Monday (holiday)
    result = next_send_window(berlin(2027, 3, 27, 21, 0), HOLIDAYS, PLAN)
    assert result.astimezone(UTC) == datetime(2027, 3, 30, 6, 0, tzinfo=UTC)
    assert result.astimezone(BERLIN).hour == 8


def test_christmas_and_the_sunday_after_are_skipped() -> None:
    result = next_send_window(berlin(2026, 12, 24, 20, 30), HOLIDAYS, PLAN)
    assert result == berlin(2026, 12, 28, 8, 0)


def test_quiet_hours_need_an_aware_moment() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_send_window(datetime(2026, 11, 24, 10, 0), HOLIDAYS, PLAN)


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 1), timezones=st.just(UTC)))
def test_the_send_window_is_never_earlier_always_allowed_and_at_most_five_days_later(moment: datetime) -> None:
    result = next_send_window(moment, HOLIDAYS, PLAN)
    assert result >= moment
    assert may_send_at(result, HOLIDAYS, PLAN)
    assert result - moment < timedelta(days=5)


# --- frequency cap -----------------------------------------------------------------------------


def test_the_cap_postpones_a_third_mail_in_seven_days_until_the_first_leaves_the_window() -> None:
    first, second = berlin(2026, 11, 23, 10, 0), berlin(2026, 11, 25, 10, 0)
    due = berlin(2026, 11, 26, 10, 0)
    result = schedule_send(due, [first, second], HOLIDAYS, PLAN)
    assert result == first + PLAN.cap_window  # Monday 30.11. 10:00, inside the day window


def test_the_cap_never_drops_and_lands_inside_the_day_window() -> None:
    # the first mail leaves the window on Sunday 29.11. 21:00: postponed to Monday 08:00
    first, second = berlin(2026, 11, 22, 21, 0), berlin(2026, 11, 24, 10, 0)
    result = schedule_send(berlin(2026, 11, 25, 12, 0), [first, second], HOLIDAYS, PLAN)
    assert result == berlin(2026, 11, 30, 8, 0)


def test_a_later_reservation_also_counts() -> None:
    later = [berlin(2026, 11, 27, 10, 0), berlin(2026, 11, 28, 10, 0)]
    result = schedule_send(berlin(2026, 11, 24, 10, 0), later, HOLIDAYS, PLAN)
    # not before the first of them leaves the window; then only one is near
    assert result == later[0] + PLAN.cap_window


@given(
    st.lists(st.integers(min_value=0, max_value=24 * 20), max_size=6),
    st.integers(min_value=0, max_value=24 * 20),
)
def test_no_rolling_week_ever_holds_more_than_the_cap(existing_hours: list[int], due_hour: int) -> None:
    base = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
    others: list[datetime] = []
    for hour in sorted(existing_hours):  # build a valid history the way the ledger would
        others.append(schedule_send(base + timedelta(hours=hour), others, HOLIDAYS, PLAN))
    due = base + timedelta(hours=due_hour)
    result = schedule_send(due, others, HOLIDAYS, PLAN)
    assert result >= due and may_send_at(result, HOLIDAYS, PLAN)
    everything = sorted([*others, result])
    for start in everything:
        inside = [m for m in everything if start <= m < start + PLAN.cap_window]
        assert len(inside) <= PLAN.cap_max_mails


# --- assignment, segments, links ---------------------------------------------------------------


def test_assignment_is_deterministic_and_close_to_the_weights() -> None:
    counts = Counter(assign_arm(f"Q-{i}", PLAN.holdout) for i in range(20_000))
    assert assign_arm("Q-42", PLAN.holdout) == assign_arm("Q-42", PLAN.holdout)
    assert 0.085 < counts["holdout"] / 20_000 < 0.115


def test_experiments_are_assigned_independently() -> None:
    pairs = Counter((assign_arm(f"Q-{i}", PLAN.wait_times), assign_arm(f"Q-{i}", PLAN.content)) for i in range(8_000))
    assert len(pairs) == 4 and min(pairs.values()) > 1_800


def test_weights_must_sum_to_100() -> None:
    with pytest.raises(ValueError, match="sum to 100, got 90"):
        Experiment(name="x", arms=[Arm(name="a", weight=40), Arm(name="b", weight=50)], sample_size_per_arm=10)


@pytest.mark.parametrize(
    ("age", "km", "segment"),
    [
        (0, 5_000, Segment.NEW_CAR),
        (1, 30_000, Segment.NEW_CAR),
        (5, 20_000, Segment.FREQUENT_DRIVER),
        (5, 19_999, Segment.STANDARD),
        (None, None, Segment.STANDARD),
    ],
)
def test_segments_from_the_calculator_context(age: int | None, km: int | None, segment: Segment) -> None:
    assert segment_for(age, km) is segment


def test_person_key_is_keyed_and_ignores_case_and_spaces() -> None:
    key = person_key_for("secret-one-long-enough", " Erika@Example.org ")
    assert key == person_key_for("secret-one-long-enough", "erika@example.org")
    assert key != person_key_for("secret-two-long-enough", "erika@example.org")
    assert "erika" not in key and len(key) == 32


def test_expiring_tokens_carry_no_personal_data_and_expire() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    token = expiring_token("s" * 20, "quote-resume", "abc123", now + timedelta(days=30))
    assert read_expiring_token("s" * 20, "quote-resume", token, now) == "abc123"
    assert read_expiring_token("t" * 20, "quote-resume", token, now) is None
    assert read_expiring_token("s" * 20, "other-salt", token, now) is None
    with pytest.raises(TokenExpired):
        read_expiring_token("s" * 20, "quote-resume", token, now + timedelta(days=31))


def test_holiday_table_has_the_national_holidays() -> None:
    assert {date(2026, 10, 3), date(2026, 12, 25), date(2027, 3, 29)} <= HOLIDAYS
