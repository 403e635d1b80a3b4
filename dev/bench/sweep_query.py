"""The sweep's query over a large premiums table, on SQLite and PostgreSQL.

Three measurements per database, each the full paging loop the sweep activity runs
(`service.overdue_premiums`, 500 rows a page, until empty):

1. 100,000 premium rows, ~1,000 of them overdue;
2. 1,000,000 rows, the same overdue rows (900,000 paid or not yet due added);
3. 1,000,000 rows, ~10× the overdue rows.

Baseline: one full scan of the premiums table (`SELECT count(*) … WHERE amount_cents >= 0`) at
1,000,000 rows — what any query costs that has to touch every row. The query plan (EXPLAIN) is
recorded as well.
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine, event, text
from sqlmodel import Session

from dev.bench.common import best_of, log
from ledger import service
from ledger.db import make_engine, migrate, session_scope
from models.ledger import Contract, Customer

AS_OF = date(2026, 11, 22)
CONTRACTS = 10_000
OVERDUE_STRIDE = 100  # at 100k rows: every 100th row overdue → 1,000


def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _seed_contracts(engine: Engine) -> None:
    with session_scope(engine) as session:
        customers = [
            Customer(customer_number=f"C-{i}", name="-", street="-", postal_code="-", city="-", state="-")
            for i in range(1, CONTRACTS + 1)
        ]
        session.add_all(customers)
        session.flush()
        session.add_all(
            [Contract(contract_number=f"K-{i}", customer_id=c.id or 0) for i, c in enumerate(customers, start=1)]
        )


def _rows(first: int, last: int, overdue: bool) -> Any:
    """Premium rows first..last (ids). In the first batch (`overdue`) every 100th row is open and
    past due and every 10th open but due after the sweep date (one upcoming premium per contract,
    as in a real book); everything else, and every row added later, is paid history."""
    for i in range(first, last + 1):
        contract_id = (i % CONTRACTS) + 1
        if overdue and i % OVERDUE_STRIDE == 0:
            due, status, paid = AS_OF - timedelta(days=10 + i % 50), "OPEN", 0
        elif overdue and i % 10 == 5:
            due, status, paid = AS_OF + timedelta(days=1 + i % 300), "OPEN", 0
        else:
            due, status, paid = AS_OF - timedelta(days=1 + i % 2000), "PAID", 5_000
        yield (i, f"P-{i}", contract_id, due, due + timedelta(days=30), due, 5_000, paid, status, False)


COLUMNS = (
    "id, external_id, contract_id, period_start, period_end, due_date, amount_cents, paid_cents, status, "
    "dunning_blocked"
)


def _insert(engine: Engine, first: int, last: int, overdue: bool) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            buffer = io.StringIO()
            for row in _rows(first, last, overdue):
                buffer.write("\t".join("f" if v is False else str(v) for v in row) + "\n")
            buffer.seek(0)
            with cursor.copy(f"COPY premiums ({COLUMNS}) FROM STDIN") as copy:
                while chunk := buffer.read(1 << 20):
                    copy.write(chunk)
        else:
            cursor.execute("BEGIN")
            cursor.executemany(
                f"INSERT INTO premiums ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(*r[:3], *(d.isoformat() for d in r[3:6]), *r[6:9], 0) for r in _rows(first, last, overdue)],
            )
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def _sweep(engine: Engine) -> int:
    """The sweep activity's loop, without the Temporal calls: page until empty."""
    seen, after = 0, 0
    with Session(engine) as session:
        while page := service.overdue_premiums(session, AS_OF, after, 500):
            seen += len(page)
            after = page[-1][0]
    return seen


def _full_scan(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM premiums WHERE amount_cents >= 0")).scalar_one())


def _explain(engine: Engine) -> list[str]:
    """The plan of the sweep's real statement (captured as the driver gets it), on page 2."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "FROM premiums JOIN contracts" in statement:
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as session:
            first = service.overdue_premiums(session, AS_OF, 0, 500)
            service.overdue_premiums(session, AS_OF, first[-1][0] if first else 0, 500)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = captured[-1]
    prefix = "EXPLAIN (ANALYZE, BUFFERS)" if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"{prefix} {statement}", parameters)
        rows = cursor.fetchall()
    finally:
        raw.close()
    return [str(row[-1]) for row in rows]


def run(url: str, label: str) -> dict[str, Any]:
    if url.startswith("postgresql"):
        _reset_postgres(url)
    migrate(url)
    engine = make_engine(url)
    try:
        _seed_contracts(engine)
        out: dict[str, Any] = {"database": label}
        log(f"{label}: inserting 100,000 premiums")
        _insert(engine, 1, 100_000, overdue=True)
        small, seen_small = best_of(5, lambda: _sweep(engine))
        log(f"{label}: inserting 900,000 more premiums (none overdue)")
        _insert(engine, 100_001, 1_000_000, overdue=False)
        large, seen_large = best_of(5, lambda: _sweep(engine))
        baseline, total = best_of(3, lambda: _full_scan(engine))
        plan = _explain(engine)
        with engine.begin() as conn:  # ten times the overdue rows, spread over the whole table
            conn.execute(
                text(
                    "UPDATE premiums SET status = 'OPEN', paid_cents = 0, due_date = :due "
                    "WHERE id % 100 = 7 AND status = 'PAID'"
                ),
                {"due": AS_OF - timedelta(days=20)},
            )
            conn.execute(text("ANALYZE"))
        more, seen_more = best_of(5, lambda: _sweep(engine))
        out.update(
            rows=total,
            runs=[
                {"rows": 100_000, "overdue": seen_small, "seconds": round(small, 4)},
                {"rows": total, "overdue": seen_large, "seconds": round(large, 4)},
                {"rows": total, "overdue": seen_more, "seconds": round(more, 4)},
            ],
            baseline_full_scan_seconds=round(baseline, 4),
            explain=plan,
            goal_seconds=1.0,
        )
        out["ratio_to_full_scan"] = round(max(large, more) / baseline, 3)
        out["met"] = max(small, large, more) <= 1.0
        log(f"{label}: {out['runs']} full scan {baseline:.3f}s")
        return out
    finally:
        engine.dispose()
