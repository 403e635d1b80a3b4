"""Collections analytics (ledger/analytics.py) on 1,000,000 cases, SQLite and PostgreSQL.

The ledger is written in bulk (SQLite executemany, PostgreSQL COPY), not through workflows: one
register row per case over two years of openings, with what the queries join — about 2,000,000
outbox messages, 1,000,000 payments, 300,000 status changes, 100,000 handover tasks and attempts,
20,000 court applications with events, an open premium per open case, 2,000 queued bank lines.

Each query of the report is timed (median of 3) with the filters off and with plan + product +
period on. Baseline from the same run: one full scan of the register
(`SELECT count(*) FROM case_records WHERE claimed_cents >= 0`); every figure is also given as a
ratio to it. `run(url, label) -> dict` and `report_lines(results) -> list[str]` are what
dev/bench/run.py and report.py call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text
from sqlmodel import Session

from dev.bench.common import best_of, log
from ledger import analytics
from ledger.db import make_engine, migrate

CASES = 1_000_000
CONTRACTS = 200_000  # five cases per contract over the two years
AS_OF = date(2026, 11, 30)
FIRST_OPENING = datetime(2024, 12, 1, 8, tzinfo=UTC)
SPAN_SECONDS = 730 * 86_400
PLANS = ("de-follow-up", "de-follow-up-terminate")
PRODUCTS = ("Hausrat", "Kfz", "Leben")
STAGES = ("overdue", "reminded", "notice_sent", "suspended", "sms_sent", "agency")
END = datetime.combine(AS_OF + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
RUNS = 3


# --- bulk writing -------------------------------------------------------------------------------------


def _sqlite_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite format
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _bulk(engine: Engine, table: str, columns: Sequence[str], rows: Iterable[tuple[object, ...]]) -> int:
    """Write rows straight through the driver: executemany on SQLite, COPY on PostgreSQL."""
    count = 0
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        names = ", ".join(columns)
        if engine.dialect.name == "postgresql":
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        else:
            cursor.execute("BEGIN")
            marks = ", ".join("?" for _ in columns)
            batch: list[tuple[object, ...]] = []
            for row in rows:
                batch.append(tuple(_sqlite_value(v) for v in row))
                if len(batch) == 50_000:
                    cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", batch)
                    count += len(batch)
                    batch = []
            if batch:
                cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", batch)
                count += len(batch)
        raw.commit()
    finally:
        raw.close()
    return count


def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


class Case:
    """Case number i, everything about it derived from i (deterministic, no randomness)."""

    __slots__ = ("closed_at", "contract_id", "i", "opened_at", "outcome", "stage", "suspended", "terminated")

    def __init__(self, i: int, cases: int, contracts: int) -> None:
        self.i = i
        self.contract_id = i % contracts + 1
        self.opened_at = FIRST_OPENING + timedelta(seconds=(i * SPAN_SECONDS) // cases)
        lasts = timedelta(days=5 + (i * 7919) % 200, hours=i % 7)
        kind = i % 100
        closing = self.opened_at + lasts
        self.outcome: str | None
        if closing >= END or kind >= 80:
            self.outcome, self.closed_at = None, None
        elif kind < 73:
            self.outcome, self.closed_at = "paid", closing
        elif kind < 78:
            self.outcome, self.closed_at = "write_off", closing
        else:
            self.outcome, self.closed_at = "cancel", closing
        self.stage = STAGES[(i // 100) % len(STAGES)]
        self.suspended = STAGES.index(self.stage) >= 3
        self.terminated = kind in (70, 71, 72)  # paid after the cure month: the termination stands

    @property
    def case_id(self) -> str:
        return f"dunning-K-{self.contract_id}/{self.opened_at:%Y%m%dT%H%M%S}-{self.i}"

    @property
    def claimed(self) -> int:
        return 5_000 + (self.i % 50) * 1_000


def build(engine: Engine, cases: int = CASES, contracts: int = CONTRACTS) -> dict[str, int]:
    """The ledger the queries read (`cases` register rows on `contracts` contracts); the row counts
    written. Also the screenshot's data (tests/test_analytics_browser.py, a smaller book)."""
    counts: dict[str, int] = {}
    CONTRACTS = contracts  # noqa: N806 — the same name as the module's default, for the generators below

    def _cases() -> Iterator[Case]:
        for i in range(cases):
            yield Case(i, cases, contracts)

    counts["customers"] = _bulk(
        engine,
        "customers",
        (
            "id",
            "customer_number",
            "kind",
            "name",
            "street",
            "postal_code",
            "city",
            "state",
            "country",
            "language",
            "email_valid",
            "phone_valid",
        ),  # fmt: skip
        ((n, f"C-{n}", "CONSUMER", "-", "-", "-", "-", "-", "DE", "de", True, True) for n in range(1, CONTRACTS + 1)),
    )
    counts["contracts"] = _bulk(
        engine,
        "contracts",
        (
            "id",
            "contract_number",
            "customer_id",
            "product",
            "currency",
            "status",
            "payment_method",
            "credit_cents",
            "dunning_plan",
        ),  # fmt: skip
        (
            (n, f"K-{n}", n, PRODUCTS[n % 3], "EUR", "ACTIVE", "self_payment", 0, PLANS[1] if n % 5 == 0 else None)
            for n in range(1, CONTRACTS + 1)
        ),
    )

    def register() -> Iterator[tuple[object, ...]]:
        for c in _cases():
            status = None if c.outcome is None else ("terminated" if c.terminated else "active")
            paid_at = c.closed_at - timedelta(hours=1) if c.outcome == "paid" and c.closed_at else None
            yield (
                c.i + 1, c.case_id, c.contract_id, PLANS[1] if c.contract_id % 5 == 0 else PLANS[0], c.opened_at,
                c.claimed, c.closed_at, c.outcome, c.stage if c.outcome else None, paid_at, status, c.suspended,
            )  # fmt: skip

    counts["case_records"] = _bulk(
        engine,
        "case_records",
        (
            "id",
            "case_id",
            "contract_id",
            "plan_id",
            "opened_at",
            "claimed_cents",
            "closed_at",
            "outcome",
            "stage_at_close",
            "paid_at",
            "contract_status_at_close",
            "suspended",
        ),  # fmt: skip
        register(),
    )

    def payments() -> Iterator[tuple[object, ...]]:
        n = 0
        for c in _cases():
            if c.outcome == "paid" and c.closed_at:
                if c.i % 3 == 0 and c.closed_at - c.opened_at > timedelta(days=10):
                    n += 1
                    yield (n, f"R-{n}", c.contract_id, 1_000, c.opened_at + timedelta(days=10), "bank", 0, False)
                    rest = c.claimed - 1_000
                else:
                    rest = c.claimed
                n += 1
                yield (n, f"R-{n}", c.contract_id, rest, c.closed_at - timedelta(hours=1), "paylink", 0, False)

    counts["payments"] = _bulk(
        engine,
        "payments",
        ("id", "external_ref", "contract_id", "amount_cents", "received_at", "source", "credit_cents", "returned"),
        payments(),
    )

    def messages() -> Iterator[tuple[object, ...]]:
        n = 0
        for c in _cases():
            last = c.closed_at or END
            for kind, channel, after in (("reminder", "email", 1), ("qualified_notice", "letter", 15)):
                sent = c.opened_at + timedelta(days=after)
                if sent < last:
                    n += 1
                    yield (n, f"{c.case_id}:{kind}", c.case_id, channel, kind, "-", "", "-", "", "sent", sent, sent)
            if c.stage == "sms_sent" and c.opened_at + timedelta(days=35) < last:
                sent = c.opened_at + timedelta(days=35)
                n += 1
                yield (n, f"{c.case_id}:sms", c.case_id, "sms", "pay_link", "-", "", "-", "", "sent", sent, sent)

    counts["messages"] = _bulk(
        engine,
        "messages",
        (
            "id",
            "idempotency_key",
            "case_id",
            "channel",
            "kind",
            "recipient",
            "subject",
            "body_text",
            "body_html",
            "status",
            "created_at",
            "sent_at",
        ),  # fmt: skip
        messages(),
    )
    counts["contract_status_changes"] = _bulk(
        engine,
        "contract_status_changes",
        ("contract_id", "to_status", "effective_at", "reason", "idempotency_key", "case_id"),
        (
            (c.contract_id, "SUSPENDED", c.opened_at + timedelta(days=30), "-", f"{c.case_id}:suspend", c.case_id)
            for c in _cases()
            if c.suspended
        ),
    )

    def tasks() -> Iterator[tuple[object, ...]]:
        for c in _cases():
            if c.i % 10 == 0:
                created = c.opened_at + timedelta(days=40)
                yield (c.i // 10 + 1, f"{c.case_id}:handover", c.case_id, c.contract_id, f"A-{c.i % 50}", "handover",
                       "done" if c.outcome else "open", c.claimed, created, created + timedelta(hours=24),
                       "promise_to_pay" if c.i % 20 == 0 else None)  # fmt: skip

    counts["agent_tasks"] = _bulk(
        engine,
        "agent_tasks",
        (
            "id",
            "idempotency_key",
            "case_id",
            "contract_id",
            "agent_code",
            "kind",
            "status",
            "open_cents",
            "created_at",
            "due_at",
            "outcome",
        ),  # fmt: skip
        tasks(),
    )
    counts["contact_attempts"] = _bulk(
        engine,
        "contact_attempts",
        ("idempotency_key", "task_id", "case_id", "agent_code", "channel", "reached", "day", "at", "note"),
        (
            (
                f"{c.case_id}:call",
                c.i // 10 + 1,
                c.case_id,
                f"A-{c.i % 50}",
                "call",
                c.i % 40 == 0,
                (c.opened_at + timedelta(days=40, hours=3 + c.i % 30)).date(),
                c.opened_at + timedelta(days=40, hours=3 + c.i % 30),
                "",
            )  # fmt: skip
            for c in _cases()
            if c.i % 20 == 0
        ),
    )
    counts["court_applications"] = _bulk(
        engine,
        "court_applications",
        ("case_id", "contract_id", "status", "prepared_at"),
        ((c.case_id, c.contract_id, "filed", c.opened_at + timedelta(days=60)) for c in _cases() if c.i % 50 == 0),
    )
    counts["court_events"] = _bulk(
        engine,
        "court_events",
        ("idempotency_key", "case_id", "kind", "state_after", "reference", "note", "recorded_at"),
        (
            (f"{c.case_id}:court:{k}", c.case_id, state, state, "", "", c.opened_at + timedelta(days=70 + 10 * k))
            for c in _cases()
            if c.i % 50 == 0
            for k, state in enumerate(("issued", "served"))
        ),
    )
    counts["premiums"] = _bulk(
        engine,
        "premiums",
        (
            "external_id",
            "contract_id",
            "period_start",
            "period_end",
            "due_date",
            "amount_cents",
            "paid_cents",
            "status",
            "dunning_blocked",
        ),  # fmt: skip
        (
            (
                f"P-{c.i}",
                c.contract_id,
                c.opened_at.date(),
                c.opened_at.date(),
                c.opened_at.date() - timedelta(days=14),
                c.claimed,
                0,
                "OPEN",
                False,
            )  # fmt: skip
            for c in _cases()
            if c.outcome is None
        ),
    )
    counts["statement_imports"] = _bulk(
        engine,
        "statement_imports",
        ("id", "file_sha256", "imported_at", "imported_by", "lines", "booked", "queued", "ignored", "duplicates"),
        [(1, "bench", END - timedelta(days=1), "bench", 2_000, 0, 2_000, 0, 0)],
    )
    counts["statement_lines"] = _bulk(
        engine,
        "statement_lines",
        (
            "entry_ref",
            "import_id",
            "account_iban",
            "amount_cents",
            "currency",
            "credit",
            "reversal",
            "remittance",
            "status",
            "reason",
            "booking_date",
        ),  # fmt: skip
        (
            (f"L-{n}", 1, "-", 1_000 + n, "EUR", True, False, "", "QUEUED", "-", AS_OF - timedelta(days=n % 20))
            for n in range(2_000)
        ),
    )
    if engine.dialect.name == "postgresql":  # COPY with explicit ids leaves the sequences behind
        for table in ("customers", "contracts", "case_records", "payments", "messages", "agent_tasks",
                      "statement_imports"):  # fmt: skip
            with engine.begin() as conn:
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"))
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return counts


# --- timing -----------------------------------------------------------------------------------------


def _full_scan(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM case_records WHERE claimed_cents >= 0")).scalar_one())


def _queries(f: analytics.Filters) -> dict[str, Callable[[Session], object]]:
    return {
        "totals": lambda s: analytics.totals(s, f),
        "recovery_curve": lambda s: analytics.recovery_curve(s, f),
        "message_facts": lambda s: analytics.message_facts(s, f, 7),  # shared by the next two in the report
        "cure_by_stage": lambda s: analytics.cure_by_stage(s, f),
        "cure_by_channel": lambda s: analytics.cure_by_channel(s, f, 7),
        "kept_contracts": lambda s: analytics.kept_contracts(s, f, 25_000),
        "ageing": lambda s: analytics.ageing(s, f, PLANS[0]),
        "court_outcomes": lambda s: analytics.court_outcomes(s, f),
        "agent_sla": lambda s: analytics.agent_sla(s, f, END),
        "bank_backlog": lambda s: analytics.bank_backlog(s, f.as_of),
        "whole_report": lambda s: analytics.report(
            s, f, acquisition_cost_cents=25_000, default_plan=PLANS[0], cure_window_days=7, now=END
        ),
    }


def _time(engine: Engine, f: analytics.Filters) -> dict[str, float]:
    timings: dict[str, float] = {}
    for name, query in _queries(f).items():

        def once(query: Callable[[Session], object] = query) -> object:
            with Session(engine) as session:
                return query(session)

        seconds, _ = best_of(RUNS, once)
        timings[name] = round(seconds, 4)
    return timings


def run(url: str, label: str) -> dict[str, Any]:
    if url.startswith("postgresql"):
        _reset_postgres(url)
    migrate(url)
    engine = make_engine(url)
    try:
        log(f"analytics {label}: writing {CASES:,} cases and their facts")
        began = datetime.now(UTC)
        counts = build(engine)
        build_seconds = (datetime.now(UTC) - began).total_seconds()
        log(f"analytics {label}: written in {build_seconds:.0f} s: {counts}")
        out: dict[str, Any] = {"database": label, "rows": counts, "build_seconds": round(build_seconds, 1)}
        out.update(measure(engine, label))
        return out
    finally:
        engine.dispose()


def measure(engine: Engine, label: str) -> dict[str, Any]:
    """Time every query on a built ledger (also on its own: `python -m dev.bench.analytics URL LABEL --measure`)."""
    baseline, rows = best_of(RUNS, lambda: _full_scan(engine))
    unfiltered = _time(engine, analytics.Filters(as_of=AS_OF))
    filtered = _time(
        engine,
        analytics.Filters(
            as_of=AS_OF, plan=PLANS[0], product="Kfz", opened_from=date(2025, 6, 1), opened_to=date(2025, 12, 31)
        ),
    )
    with Session(engine) as session:
        check = analytics.totals(session, analytics.Filters(as_of=AS_OF))
    out: dict[str, Any] = {
        "cases": rows,
        "baseline_full_scan_seconds": round(baseline, 4),
        "unfiltered_seconds": unfiltered,
        "filtered_seconds": filtered,
        "ratio_to_full_scan": {k: round(v / baseline, 1) for k, v in unfiltered.items()},
        "filtered_ratio_to_full_scan": {k: round(v / baseline, 1) for k, v in filtered.items()},
        "check": {"cases": check.cases, "open": check.open, "paid": check.paid},
    }
    log(
        f"analytics {label}: full scan {baseline:.3f} s; whole report {unfiltered['whole_report']:.2f} s "
        f"({out['ratio_to_full_scan']['whole_report']}×), filtered {filtered['whole_report']:.2f} s"
    )
    return out


def report_lines(results: list[dict[str, Any]]) -> list[str]:
    """Markdown for docs/benchmarks.md: one table, a column pair per database."""
    if not results:
        return ["Not measured."]
    lines = [
        f"{CASES:,} cases (register rows) with about "
        + ", ".join(
            f"{results[0]['rows'].get(k, 0):,} {k.replace('_', ' ')}" for k in ("messages", "payments", "premiums")
        )
        + "; written in bulk (SQLite executemany, PostgreSQL COPY), not through workflows. Median of "
        f"{RUNS} runs. Baseline from the same run: one full scan of the register "
        "(`SELECT count(*) FROM case_records WHERE claimed_cents >= 0`). Filtered: plan + product + seven months "
        "of openings.",
        "",
        "| query | " + " | ".join(f"{r['database']} s (× scan) | filtered s (× scan)" for r in results) + " |",
        "|---|" + "---:|---:|" * len(results),
    ]
    for name in results[0]["unfiltered_seconds"]:
        cells = [
            f"{r['unfiltered_seconds'][name]:.3f} ({r['ratio_to_full_scan'][name]}×) | "
            f"{r['filtered_seconds'][name]:.3f} ({r['filtered_ratio_to_full_scan'][name]}×)"
            for r in results
        ]
        lines.append(f"| {name.replace('_', ' ')} | " + " | ".join(cells) + " |")
    lines.append(
        "| full scan (baseline) | " + " | ".join(f"{r['baseline_full_scan_seconds']:.3f} | " for r in results) + " |"
    )
    return lines


if __name__ == "__main__":  # python -m dev.bench.analytics [url label]
    import json
    import sys
    import tempfile

    target = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{tempfile.mkdtemp()}/analytics.sqlite3"
    name = sys.argv[2] if len(sys.argv) > 2 else "SQLite"
    if "--measure" in sys.argv:  # the ledger is there already: only the timings
        result = {"database": name, "rows": {}, **measure(make_engine(target), name)}
    else:
        result = run(target, name)
    print(json.dumps(result, indent=2))
    print("\n".join(report_lines([result])))
