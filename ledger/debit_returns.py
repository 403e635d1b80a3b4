"""A returned SEPA direct debit: what each reason code means and what the ledger does about it
(DOMAIN.md §6). One catalogue row per code; the rest is derived from it.

Every return re-opens what the debit had paid. Then, by code:
- AM04, MS02, MS03, MD06 (no money, refused, refunded): the premium is dunned at once.
- AC01, AC04, AC06 (wrong, closed or blocked account): debiting stops (self-payment), a back-office
  task asks the customer for new bank details, and the premium is dunned.
- MD01 (no valid mandate): debiting stops (self-payment), a back-office task requests a new mandate,
  and the premium is dunned.
- MD07 (debtor deceased): automated dunning stops for the whole contract until a person releases
  it; a back-office task asks a person to decide. Nothing is dunned.

Runs inside the caller's transaction; the caller tells the cases after the commit (ledger/inbound.py).
A second return of the same debit changes nothing and creates no second task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from ledger import service
from models.ledger import AgentTask, Contract

BACKOFFICE = "backoffice"
BANK_DETAILS_TASK = "bank_details_request"
MANDATE_TASK = "mandate_request"


@dataclass(frozen=True)
class ReturnRule:
    meaning: str
    self_payment: bool = False  # stop debiting: the customer pays by transfer from now on
    task: str | None = None  # the back-office task kind this return opens
    task_text: str = ""  # what the task asks for, as the event result reports it
    stop: bool = False  # stop automated dunning for the contract until a person releases it


def _new_bank_details(meaning: str) -> ReturnRule:
    return ReturnRule(
        meaning, self_payment=True, task=BANK_DETAILS_TASK, task_text="ask the customer for new bank details"
    )


RETURN_RULES: dict[str, ReturnRule] = {
    "AM04": ReturnRule("insufficient funds"),
    "MS02": ReturnRule("refused by the debtor"),
    "MS03": ReturnRule("refused by the debtor's bank, reason not given"),
    "MD06": ReturnRule("refund requested by the debtor"),
    "AC01": _new_bank_details("account number incorrect"),
    "AC04": _new_bank_details("account closed"),
    "AC06": _new_bank_details("account blocked"),
    "MD01": ReturnRule(
        "no valid mandate", self_payment=True, task=MANDATE_TASK, task_text="request a new SEPA mandate"
    ),
    "MD07": ReturnRule(
        "debtor deceased", task=service.STOP_REVIEW_TASK, task_text="a person decides how to go on", stop=True
    ),
}


def rule_for(reason_code: str) -> tuple[str, ReturnRule]:
    code = reason_code.strip().upper()
    if code not in RETURN_RULES:
        raise service.LedgerError(f"reason_code must be one of {sorted(RETURN_RULES)}, got {reason_code!r}")
    return code, RETURN_RULES[code]


@dataclass
class ReturnOutcome:
    contract_number: str
    code: str
    rule: ReturnRule
    reopened: list[str]  # premiums the debit had paid, open again
    changed: bool  # False: this debit was returned before, nothing changed now
    dunned: list[str] = field(default_factory=list)  # re-opened premiums to start or join the case for
    actions: list[str] = field(default_factory=list)  # what was done, in words, for the event result
    stopped: bool = False  # the contract is stopped for this code: the running case must be told

    @property
    def stop_reason(self) -> str:
        return f"{self.rule.meaning}: direct debit returned with {self.code}"


def apply_return(session: Session, payment_ref: str, reason_code: str, now: datetime) -> ReturnOutcome:
    """Re-open what the debit paid, then do what its reason code asks (see the module docstring)."""
    code, rule = rule_for(reason_code)
    payment, reopened, changed = service.reverse_payment(session, payment_ref, code)
    contract = session.get(Contract, payment.contract_id)
    assert contract is not None and contract.id is not None  # foreign key
    outcome = ReturnOutcome(contract.contract_number, code, rule, reopened, changed)
    if changed and rule.self_payment:
        contract.payment_method = "self_payment"
        session.add(contract)
        outcome.actions.append("payment method switched to self-payment: no more direct debits")
    if changed and rule.stop:
        service.stop_dunning(
            session, contract.contract_number, code=code, reason=f"{rule.meaning} (payment {payment_ref})", at=now
        )
        outcome.actions.append("automated dunning stopped for the contract until a person releases it")
    if changed and rule.task is not None:
        task, _ = service.add_agent_task(
            session,
            AgentTask(
                idempotency_key=f"ddreturn:{payment_ref}",
                case_id="",
                contract_id=contract.id,
                agent_code=BACKOFFICE,
                kind=rule.task,
                open_cents=payment.amount_cents,
                created_at=now,
                due_at=now,
            ),
        )
        outcome.actions.append(f"back-office task {task.kind} #{task.id}: {rule.task_text}")
    outcome.stopped = rule.stop and contract.dunning_stopped_code == code
    if not rule.stop:
        blocked = {p.external_id for p in service.blocked_premiums(session, contract.contract_number)}
        outcome.dunned = [p for p in reopened if p not in blocked]
    return outcome
