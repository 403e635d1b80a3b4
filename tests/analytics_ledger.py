"""A small hand-built ledger for the analytics tests (tests/test_analytics.py), every number worked
out by hand there. Rows are written directly, as the ledger would hold them after the cases ran."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine

from ledger import service
from ledger.db import session_scope
from models.agency import ContactAttempt, CourtEvent
from models.analytics import CaseRecord
from models.banking import LineStatus, StatementImport, StatementLine
from models.ledger import (
    AgentTask,
    ContractStatus,
    ContractStatusChange,
    CourtApplication,
    Message,
    Payment,
    Premium,
    PremiumStatus,
)

AS_OF = date(2026, 11, 30)
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
P, Q = "de-follow-up", "de-first-premium"
CONTRACTS = {"K1": "Hausrat", "K2": "Hausrat", "K3": "Kfz", "K4": "Hausrat", "K5": "Kfz"}


def at(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def build(engine: Engine) -> None:
    with session_scope(engine) as session:
        ids: dict[str, int] = {}
        for number, product in CONTRACTS.items():
            customer = service.upsert_customer(session, f"C-{number}", name="-")
            contract = service.upsert_contract(
                session, number, customer, product=product, dunning_plan=Q if number == "K3" else None
            )
            ids[number] = contract.id or 0

        def case(key: str, contract: str, opened: datetime, claimed: int | None, plan: str = P, **end: Any) -> None:
            session.add(
                CaseRecord(
                    case_id=key, contract_id=ids[contract], plan_id=plan, opened_at=opened, claimed_cents=claimed, **end
                )
            )

        def paid(
            case_end: datetime, paid_at: datetime, stage: str, suspended: bool, status: str = "active"
        ) -> dict[str, Any]:
            return {
                "closed_at": case_end,
                "outcome": "paid",
                "paid_at": paid_at,
                "stage_at_close": stage,
                "suspended": suspended,
                "contract_status_at_close": status,
            }

        case("c1", "K1", at(2026, 1, 10, 10), 10_000, **paid(at(2026, 3, 15, 12), at(2026, 3, 15), "suspended", True))
        case("c2", "K2", at(2026, 1, 31, 8), 20_000, **paid(at(2026, 4, 10, 10), at(2026, 4, 10), "notice_sent", False))
        case(
            "c3", "K3", at(2026, 2, 5), 5_000, plan=Q, closed_at=at(2026, 6, 1), outcome="write_off",
            stage_at_close="court_filed", suspended=True, contract_status_at_close="active",
        )  # fmt: skip
        case(
            "c4", "K4", at(2026, 2, 20), 8_000,
            **paid(at(2026, 9, 1, 10), at(2026, 9, 1, 8), "terminated", True, "terminated"),
        )  # fmt: skip
        case("c5", "K5", at(2026, 11, 2), 3_000)
        case(
            "c6", "K1", at(2026, 6, 10), 4_000, closed_at=at(2026, 6, 12), outcome="cancel",
            stage_at_close="reminded", contract_status_at_close="active",
        )  # fmt: skip
        case("c7", "K3", at(2025, 12, 1), None, **paid(at(2026, 1, 5, 10), at(2026, 1, 5, 8), "reminded", False))

        def pay(contract: str, when: datetime, cents: int, credit: int = 0, returned: bool = False) -> None:
            session.add(
                Payment(
                    external_ref=f"R-{contract}-{when:%m%d%H%M}-{cents}",
                    contract_id=ids[contract],
                    amount_cents=cents,
                    received_at=when,
                    source="bank",
                    credit_cents=credit,
                    returned=returned,
                )
            )

        pay("K1", at(2026, 1, 20), 3_000)
        pay("K1", at(2026, 3, 15), 7_000)
        pay("K2", at(2026, 2, 28), 5_000)
        pay("K2", at(2026, 3, 1), 2_000)
        pay("K2", at(2026, 2, 10), 9_999, returned=True)
        pay("K2", at(2026, 4, 10), 25_000, credit=7_000)
        pay("K4", at(2026, 9, 1, 8), 8_000)
        pay("K3", at(2026, 1, 5, 8), 1_234)  # c7's clearing payment (c7 has no known claim)

        def message(case_id: str, kind: str, channel: str, when: datetime, status: str = "sent") -> None:
            session.add(
                Message(
                    idempotency_key=f"{case_id}:{kind}:{channel}:{when:%m%d%H%M}",
                    case_id=case_id,
                    channel=channel,
                    kind=kind,
                    recipient="-",
                    body_text="-",
                    status=status,
                    created_at=when,
                    sent_at=when if status != "failed" else None,
                )
            )

        message("c1", "reminder", "email", at(2026, 1, 15))
        message("c1", "qualified_notice", "letter", at(2026, 2, 1))
        message("c1", "qualified_notice", "email", at(2026, 2, 1))
        message("c1", "pay_link", "sms", at(2026, 3, 10, 10))
        message("c2", "reminder", "email", at(2026, 2, 10))
        message("c2", "payment_receipt", "email", at(2026, 3, 1))  # follows a payment: not a dunning message
        message("c2", "final_reminder", "email", at(2026, 4, 3, 8, 59))  # 7 days and 1 minute before paid
        message("c2", "qualified_notice", "letter", at(2026, 4, 5))
        message("c3", "reminder", "letter", at(2026, 2, 10))
        message("c3", "qualified_notice", "letter", at(2026, 2, 25))
        message("c4", "reminder", "email", at(2026, 2, 25))
        message("c4", "qualified_notice", "letter", at(2026, 3, 10))
        message("c4", "termination_letter", "letter", at(2026, 6, 1))
        message("c4", "pay_link", "sms", at(2026, 8, 25, 8))  # exactly 7 days before the payment
        message("c5", "reminder", "email", at(2026, 11, 10))
        message("c5", "pay_link", "sms", at(2026, 11, 12), status="failed")
        message("c7", "reminder", "email", at(2026, 1, 2))

        def status(case_id: str, contract: str, to: ContractStatus, when: datetime) -> None:
            session.add(
                ContractStatusChange(
                    contract_id=ids[contract],
                    from_status=None,
                    to_status=to,
                    effective_at=when,
                    reason="-",
                    case_id=case_id,
                    idempotency_key=f"{case_id}:{to}",
                )
            )

        status("c1", "K1", ContractStatus.SUSPENDED, at(2026, 2, 20))
        status("c3", "K3", ContractStatus.SUSPENDED, at(2026, 3, 1))
        status("c4", "K4", ContractStatus.SUSPENDED, at(2026, 4, 1))
        status("c4", "K4", ContractStatus.TERMINATED, at(2026, 6, 5))

        session.add(
            CourtApplication(case_id="c3", contract_id=ids["K3"], prepared_at=at(2026, 5, 1), status="filed",
                             approved_by="sup", approved_at=at(2026, 5, 5))
        )  # fmt: skip
        session.add(CourtApplication(case_id="c4", contract_id=ids["K4"], prepared_at=at(2026, 7, 1)))
        for n, (kind, state) in enumerate([("filed", "filed"), ("issued", "issued"), ("served", "served")]):
            session.add(
                CourtEvent(idempotency_key=f"c3:court:{n}", case_id="c3", kind=kind, state_after=state,
                           recorded_at=at(2026, 5, 10 + n))
            )  # fmt: skip

        def task(case_id: str, contract: str, agent: str, created: datetime, due: datetime, outcome: str | None) -> int:
            row = AgentTask(
                idempotency_key=f"{case_id}:handover",
                case_id=case_id,
                contract_id=ids[contract],
                agent_code=agent,
                open_cents=1,
                created_at=created,
                due_at=due,
                outcome=outcome,
                status="done" if outcome else "open",
            )
            session.add(row)
            session.flush()
            return row.id or 0

        def attempt(task_id: int, case_id: str, when: datetime) -> None:
            session.add(
                ContactAttempt(idempotency_key=f"{task_id}:{when:%m%d%H}", task_id=task_id, case_id=case_id,
                               agent_code="-", channel="call", reached=False, day=when.date(), at=when)
            )  # fmt: skip

        t1 = task("c3", "K3", "A-7", at(2026, 3, 5, 10), at(2026, 3, 6, 10), "not_reachable")
        attempt(t1, "c3", at(2026, 3, 5, 15))
        attempt(t1, "c3", at(2026, 3, 7, 15))
        t2 = task("c1", "K1", "A-7", at(2026, 3, 12, 10), at(2026, 3, 13, 10), "case paid")
        attempt(t2, "c1", at(2026, 3, 14, 10))
        task("c5", "K5", "B-2", at(2026, 11, 29, 10), at(2026, 11, 30, 10), None)
        task("c4", "K4", "B-2", at(2026, 4, 10, 10), at(2026, 4, 11, 10), None)

        def premium(contract: str, key: str, due: date, cents: int, paid_cents: int = 0, **more: Any) -> None:
            session.add(
                Premium(external_id=key, contract_id=ids[contract], period_start=due, period_end=due, due_date=due,
                        amount_cents=cents, paid_cents=paid_cents, **more)
            )  # fmt: skip

        premium("K5", "P-5a", date(2026, 11, 1), 3_000)  # 29 days past due
        premium("K5", "P-5b", date(2026, 11, 30), 3_000)  # due today: not past due
        premium("K2", "P-2a", date(2026, 9, 30), 5_000, 1_000)  # 61 days, 4,000 open
        premium("K2", "P-2b", date(2026, 8, 1), 9_000, dunning_blocked=True, dunning_block_reason="MD07")
        premium("K3", "P-3a", date(2026, 10, 31), 2_500)  # 30 days
        premium("K3", "P-3b", date(2026, 10, 1), 1_000)  # 60 days
        premium("K4", "P-4a", date(2026, 6, 1), 7_000)  # 182 days
        premium("K1", "P-1a", date(2026, 8, 31), 1_500)  # 91 days
        premium("K1", "P-1b", date(2026, 12, 15), 1_500)  # not yet due
        premium("K1", "P-1c", date(2026, 1, 1), 1_500, 1_500, status=PremiumStatus.PAID)

        imported = StatementImport(file_sha256="x", imported_at=at(2026, 11, 29), imported_by="finance")
        session.add(imported)
        session.flush()
        for key, booked, cents, line_status in [
            ("L1", date(2026, 11, 29), 1_000, LineStatus.QUEUED),
            ("L2", date(2026, 11, 25), 2_000, LineStatus.QUEUED),
            ("L3", date(2026, 11, 1), 3_000, LineStatus.QUEUED),
            ("L4", date(2026, 11, 1), 4_000, LineStatus.BOOKED),
        ]:
            session.add(
                StatementLine(entry_ref=key, import_id=imported.id or 0, account_iban="-", amount_cents=cents,
                              currency="EUR", credit=True, booking_date=booked, status=line_status)
            )  # fmt: skip
