"""The optional response model of the what-if simulation (issue #16): how likely a case is paid
after each step, estimated from the recorded history, and what that means for a candidate plan.

Estimation (from the replay of the plan actually used, i.e. from what the ledger recorded): for each
case, the plan steps it ran in order and whether it ended paid. A case paid after its last step `k`
counts as "paid after k"; every step it ran counts as "reached". So

    p(before any step) = cases paid before their first step / cases
    p(k)               = cases paid after a step of kind k (before the next one) / cases that reached k

Expectation for a plan: its steps in order; the chance to reach step i is the chance that nobody paid
after the steps before it; the expected settled share is 1 − the chance to get past the last step
unpaid. A step kind the history never reached has no estimate (counted as nobody paying there, and
named in `unknown`). Cases still open at the end of the period count as not paid (censored: the
estimate is on the low side). It is an estimate per step kind, not per customer: it ignores amounts,
channels and timing — the side-by-side replay of the recorded payments stays the conservative figure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from core.simulation import ContractOutcome
from core.steps import StepKind
from models.case import CaseStage
from models.plan import DunningPlan


@dataclass(frozen=True)
class ResponseModel:
    cases: int
    paid_before_steps: int
    reached: dict[str, int]  # step kind → cases that ran it
    paid_after: dict[str, int]  # step kind → cases paid after it, before the next step

    def p_before(self) -> float:
        return self.paid_before_steps / self.cases if self.cases else 0.0

    def p_after(self, kind: str) -> float | None:
        reached = self.reached.get(kind, 0)
        return self.paid_after.get(kind, 0) / reached if reached else None


def estimate(outcomes: Iterable[ContractOutcome]) -> ResponseModel:
    cases = paid_before = 0
    reached: Counter[str] = Counter()
    paid_after: Counter[str] = Counter()
    for outcome in outcomes:
        for case in outcome.cases:
            cases += 1
            paid = case.stage == CaseStage.PAID
            for kind in case.steps:
                reached[kind.value] += 1
            if paid and not case.steps:
                paid_before += 1
            elif paid:
                paid_after[case.steps[-1].value] += 1
    return ResponseModel(cases, paid_before, dict(reached), dict(paid_after))


@dataclass(frozen=True)
class StepExpectation:
    key: str
    kind: str
    p_reach: float
    p_paid_after: float | None  # None: the history has no case that reached this kind


@dataclass(frozen=True)
class Expectation:
    plan_id: str
    settled_share: float  # expected share of cases paid before the plan runs out of steps
    steps: list[StepExpectation] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # step kinds without an estimate

    def as_dict(self) -> dict[str, object]:
        return {
            "plan": self.plan_id,
            "expected_settled_share": round(self.settled_share, 4),
            "steps": [
                {
                    "key": s.key,
                    "kind": s.kind,
                    "p_reach": round(s.p_reach, 4),
                    "p_paid_after": None if s.p_paid_after is None else round(s.p_paid_after, 4),
                }
                for s in self.steps
            ],
            "no_estimate_for": self.unknown,
        }


def expect(plan: DunningPlan, model: ResponseModel) -> Expectation:
    """The plan's steps under the model: the chance to reach each, and the expected settled share."""
    unpaid = 1.0 - model.p_before()
    steps: list[StepExpectation] = []
    unknown: list[str] = []
    for step in plan.steps:
        kind = StepKind(step.kind).value
        p = model.p_after(kind)
        steps.append(StepExpectation(step.key, kind, unpaid, p))
        if p is None:
            unknown.append(kind)
        unpaid *= 1.0 - (p or 0.0)
    return Expectation(plan.id, 1.0 - unpaid, steps, sorted(set(unknown)))
