"""The what-if report (issue #16): totals side by side, per-contract differences, CSV, and the
replay check (the plan actually used must reproduce what the ledger recorded). Pure."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from core.calendar import local_date
from core.response_model import Expectation, ResponseModel, estimate, expect
from core.simulation import ContractHistory, ContractOutcome, simulate_contract
from core.timezone import BUSINESS_TIMEZONE
from models.ledger import ContractStatus
from models.messages import MessageKind
from models.plan import DunningPlan
from models.plans import get_plan

# The messages a case itself sends (the children's agent mails and call notices are not replayed).
CASE_KINDS = frozenset(
    {
        MessageKind.REMINDER,
        MessageKind.QUALIFIED_NOTICE,
        MessageKind.PAY_LINK_SMS,
        MessageKind.PAYMENT_RECEIPT,
        MessageKind.TERMINATION_LETTER,
        MessageKind.PAID_IN_FULL,
        MessageKind.REACTIVATION,
        MessageKind.TERMINATION_VOID,
        MessageKind.PAID_AFTER_TERMINATION,
        MessageKind.FINAL_REMINDER,
    }
)


@dataclass
class Totals:
    contracts: int = 0
    cases: int = 0
    cases_open_at_end: int = 0
    messages: int = 0
    by_channel: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    fees_cents: int = 0
    fees_paid_cents: int = 0
    suspended_days: float = 0.0
    suspensions: int = 0
    handovers: int = 0
    court_cases: int = 0
    termination_proposals: int = 0
    paid_cents: int = 0
    open_cents_at_end: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "contracts": self.contracts,
            "cases": self.cases,
            "cases_open_at_end": self.cases_open_at_end,
            "messages": self.messages,
            "messages_by_channel": dict(sorted(self.by_channel.items())),
            "messages_by_kind": dict(sorted(self.by_kind.items())),
            "fees_cents": self.fees_cents,
            "fees_paid_cents": self.fees_paid_cents,
            "suspended_days": round(self.suspended_days, 2),
            "suspensions": self.suspensions,
            "handovers": self.handovers,
            "court_cases": self.court_cases,
            "termination_proposals": self.termination_proposals,
            "paid_cents": self.paid_cents,
            "open_cents_at_end": self.open_cents_at_end,
        }


def totals(outcomes: Iterable[ContractOutcome]) -> Totals:
    t = Totals()
    for o in outcomes:
        t.contracts += 1
        t.cases += len(o.cases)
        t.cases_open_at_end += sum(1 for case in o.cases if case.closed_at is None)
        t.messages += len(o.messages)
        for m in o.messages:
            t.by_channel[m.channel.value] += 1
            t.by_kind[m.kind.value] += 1
        t.fees_cents += o.fees_cents
        t.fees_paid_cents += o.fees_paid_cents
        t.suspended_days += o.suspended_days
        t.suspensions += sum(1 for s in o.status_changes if s.to_status == ContractStatus.SUSPENDED)
        t.handovers += o.handovers
        t.court_cases += o.court_cases
        t.termination_proposals += o.termination_proposals
        t.paid_cents += o.paid_cents
        t.open_cents_at_end += o.open_cents_at_end
    return t


@dataclass(frozen=True)
class ContractDifference:
    contract_number: str
    messages_actual: int
    messages_candidate: int
    fees_actual_cents: int
    fees_candidate_cents: int
    suspended_days_actual: float
    suspended_days_candidate: float
    court_actual: int
    court_candidate: int
    terminations_actual: int
    terminations_candidate: int
    open_actual_cents: int
    open_candidate_cents: int

    @property
    def differs(self) -> bool:
        return (
            self.messages_actual,
            self.fees_actual_cents,
            self.suspended_days_actual,
            self.court_actual,
            self.terminations_actual,
            self.open_actual_cents,
        ) != (
            self.messages_candidate,
            self.fees_candidate_cents,
            self.suspended_days_candidate,
            self.court_candidate,
            self.terminations_candidate,
            self.open_candidate_cents,
        )


def differences(actual: Sequence[ContractOutcome], candidate: Sequence[ContractOutcome]) -> list[ContractDifference]:
    """Per contract (same order in both), only the contracts where something differs."""
    by_number = {o.contract_number: o for o in candidate}
    out: list[ContractDifference] = []
    for a in actual:
        b = by_number[a.contract_number]
        row = ContractDifference(
            a.contract_number,
            len(a.messages),
            len(b.messages),
            a.fees_cents,
            b.fees_cents,
            a.suspended_days,
            b.suspended_days,
            a.court_cases,
            b.court_cases,
            a.termination_proposals,
            b.termination_proposals,
            a.open_cents_at_end,
            b.open_cents_at_end,
        )
        if row.differs:
            out.append(row)
    return out


CSV_COLUMNS = (
    "contract_number",
    "messages_actual",
    "messages_candidate",
    "fees_actual_cents",
    "fees_candidate_cents",
    "suspended_days_actual",
    "suspended_days_candidate",
    "court_actual",
    "court_candidate",
    "terminations_actual",
    "terminations_candidate",
    "open_actual_cents",
    "open_candidate_cents",
)


def csv_text(rows: Iterable[ContractDifference]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([getattr(row, column) for column in CSV_COLUMNS])
    return buffer.getvalue()


# --- the replay check ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedMessage:
    kind: str
    channel: str
    at: datetime


@dataclass(frozen=True)
class RecordedStatus:
    to_status: str
    effective_at: datetime


@dataclass(frozen=True)
class RecordedContract:
    """What the ledger recorded for one contract inside the period: the cases' messages and the
    contract's status changes."""

    contract_number: str
    messages: tuple[RecordedMessage, ...] = ()
    status_changes: tuple[RecordedStatus, ...] = ()


def _utc(moment: datetime | date) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if isinstance(moment, datetime) else str(moment)


def _second(moment: datetime) -> datetime | date:
    return moment.replace(microsecond=0)


def _is_demo(plan_id: str) -> bool:
    try:
        return get_plan(plan_id).demo
    except KeyError:
        return False


def _day(moment: datetime) -> datetime | date:
    return local_date(moment, BUSINESS_TIMEZONE)


def replay_defects(recorded: RecordedContract, outcome: ContractOutcome) -> list[str]:
    """Differences between the ledger and the replay of the plan actually used, as sentences.

    Messages compare as (kind, channel, local day) multisets, so a case the billing system opened at
    another hour than the morning sweep still matches; status changes compare to the second."""
    number = recorded.contract_number
    problems: list[str] = []
    had = Counter((m.kind, m.channel, _day(m.at)) for m in recorded.messages if m.kind in CASE_KINDS)
    got = Counter((m.kind.value, m.channel.value, _day(m.at)) for m in outcome.messages)
    for (kind, channel, day), n in sorted((had - got).items()):
        problems.append(f"{number}: the ledger has {n} × {kind} by {channel} on {day}, the replay does not")
    for (kind, channel, day), n in sorted((got - had).items()):
        problems.append(f"{number}: the replay sends {n} × {kind} by {channel} on {day}, the ledger has none")
    # To the second; a demo plan (minutes-long periods from the moment a send finished) by day, since
    # its deadlines move with the seconds an activity took.
    when = _day if _is_demo(outcome.plan_id) else _second
    had_status = Counter((s.to_status, when(s.effective_at)) for s in recorded.status_changes)
    got_status = Counter((s.to_status.value, when(s.effective_at)) for s in outcome.status_changes)
    for (status, at), _ in sorted((had_status - got_status).items()):
        problems.append(f"{number}: the ledger changed the status to {status} at {_utc(at)}, the replay did not")
    for (status, at), _ in sorted((got_status - had_status).items()):
        problems.append(f"{number}: the replay changes the status to {status} at {_utc(at)}, the ledger did not")
    return problems


# --- one what-if run ----------------------------------------------------------------------------


@dataclass
class WhatIf:
    candidate_plan: str
    start: datetime
    end: datetime
    actual: list[ContractOutcome]
    candidate: list[ContractOutcome]
    actual_totals: Totals
    candidate_totals: Totals
    differences: list[ContractDifference]
    defects: list[str]  # the replay check: the plan actually used against the ledger
    # The optional response model (core/response_model.py): estimated from the replay of the plans
    # actually used; the expectation for each of those plans and for the candidate.
    model: ResponseModel | None = None
    expectations: list[Expectation] = field(default_factory=list)

    def as_dict(self, max_rows: int = 200) -> dict[str, object]:
        return {
            "candidate_plan": self.candidate_plan,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "actual": self.actual_totals.as_dict(),
            "candidate": self.candidate_totals.as_dict(),
            "contracts_differing": len(self.differences),
            "differences": [{c: getattr(d, c) for c in CSV_COLUMNS} for d in self.differences[:max_rows]],
            "replay_defects": len(self.defects),
            "replay_defect_lines": self.defects[:max_rows],
            "response_model": None
            if self.model is None
            else {
                "cases": self.model.cases,
                "p_paid_before_any_step": round(self.model.p_before(), 4),
                "expectations": [x.as_dict() for x in self.expectations],
            },
        }


def simulate_chunk(
    histories: Sequence[ContractHistory], candidate: DunningPlan | None, start: datetime, end: datetime
) -> list[ContractOutcome]:
    """Outcomes for a chunk of contracts: under `candidate`, or (None) each under its own plan.
    Top-level, so a process pool can run chunks in parallel (cli/simulation.py, dev/bench)."""
    return [simulate_contract(h, candidate or get_plan(h.plan_id), start, end) for h in histories]


Mapper = Callable[..., Iterable[list[ContractOutcome]]]
CHUNK = 250


def what_if(
    histories: Sequence[ContractHistory],
    recorded: Sequence[RecordedContract],
    candidate: DunningPlan,
    start: datetime,
    end: datetime,
    mapper: Mapper = map,
) -> WhatIf:
    """The plan actually used (each contract's own) and the candidate over the same recorded events,
    side by side, plus the replay check of the actual plan against what the ledger recorded.
    `mapper`: `map`, or a process pool's `map` to use every core (chunks of `CHUNK` contracts)."""
    chunks = [list(histories[i : i + CHUNK]) for i in range(0, len(histories), CHUNK)]
    n = len(chunks)
    actual = [o for part in mapper(simulate_chunk, chunks, [None] * n, [start] * n, [end] * n) for o in part]
    tried = [o for part in mapper(simulate_chunk, chunks, [candidate] * n, [start] * n, [end] * n) for o in part]
    defects = [line for r, o in zip(recorded, actual, strict=True) for line in replay_defects(r, o)]
    model = estimate(actual)
    used = sorted({h.plan_id for h in histories} - {candidate.id})
    expectations = [expect(get_plan(plan_id), model) for plan_id in used] + [expect(candidate, model)]
    return WhatIf(
        candidate.id,
        start,
        end,
        actual,
        tried,
        totals(actual),
        totals(tried),
        differences(actual, tried),
        defects,
        model,
        expectations,
    )
