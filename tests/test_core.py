"""Pure core rules: allocation (§§366, 367 BGB), deadlines (§193 BGB, §38 VVG), references,
money, plan validation and step scheduling. No I/O, no clock: every date comes in as an argument."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.allocation import Debt, allocate, allocation_order
from core.calendar import dispatch_moment, expected_receipt, is_working_day, next_working_day, notice_deadline
from core.money import format_eur, parse_amount
from core.references import is_valid_rf_reference, mask_contract_number, rf_reference
from core.schedule import due_anchor, next_step, step_due_at
from models.case import Arrears, CaseState, OpenItem
from models.messages import Channel
from models.plan import Anchor, DunningPlan, PlanStep, StepKind
from models.plans import BUILTIN_PLANS, get_plan

BERLIN = ZoneInfo("Europe/Berlin")
E, L, S = Channel.EMAIL, Channel.LETTER, Channel.SMS
DAY = timedelta(days=1)


# --- allocation ------------------------------------------------------------------------------


def premium(id_: int, key: str, due: date, cents: int) -> Debt:
    return Debt("premium", id_, key, due, cents)


def fee(id_: int, key: str, due: date, cents: int) -> Debt:
    return Debt("fee", id_, key, due, cents)


def test_within_one_premium_costs_are_paid_before_interest_and_principal() -> None:
    due = date(2026, 1, 1)
    debts = [premium(1, "P-1", due, 10_000), Debt("interest", 7, "P-1", due, 300), fee(5, "P-1", due, 150)]

    result = allocate(200, debts)

    assert [(s.debt.kind, s.cents) for s in result.shares] == [("fee", 150), ("interest", 50)]
    assert result.credit_cents == 0


def test_across_premiums_the_oldest_due_premium_is_paid_first() -> None:
    newer = premium(2, "P-2", date(2026, 2, 1), 10_000)
    older = premium(1, "P-1", date(2026, 1, 1), 10_000)

    result = allocate(12_000, [newer, older])

    assert [(s.debt.premium_key, s.cents) for s in result.shares] == [("P-1", 10_000), ("P-2", 2_000)]


def test_a_payment_that_names_a_premium_goes_to_that_premium_and_its_costs_first() -> None:
    older = premium(1, "P-1", date(2026, 1, 1), 10_000)
    newer = premium(2, "P-2", date(2026, 2, 1), 10_000)
    newer_fee = fee(9, "P-2", date(2026, 2, 1), 150)

    result = allocate(10_500, [older, newer, newer_fee], designated_premium="P-2")

    assert [(s.debt.kind, s.debt.premium_key, s.cents) for s in result.shares] == [
        ("fee", "P-2", 150),
        ("premium", "P-2", 10_000),
        ("premium", "P-1", 350),
    ]


def test_what_is_left_after_all_debts_are_paid_becomes_credit() -> None:
    result = allocate(15_000, [premium(1, "P-1", date(2026, 1, 1), 10_000), fee(1, "P-1", date(2026, 1, 1), 150)])

    assert result.allocated_cents == 10_150
    assert result.credit_cents == 4_850


def test_a_payment_without_any_open_debt_is_all_credit() -> None:
    result = allocate(500, [premium(1, "P-1", date(2026, 1, 1), 0)])

    assert result.shares == ()
    assert result.credit_cents == 500


@pytest.mark.parametrize("amount", [0, -1, -12_000])
def test_an_amount_of_zero_or_less_is_rejected_with_a_message_naming_the_value(amount: int) -> None:
    with pytest.raises(ValueError, match=rf"got {amount}\b"):
        allocate(amount, [premium(1, "P-1", date(2026, 1, 1), 100)])


@st.composite
def debt_lists(draw: st.DrawFn) -> tuple[list[Debt], str | None]:
    n_premiums = draw(st.integers(min_value=0, max_value=5))
    keys = [f"P-{i}" for i in range(n_premiums)]
    dues = {k: draw(st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31))) for k in keys}
    debts: list[Debt] = []
    next_id = {"fee": 1, "interest": 1, "premium": 1}
    for key in keys:
        kinds = ["premium"] + draw(st.lists(st.sampled_from(["fee", "interest"]), max_size=3))
        for kind in kinds:
            cents = draw(st.integers(min_value=0, max_value=50_000))
            debts.append(Debt(kind, next_id[kind], key, dues[key], cents))  # type: ignore[arg-type]
            next_id[kind] += 1
    designated = draw(st.one_of(st.none(), st.sampled_from(keys + ["P-unknown"]))) if keys else None
    return draw(st.permutations(debts)), designated


@settings(max_examples=300, deadline=None)
@given(data=debt_lists(), amount=st.integers(min_value=1, max_value=300_000))
def test_allocation_properties_hold_for_any_debts_and_amount(data: tuple[list[Debt], str | None], amount: int) -> None:
    debts, designated = data
    result = allocate(amount, debts, designated)
    order = allocation_order(debts, designated)

    # nothing lost, nothing invented
    assert result.allocated_cents + result.credit_cents == amount
    assert result.credit_cents >= 0
    # no share exceeds what the debt has open, and every share is positive
    assert all(0 < s.cents <= s.debt.open_cents for s in result.shares)
    # shares follow the allocation order: a prefix of it
    assert [s.debt for s in result.shares] == order[: len(result.shares)]
    # a debt is paid only when every earlier one in order is fully paid
    assert all(s.cents == s.debt.open_cents for s in result.shares[:-1])
    # credit only when everything open is paid
    if result.credit_cents > 0:
        assert len(result.shares) == len(order)
        assert all(s.cents == s.debt.open_cents for s in result.shares)


@settings(max_examples=200, deadline=None)
@given(data=debt_lists())
def test_allocation_order_puts_the_designated_premium_first_then_oldest_and_costs_before_principal(
    data: tuple[list[Debt], str | None],
) -> None:
    debts, designated = data
    order = allocation_order(debts, designated)
    kind_rank = {"fee": 0, "interest": 1, "premium": 2}

    assert all(d.open_cents > 0 for d in order)
    assert sorted(order, key=id) == sorted((d for d in debts if d.open_cents > 0), key=id)
    flags = [d.premium_key != designated for d in order]
    assert flags == sorted(flags)  # designated ones first
    for a, b in pairwise(order):
        if (a.premium_key == designated) == (b.premium_key == designated):
            assert a.due_date <= b.due_date
            if a.premium_key == b.premium_key:
                assert kind_rank[a.kind] <= kind_rank[b.kind]


# --- calendar --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 12, 25),  # 1. Weihnachtstag
        date(2026, 12, 26),  # 2. Weihnachtstag (a Saturday, too)
        date(2027, 1, 1),  # Neujahr
        date(2026, 10, 3),  # Tag der Deutschen Einheit
        date(2026, 4, 3),  # Karfreitag
        date(2026, 6, 13),  # Saturday
        date(2026, 6, 14),  # Sunday
    ],
)
def test_weekends_and_nationwide_holidays_are_not_working_days(day: date) -> None:
    assert not is_working_day(day)
    assert not is_working_day(day, subdivision="NW")


def test_an_ordinary_weekday_is_a_working_day_and_is_its_own_next_working_day() -> None:
    assert is_working_day(date(2026, 12, 23))
    assert next_working_day(date(2026, 12, 23)) == date(2026, 12, 23)


def test_christmas_eve_is_a_working_day_since_it_is_no_public_holiday() -> None:
    assert is_working_day(date(2026, 12, 24))


def test_corpus_christi_is_a_holiday_in_north_rhine_westphalia_but_not_in_berlin() -> None:
    fronleichnam = date(2027, 5, 27)
    assert not is_working_day(fronleichnam, subdivision="NW")
    assert is_working_day(fronleichnam, subdivision="BE")
    assert is_working_day(fronleichnam)  # not nation-wide


def test_reformation_day_is_a_holiday_in_brandenburg_but_not_in_bavaria() -> None:
    reformationstag = date(2025, 10, 31)  # a Friday (in 2026 it falls on a Saturday anyway)
    assert not is_working_day(reformationstag, subdivision="BB")
    assert is_working_day(reformationstag, subdivision="BY")
    assert next_working_day(reformationstag, subdivision="BB") == date(2025, 11, 3)


def test_next_working_day_skips_christmas_and_the_weekend_after_it() -> None:
    assert next_working_day(date(2026, 12, 25)) == date(2026, 12, 28)


def test_a_letter_notice_gives_three_days_for_receipt_plus_fourteen_days_and_expires_at_berlin_midnight() -> None:
    plan = get_plan("de-follow-up")
    dispatched = datetime(2026, 12, 7, 10, 0, tzinfo=BERLIN)  # Monday

    last_day, expires = notice_deadline(plan, dispatched, L)

    # receipt Thursday 10.12., + 14 days = Thursday 24.12. (a working day)
    assert last_day == date(2026, 12, 24)
    assert expires == datetime(2026, 12, 25, 0, 0, tzinfo=BERLIN)
    assert expires.astimezone(UTC) == datetime(2026, 12, 24, 23, 0, tzinfo=UTC)


def test_a_letter_deadline_landing_on_christmas_moves_past_the_holidays_and_the_weekend() -> None:
    plan = get_plan("de-follow-up")
    dispatched = datetime(2026, 12, 8, 10, 0, tzinfo=BERLIN)  # receipt 11.12., + 14 = Friday 25.12.

    last_day, expires = notice_deadline(plan, dispatched, L)

    assert last_day == date(2026, 12, 28)  # 25. and 26. are holidays, 27. is a Sunday
    assert expires == datetime(2026, 12, 29, 0, 0, tzinfo=BERLIN)


def test_an_email_notice_counts_receipt_on_the_day_of_dispatch() -> None:
    plan = get_plan("de-follow-up")
    dispatched = datetime(2026, 6, 1, 9, 30, tzinfo=BERLIN)  # Monday

    last_day, expires = notice_deadline(plan, dispatched, E)

    assert last_day == date(2026, 6, 15)
    assert expires == datetime(2026, 6, 16, 0, 0, tzinfo=BERLIN)


def test_a_deadline_landing_on_a_sunday_moves_to_monday() -> None:
    plan = get_plan("de-follow-up")
    # A letter is received on a working day (issue #10), so only an e-mail sent on a Sunday gives a
    # deadline on a Sunday: receipt Sunday 31.5., + 14 = Sunday 14.6.
    dispatched = datetime(2026, 5, 31, 10, 0, tzinfo=BERLIN)

    last_day, expires = notice_deadline(plan, dispatched, E)

    assert date(2026, 6, 14).weekday() == 6
    assert last_day == date(2026, 6, 15)
    assert expires == datetime(2026, 6, 16, 0, 0, tzinfo=BERLIN)


def test_a_deadline_on_a_regional_holiday_moves_only_where_that_holiday_applies() -> None:
    plan = get_plan("de-follow-up")
    dispatched = datetime(2027, 5, 10, 10, 0, tzinfo=BERLIN)  # receipt 13.5., + 14 = Fronleichnam 27.5.

    assert notice_deadline(plan, dispatched, L, "NW")[0] == date(2027, 5, 28)
    assert notice_deadline(plan, dispatched, L, "BE")[0] == date(2027, 5, 27)


def test_the_day_of_dispatch_is_the_berlin_day_not_the_utc_day() -> None:
    plan = get_plan("de-follow-up")
    dispatched = datetime(2026, 6, 1, 22, 30, tzinfo=UTC)  # already 2 June, 00:30, in Berlin

    last_day, _ = notice_deadline(plan, dispatched, E)

    assert last_day == date(2026, 6, 16)


def test_a_deadline_expiring_after_the_spring_clock_change_expires_at_midnight_summer_time() -> None:
    plan = get_plan("de-follow-up")
    dispatched = datetime(2026, 3, 16, 12, 0, tzinfo=BERLIN)  # CET; clocks go forward on 29.3.

    last_day, expires = notice_deadline(plan, dispatched, E)

    assert last_day == date(2026, 3, 30)
    assert expires.astimezone(UTC) == datetime(2026, 3, 30, 22, 0, tzinfo=UTC)  # 00:00 CEST
    assert expires.utcoffset() == timedelta(hours=2)


def test_a_deadline_expiring_after_the_autumn_clock_change_expires_at_midnight_winter_time() -> None:
    plan = get_plan("de-follow-up")
    dispatched = datetime(2026, 10, 7, 10, 0, tzinfo=BERLIN)  # CEST; receipt Monday 12.10., + 14 = Monday 26.10.

    last_day, expires = notice_deadline(plan, dispatched, L)

    assert last_day == date(2026, 10, 26)  # clocks go back on Sunday 25.10.
    assert expires.astimezone(UTC) == datetime(2026, 10, 26, 23, 0, tzinfo=UTC)  # 00:00 CET
    assert expires.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize("plan_id", ["demo", "demo-fast"])
@pytest.mark.parametrize("channel", [L, E])
def test_a_demo_plan_deadline_is_dispatch_plus_the_exact_period_without_calendar(
    plan_id: str, channel: Channel
) -> None:
    plan = get_plan(plan_id)
    dispatched = datetime(2026, 12, 24, 23, 59, 0, tzinfo=BERLIN)

    last_day, expires = notice_deadline(plan, dispatched, channel)

    assert expires == dispatched + plan.payment_period
    assert last_day == expires.astimezone(BERLIN).date()


@settings(max_examples=100, deadline=None)
@given(
    day=st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31)),
    minute=st.integers(min_value=0, max_value=24 * 60 - 1),
    channel=st.sampled_from([L, E]),
)
def test_a_legal_deadline_is_a_working_day_at_least_fourteen_days_after_receipt(
    day: date, minute: int, channel: Channel
) -> None:
    plan = get_plan("de-follow-up")
    dispatched = datetime(day.year, day.month, day.day, tzinfo=BERLIN) + timedelta(minutes=minute)
    receipt = expected_receipt(plan, dispatched, channel, "NW")  # letter: 3rd working day (issue #10)

    last_day, expires = notice_deadline(plan, dispatched, channel, "NW")

    assert is_working_day(last_day, subdivision="NW")
    assert receipt + timedelta(days=14) <= last_day <= receipt + timedelta(days=14 + 5)
    assert expires == datetime.combine(last_day + DAY, time.min, tzinfo=BERLIN)


# --- references ------------------------------------------------------------------------------


def test_the_rf_reference_of_a_contract_number_is_a_valid_iso_11649_reference() -> None:
    ref = rf_reference("K-1001")

    assert ref.startswith("RF") and ref.endswith("K1001")
    assert is_valid_rf_reference(ref)


def test_a_tampered_rf_reference_is_invalid() -> None:
    ref = rf_reference("K-1001")
    tampered = ref[:-1] + ("2" if ref[-1] != "2" else "3")

    assert not is_valid_rf_reference(tampered)
    assert not is_valid_rf_reference("RF00K1001")


def test_the_iso_11649_example_reference_is_valid_and_is_reproduced() -> None:
    assert is_valid_rf_reference("RF18539007547034")
    assert is_valid_rf_reference("RF18 5390 0754 7034")
    assert rf_reference("539007547034") == "RF18539007547034"


@pytest.mark.parametrize("payload", ["", "---", "A" * 22])
def test_an_empty_or_too_long_reference_payload_is_rejected(payload: str) -> None:
    with pytest.raises(ValueError, match="1..21"):
        rf_reference(payload)


def test_a_twenty_one_character_payload_is_still_accepted() -> None:
    assert is_valid_rf_reference(rf_reference("A" * 21))


@given(
    payload=st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=21)
)
def test_every_generated_rf_reference_validates(payload: str) -> None:
    if not payload.replace("-", ""):
        return
    assert is_valid_rf_reference(rf_reference(payload))


def test_masking_a_contract_number_hides_all_but_the_last_three_characters() -> None:
    masked = mask_contract_number("K-100001")

    assert masked == "•••••001"
    assert len(masked) == len("K-100001")


def test_masking_a_short_contract_number_shows_only_the_last_character() -> None:
    assert mask_contract_number("K-12") == "•••2"


# --- money -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cents"),
    [("12,34", 1234), ("12.34", 1234), ("12", 1200), (" 12,3 ", 1230), ("0,01", 1), ("1 000,00", 100_000)],
)
def test_parse_amount_reads_comma_or_dot_decimals_into_cents(text: str, cents: int) -> None:
    assert parse_amount(text) == cents


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("12.345", "at most two decimals"),
        ("12,345", "at most two decimals"),
        ("abc", "must be a number"),
        ("", "must be a number"),
        ("NaN", "finite"),
        ("inf", "finite"),
        ("-Infinity", "finite"),
    ],
)
def test_parse_amount_rejects_non_numbers_and_sub_cent_amounts_with_a_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        parse_amount(text)
    assert repr(text) in str(error.value)


@pytest.mark.parametrize("text", ["1e30", "1" * 30])
def test_parse_amount_rejects_a_huge_number_with_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text)


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (123456, "1.234,56 €"),
        (-123456, "-1.234,56 €"),
        (0, "0,00 €"),
        (5, "0,05 €"),
        (-5, "-0,05 €"),
        (100_000_000, "1.000.000,00 €"),
    ],
)
def test_format_eur_writes_german_style_amounts(cents: int, text: str) -> None:
    assert format_eur(cents) == text


@given(cents=st.integers(min_value=0, max_value=10**12))
def test_format_eur_then_parse_amount_round_trips(cents: int) -> None:
    assert parse_amount(format_eur(cents).removesuffix(" €").replace(".", "")) == cents


# --- plans -----------------------------------------------------------------------------------


def plan_with(steps: list[PlanStep], **fields: object) -> DunningPlan:
    return DunningPlan(id="test-plan", version=1, title="Test", steps=steps, **fields)


def notice(key: str = "notice", offset: timedelta = 14 * DAY, channels: list[Channel] | None = None) -> PlanStep:
    return PlanStep(key=key, kind=StepKind.QUALIFIED_NOTICE, offset=offset, channels=channels or [L])


@pytest.mark.parametrize("plan_id", sorted(BUILTIN_PLANS))
def test_every_built_in_plan_validates_again_from_its_own_dump(plan_id: str) -> None:
    plan = BUILTIN_PLANS[plan_id]

    again = DunningPlan.model_validate(plan.model_dump())

    assert again == plan
    assert get_plan(plan_id) is plan


def test_an_unknown_plan_id_names_the_known_plans() -> None:
    with pytest.raises(KeyError, match="de-follow-up"):
        get_plan("nope")


def test_a_payment_period_shorter_than_fourteen_days_is_rejected() -> None:
    with pytest.raises(ValueError, match="14 days"):
        plan_with([notice()], payment_period=13 * DAY)


def test_a_demo_plan_may_have_a_payment_period_shorter_than_fourteen_days() -> None:
    plan = plan_with([notice()], payment_period=13 * DAY, demo=True)

    assert plan.payment_period == 13 * DAY


def test_duplicate_step_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="unique"):
        plan_with([notice("notice"), notice("notice", offset=20 * DAY)])


def test_a_plan_without_steps_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        plan_with([])


def test_a_step_counting_from_the_deadline_before_any_qualified_notice_is_rejected() -> None:
    sms = PlanStep(key="sms", kind=StepKind.PAY_LINK_SMS, after=Anchor.DEADLINE, offset=DAY, channels=[S])

    with pytest.raises(ValueError, match="no qualified notice comes before"):
        plan_with([sms, notice()])


def test_a_step_counting_from_the_handover_before_any_handover_is_rejected() -> None:
    court = PlanStep(key="court", kind=StepKind.COURT_DUNNING, after=Anchor.HANDOVER, offset=30 * DAY)

    with pytest.raises(ValueError, match="no agency handover comes before"):
        plan_with([notice(), court])


def test_suspending_cover_before_a_qualified_notice_is_rejected() -> None:
    suspend = PlanStep(key="suspend", kind=StepKind.SUSPEND_COVER, offset=10 * DAY)

    with pytest.raises(ValueError, match="only be suspended after a qualified notice"):
        plan_with([suspend, notice()])


def test_sms_cannot_carry_a_qualified_notice() -> None:
    with pytest.raises(ValueError, match="SMS is not text form"):
        notice(channels=[S])


def test_a_message_step_without_channels_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one channel"):
        PlanStep(key="reminder", kind=StepKind.REMINDER, offset=3 * DAY)


def test_offsets_from_the_same_anchor_must_not_decrease_along_the_plan() -> None:
    reminder = PlanStep(key="reminder", kind=StepKind.REMINDER, offset=20 * DAY, channels=[E])

    with pytest.raises(ValueError, match="must not decrease"):
        plan_with([reminder, notice(offset=14 * DAY)])


def test_offsets_from_different_anchors_are_independent() -> None:
    suspend = PlanStep(key="suspend", kind=StepKind.SUSPEND_COVER, after=Anchor.DEADLINE, offset=timedelta(0))

    plan = plan_with([notice(offset=14 * DAY), suspend])

    assert [s.key for s in plan.steps] == ["notice", "suspend"]


def test_a_negative_fee_is_rejected() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        PlanStep(key="notice", kind=StepKind.QUALIFIED_NOTICE, offset=14 * DAY, channels=[L], fees_cents={L: -1})


def test_a_negative_offset_is_rejected() -> None:
    with pytest.raises(ValueError, match="offset must be >= 0"):
        notice(offset=-DAY)


def test_a_copy_of_a_plan_pinned_earlier_does_not_change_when_a_later_copy_is_edited() -> None:
    pinned = BUILTIN_PLANS["de-follow-up"].model_copy(deep=True)
    pinned_dump = pinned.model_dump()

    edited = BUILTIN_PLANS["de-follow-up"].model_copy(deep=True)
    edited.steps[1].fees_cents[L] = 999
    edited.steps[0].offset = 5 * DAY
    edited.payment_period = 21 * DAY

    assert pinned.model_dump() == pinned_dump
    assert BUILTIN_PLANS["de-follow-up"].steps[1].fees_cents[L] == 150
    assert BUILTIN_PLANS["de-follow-up"].model_dump() == pinned_dump


def test_the_demo_plans_share_no_mutable_step_data_with_the_real_plan() -> None:
    real, demo = BUILTIN_PLANS["de-follow-up"], BUILTIN_PLANS["demo"]

    assert all(a is not b for a in real.steps for b in demo.steps)
    assert all(a.fees_cents is not b.fees_cents for a in real.steps for b in demo.steps)
    assert demo.step("notice").offset == 2 * timedelta(minutes=1)
    assert real.step("notice").offset == 14 * DAY


# --- schedule --------------------------------------------------------------------------------


def case_state(plan: DunningPlan, items: list[OpenItem], **fields: object) -> CaseState:
    return CaseState(
        case_id="case-K-1",
        contract_number="K-1",
        plan=plan,
        opened_at=datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
        arrears=Arrears(contract_number="K-1", items=items, balance_cents=sum(i.open_cents for i in items)),
        **fields,
    )


def item(premium_id: str, due: date, cents: int = 10_000) -> OpenItem:
    return OpenItem(premium_id=premium_id, period="", due_date=due, open_cents=cents)


def test_the_due_anchor_is_the_start_of_the_oldest_open_items_due_day_in_berlin() -> None:
    state = case_state(get_plan("de-follow-up"), [item("P-2", date(2026, 2, 1)), item("P-1", date(2026, 1, 1))])

    assert due_anchor(state) == datetime(2026, 1, 1, 0, 0, tzinfo=BERLIN)


def test_after_the_oldest_item_is_paid_the_next_step_re_anchors_to_the_next_items_due_date() -> None:
    plan = get_plan("de-follow-up")
    state = case_state(plan, [item("P-1", date(2026, 1, 1)), item("P-2", date(2026, 2, 1))], next_step=1)
    notice_step = plan.steps[1]
    assert step_due_at(state, notice_step) == datetime(2026, 1, 15, 8, 0, tzinfo=BERLIN)  # a Thursday

    state.arrears.items = [i for i in state.arrears.items if i.premium_id != "P-1"]

    # 2026-02-15 is a Sunday: the notice goes out on Monday morning
    assert step_due_at(state, notice_step) == datetime(2026, 2, 16, 8, 0, tzinfo=BERLIN)


def test_with_only_fees_open_the_due_anchor_is_the_case_opening() -> None:
    state = case_state(get_plan("de-follow-up"), [])

    assert due_anchor(state) == state.opened_at


def test_in_joined_mode_the_anchor_is_when_the_oldest_open_item_joined_the_case() -> None:
    joined = {"P-1": datetime(2026, 3, 1, 8, 5, tzinfo=UTC), "P-2": datetime(2026, 3, 1, 8, 1, tzinfo=UTC)}
    state = case_state(
        get_plan("demo"), [item("P-1", date(2026, 1, 1)), item("P-2", date(2026, 2, 1))], joined_at=joined
    )

    assert due_anchor(state) == joined["P-2"]
    state.arrears.items = [item("P-1", date(2026, 1, 1)), item("P-3", date(2026, 2, 1))]  # P-3 joined unseen
    assert due_anchor(state) == state.opened_at


def test_steps_after_the_deadline_count_from_the_deadline_and_fail_clearly_without_one() -> None:
    plan = get_plan("de-follow-up")
    state = case_state(plan, [item("P-1", date(2026, 1, 1))])
    sms = plan.step("sms")

    with pytest.raises(ValueError, match="no notice set one"):
        step_due_at(state, sms)

    state.deadline = datetime(2026, 2, 3, 0, 0, tzinfo=BERLIN)
    assert step_due_at(state, sms) == datetime(2026, 2, 4, 8, 0, tzinfo=BERLIN)
    assert step_due_at(state, plan.step("suspend")) == state.deadline  # a legal effect, not a dispatch


def test_steps_after_the_handover_count_from_the_handover_and_fail_clearly_without_one() -> None:
    plan = get_plan("de-follow-up")
    state = case_state(plan, [item("P-1", date(2026, 1, 1))])
    court = plan.step("court")

    with pytest.raises(ValueError, match="has not happened"):
        step_due_at(state, court)

    state.handover_at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert step_due_at(state, court) == state.handover_at + 30 * DAY


# --- dispatch on working days ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "sent"),
    [
        (datetime(2026, 11, 21, 0, 0), datetime(2026, 11, 23, 8, 0)),  # Saturday midnight → Monday 08:00
        (datetime(2026, 11, 23, 0, 0), datetime(2026, 11, 23, 8, 0)),  # Monday midnight → same morning
        (datetime(2026, 11, 23, 9, 30), datetime(2026, 11, 23, 9, 30)),  # inside the window: as is
        (datetime(2026, 11, 23, 20, 0), datetime(2026, 11, 24, 8, 0)),  # evening → next morning
        (datetime(2026, 12, 24, 21, 0), datetime(2026, 12, 28, 8, 0)),  # Christmas days and Sunday skipped
        (datetime(2027, 3, 28, 0, 0), datetime(2027, 3, 30, 8, 0)),  # Easter Sunday (DST starts), Easter Monday
        (datetime(2026, 10, 25, 12, 0), datetime(2026, 10, 26, 8, 0)),  # Sunday when DST ends
    ],
)
def test_messages_go_out_on_working_days_between_eight_and_eight(due: datetime, sent: datetime) -> None:
    moved = dispatch_moment(due.replace(tzinfo=BERLIN), "Europe/Berlin")
    assert moved == sent.replace(tzinfo=BERLIN)
    assert moved.astimezone(BERLIN).utcoffset() == sent.replace(tzinfo=BERLIN).utcoffset()


def test_demo_plans_send_at_the_exact_minute() -> None:
    plan = get_plan("demo")
    state = case_state(plan, [item("P-1", date(2026, 11, 21))])  # joined mode: anchored on the opening
    state.opened_at = datetime(2026, 11, 21, 23, 0, tzinfo=BERLIN)  # Saturday night
    assert step_due_at(state, plan.steps[0]) == state.opened_at + plan.steps[0].offset


# --- supplementary notices ---------------------------------------------------------------------


def after_notice(p2_due: date, noticed: list[str] | None) -> CaseState:
    """A case past its notice (deadline 4 Feb 2026) that named P-1; P-2 fell due on `p2_due`."""
    return case_state(
        get_plan("de-follow-up"),
        [item("P-1", date(2026, 1, 1)), item("P-2", p2_due)],
        next_step=2,
        deadline=datetime(2026, 2, 4, 0, 0, tzinfo=BERLIN),
        noticed_items=noticed,
    )


def test_a_premium_the_notice_did_not_name_gets_a_supplement_timed_like_the_notice() -> None:
    state = after_notice(date(2026, 1, 20), ["P-1"])
    supplement = next_step(state)
    assert supplement is not None and supplement.key == "notice_supplement_1"
    assert supplement.kind == StepKind.QUALIFIED_NOTICE
    # 14 days after P-2 fell due (2026-02-03, a Tuesday), before the suspension at the deadline
    assert step_due_at(state, supplement) == datetime(2026, 2, 3, 8, 0, tzinfo=BERLIN)

    state.noticed_items = ["P-1", "P-2"]
    assert next_step(state) == state.plan.steps[2]  # everything named: back to the plan


def test_the_suspension_comes_first_when_it_is_due_before_the_supplement() -> None:
    state = after_notice(date(2026, 1, 30), ["P-1"])
    assert next_step(state) == state.plan.step("suspend")


def test_cases_from_before_supplements_existed_never_send_one() -> None:
    state = after_notice(date(2026, 1, 20), None)
    assert next_step(state) == state.plan.step("suspend")


# --- instalment plans --------------------------------------------------------------------------


def test_equal_instalments_add_up_to_the_cent_monthly_with_month_ends_clamped() -> None:
    from core.instalments import equal_instalments, schedule_problem

    plan = equal_instalments(10_000, 3, date(2027, 1, 31))
    assert [(i.due, i.amount_cents) for i in plan] == [
        (date(2027, 1, 31), 3_334),
        (date(2027, 2, 28), 3_333),
        (date(2027, 3, 31), 3_333),
    ]
    assert schedule_problem(plan, 10_000, date(2027, 1, 1)) is None
    with pytest.raises(ValueError, match="cannot split 2 cents into 3"):
        equal_instalments(2, 3, date(2027, 1, 1))


def test_a_contract_number_too_long_for_an_rf_reference_gets_none_instead_of_an_error() -> None:
    from core.references import payment_reference

    assert payment_reference("K-1001") == rf_reference("K-1001")
    assert payment_reference("K-" + "9" * 30) == ""
