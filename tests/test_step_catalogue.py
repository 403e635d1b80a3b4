"""The catalogue (core/steps.py, message rows in models/messages.py) is complete: every step kind,
case stage and message kind has its row and its texts, every message kind has a template for each
channel it may use in every supported language, and the tables that used to be kept by hand are
derived from it. The Temporal UI's current details say the truth for every stage, in Markdown the
UI's renderer shows as written."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from channels.render import TEMPLATES_DIR, supported_channels
from core.case_view import current_details
from core.languages import SUPPORTED_LANGUAGES
from core.steps import (
    CLOSED_STAGES,
    DECISION_STAGES,
    MESSAGE_STEPS,
    MESSAGES,
    STAGE_AFTER_STEP,
    STAGE_OF_MESSAGE,
    STAGES,
    STEPS,
    CaseStage,
    LegalEffect,
    StepAction,
    StepKind,
    stage_text,
    waits_for,
)
from models.case import Arrears, CaseState, OpenItem, StepRecord
from models.messages import CONFIRMATION_KINDS, TEXT_FORM_KINDS, Channel, MessageKind
from models.plans import BUILTIN_PLANS

# The languages with a template folder (core/languages.py): German, English and Danish, each
# complete (tests/test_languages.py renders every kind and channel in each).


def required_templates(kind: MessageKind, channel: Channel) -> list[tuple[str, ...]]:
    """What channels/render.render_message reads for one kind on one channel: each entry is a list
    of alternatives, one of which must exist (a letter takes the e-mail's subject if it has none)."""
    k, c = kind.value, channel.value
    if channel is Channel.SMS:
        return [(f"{k}.sms.txt",)]
    subject = tuple(dict.fromkeys((f"{k}.{c}.subject.txt", f"{k}.email.subject.txt")))
    if channel is Channel.LETTER:  # the PDF is Typst (docs/architecture-decisions.md), the copy Jinja text
        return [subject, (f"{k}.letter.txt",), (f"{k}.letter.typ",)]
    return [subject, (f"{k}.{c}.txt",), (f"{k}.{c}.html",)]


def test_every_step_kind_stage_and_message_kind_has_its_row() -> None:
    assert set(STEPS) == set(StepKind)
    assert set(STAGES) == set(CaseStage)
    assert set(MESSAGES) == set(MessageKind)


def test_every_row_has_its_texts() -> None:
    assert all(spec.title.strip() for spec in STEPS.values())
    assert all(spec.text.strip() and spec.waits_for.strip() for spec in STAGES.values())


def test_a_message_step_names_its_message_and_no_other_step_does() -> None:
    for kind, spec in STEPS.items():
        assert (spec.action == StepAction.SEND_MESSAGE) == (spec.message is not None), kind
        if spec.message is not None:
            assert MESSAGES[spec.message].demands_payment, f"{kind} sends {spec.message}, which demands nothing"


def test_only_steps_that_propose_a_legal_effect_lead_to_a_stage_that_waits_for_a_person() -> None:
    proposing = {LegalEffect.PROPOSES_TERMINATION, LegalEffect.PROPOSES_COURT_FILING}
    for kind, spec in STEPS.items():
        assert (spec.stage_after in DECISION_STAGES) == (spec.legal_effect in proposing), kind
        assert spec.stage_after not in CLOSED_STAGES, f"{kind}: a plan step never closes a case"


def test_the_tables_that_were_kept_by_hand_are_derived_from_the_catalogue() -> None:
    assert MESSAGE_STEPS == {k for k, s in STEPS.items() if s.message is not None}
    assert {StepKind.REMINDER, StepKind.QUALIFIED_NOTICE, StepKind.PAY_LINK_SMS} <= MESSAGE_STEPS
    assert STAGE_AFTER_STEP[StepKind.TERMINATION] == CaseStage.TERMINATION_APPROVAL
    assert STAGE_OF_MESSAGE[MessageKind.QUALIFIED_NOTICE] == CaseStage.NOTICE_SENT
    assert CLOSED_STAGES == {CaseStage.PAID, CaseStage.WRITTEN_OFF, CaseStage.CANCELLED}
    assert DECISION_STAGES == {CaseStage.COURT_APPROVAL, CaseStage.TERMINATION_APPROVAL}
    assert TEXT_FORM_KINDS == {MessageKind.QUALIFIED_NOTICE, MessageKind.TERMINATION_LETTER}
    assert CONFIRMATION_KINDS == {
        MessageKind.PAID_IN_FULL,
        MessageKind.REACTIVATION,
        MessageKind.TERMINATION_VOID,
        MessageKind.PAID_AFTER_TERMINATION,
    }


def test_the_supported_languages_are_exactly_the_template_folders() -> None:
    folders = {p.name for p in TEMPLATES_DIR.iterdir() if p.is_dir()}
    assert folders == set(SUPPORTED_LANGUAGES), "a new language folder: add it to SUPPORTED_LANGUAGES (and complete it)"


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("kind", list(MessageKind))
def test_every_message_kind_has_a_template_for_each_of_its_channels(kind: MessageKind, language: str) -> None:
    folder: Path = TEMPLATES_DIR / language
    missing = [
        " or ".join(alternatives)
        for channel in sorted(MESSAGES[kind].channels)
        for alternatives in required_templates(kind, channel)
        if not any((folder / name).is_file() for name in alternatives)
    ]
    assert not missing, f"templates/{language}/ lacks {missing} for {kind}"


@pytest.mark.parametrize("kind", list(MessageKind))
def test_a_message_kind_declares_exactly_the_channels_it_has_templates_for(kind: MessageKind) -> None:
    assert supported_channels(kind, "de") == set(MESSAGES[kind].channels)


def test_a_text_form_message_never_goes_by_sms() -> None:
    assert all(Channel.SMS not in MESSAGES[kind].channels for kind in TEXT_FORM_KINDS)


@pytest.mark.parametrize("plan_id", sorted(BUILTIN_PLANS))
def test_every_built_in_plan_step_sends_only_on_channels_its_message_has_templates_for(plan_id: str) -> None:
    for step in BUILTIN_PLANS[plan_id].steps:
        message = STEPS[step.kind].message
        if message is not None:
            assert set(step.channels) | set(step.copies) <= MESSAGES[message].channels, step.key


# --- the case as the Temporal UI shows it -------------------------------------------------------


def case_in(stage: CaseStage, next_step: int = 0, plan_id: str = "de-follow-up-terminate") -> CaseState:
    opened = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    return CaseState(
        case_id="dunning-K-1003/20261129T080000",
        contract_number="K-1003",
        plan=BUILTIN_PLANS[plan_id],
        stage=stage,
        opened_at=opened,
        arrears=Arrears(
            contract_number="K-1003",
            items=[
                OpenItem(
                    premium_id="K-1003-P1",
                    period="29.11.2026 – 29.12.2026",
                    due_date=date(2026, 11, 29),
                    open_cents=3_250,
                ),
                OpenItem(
                    premium_id="K-1003-P2",
                    period="29.12.2026 – 29.01.2027",
                    due_date=date(2026, 12, 29),
                    open_cents=3_250,
                ),
            ],
            balance_cents=6_500,
            contract_status="suspended",
        ),
        next_step=next_step,
        steps_done=[
            StepRecord(key="reminder", kind=StepKind.REMINDER, at=opened + timedelta(days=3), total_cents=3_250)
        ],
        closed_at=opened + timedelta(days=60) if stage in CLOSED_STAGES else None,
        closed_reason="Balance cleared" if stage in CLOSED_STAGES else "",
    )


def markdown_problems(text: str) -> list[str]:
    """What the UI's renderer would show garbled: tables (its cells have no padding) and lists that
    follow a line of text without a blank line (they stay text with literal dashes)."""
    lines = text.split("\n")
    problems = [f"table row: {line!r}" for line in lines if line.lstrip().startswith("|")]
    for before, line in zip(lines, lines[1:], strict=False):
        if re.match(r"^\s*[-*] ", line) and before.strip() and not re.match(r"^\s*[-*] ", before):
            problems.append(f"list without a blank line before it: {before!r} → {line!r}")
    return problems


@pytest.mark.parametrize("stage", list(CaseStage))
def test_the_current_details_say_the_truth_for_every_stage_when_no_step_is_due(stage: CaseStage) -> None:
    plan = BUILTIN_PLANS["de-follow-up-terminate"]
    details = current_details(case_in(stage, next_step=len(plan.steps)), None, None)

    assert details.startswith(f"**{stage_text(stage)}**")
    if stage in CLOSED_STAGES:
        assert "Closed" in details and "Waiting for" not in details
    else:
        assert f"Waiting for: {waits_for(stage)}" in details
    assert not markdown_problems(details)


def test_a_case_waiting_for_a_termination_decision_says_so_not_waiting_for_payment() -> None:
    plan = BUILTIN_PLANS["de-follow-up-terminate"]
    at = next(i for i, s in enumerate(plan.steps) if s.kind == StepKind.TERMINATION)

    details = current_details(case_in(CaseStage.TERMINATION_APPROVAL, next_step=at + 1), None, None)

    assert "Waiting for: a person approves or declines the termination" in details
    assert "approve_termination" in details and "decline_termination" in details
    assert "waiting for payment" not in details.lower() and "plan completed" not in details


def test_the_current_details_list_each_premium_with_labelled_fields_not_a_table() -> None:
    plan = BUILTIN_PLANS["de-follow-up-terminate"]
    step_at = datetime(2026, 12, 14, 8, 0, tzinfo=UTC)

    details = current_details(case_in(CaseStage.REMINDED, next_step=1), plan.steps[1], step_at)

    assert "- K-1003-P1: 29.11.2026 – 29.12.2026, due 29.11.2026, open **32,50 €**" in details
    assert "- Next: **notice** (Qualified notice §38 VVG 14 days after due) at 14.12.2026 09:00" in details
    assert not markdown_problems(details)
