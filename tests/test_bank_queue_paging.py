"""The manual bank queue pages and sorts, so a flood of lines cannot hide a real unmatched payment
(issue #12: 5,000 junk lines dated 0001-01-01 pushed real ones off the only page). Junk dates are
refused at import (tests/test_bad_input.py); lines with plausible old dates still cannot bury a new one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest_asyncio
from sqlalchemy import Engine

from infra.config import Settings
from ledger.inbound import Inbound
from tests.apps import BothApps
from tests.camt import Tx, entry, statement
from tests.providers_fakes import FakeTemporal, engine, migrated_ledger
from web.deps import AppContext

__all__ = ["engine", "migrated_ledger"]  # fixtures, imported for pytest
TODAY = datetime.now(UTC).date()
OLD = (TODAY - timedelta(days=9 * 365)).isoformat()
JUNK = 260


@pytest_asyncio.fixture
async def http(engine: Engine, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    temporal = cast(Any, FakeTemporal())
    app = BothApps(AppContext(engine, temporal, settings, Inbound(engine, temporal, settings)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        junk = [
            entry(Tx(f"0.{n % 90 + 10:02d}", ref=f"JUNK-{n}", booking=OLD, text=["junk-line"])) for n in range(JUNK)
        ]
        real = entry(Tx("250.00", ref="REAL-1", booking=TODAY.isoformat(), text=["Beitrag November"]))
        response = await client.post(
            "/api/bank/statements", content=statement(*junk, real), headers={"content-type": "application/xml"}
        )
        assert response.status_code == 200 and response.json()["queued"] == JUNK + 1, response.text
        yield client


async def queue(http: httpx.AsyncClient, query: str = "") -> tuple[list[dict[str, Any]], int]:
    response = await http.get(f"/api/bank/queue{query}")
    assert response.status_code == 200, response.text
    return response.json(), int(response.headers["X-Total-Count"])


async def test_the_newest_line_comes_first_and_the_total_counts_every_waiting_line(http: httpx.AsyncClient) -> None:
    lines, total = await queue(http)

    assert total == JUNK + 1
    assert len(lines) == 100  # one page
    assert lines[0]["entry_ref"] == "REAL-1"


async def test_every_line_is_reachable_page_by_page_in_each_order(http: httpx.AsyncClient) -> None:
    for order in ("newest", "oldest", "largest", "smallest", "imported"):
        seen: list[str] = []
        for offset in range(0, JUNK + 1, 100):
            page, _ = await queue(http, f"?order={order}&limit=100&offset={offset}")
            seen += [line["entry_ref"] for line in page]
        assert len(seen) == len(set(seen)) == JUNK + 1, order


async def test_sorting_by_amount_and_import_finds_the_real_line_on_top(http: httpx.AsyncClient) -> None:
    assert (await queue(http, "?order=largest&limit=1"))[0][0]["entry_ref"] == "REAL-1"
    assert (await queue(http, "?order=imported&limit=1"))[0][0]["entry_ref"] == "REAL-1"
    oldest, _ = await queue(http, "?order=oldest&limit=5")
    assert [line["booking_date"] for line in oldest] == [OLD] * 5
    smallest, _ = await queue(http, "?order=smallest&limit=3")
    assert [line["amount_cents"] for line in smallest] == [10, 10, 10]


async def test_a_page_outside_the_bounds_is_refused(http: httpx.AsyncClient) -> None:
    for query in ("?limit=0", "?limit=501", "?offset=-1", "?order=random", "?limit=ten"):
        response = await http.get(f"/api/bank/queue{query}")
        assert response.status_code == 422, (query, response.text)


async def test_the_staff_page_says_how_many_wait_and_links_the_next_page(http: httpx.AsyncClient) -> None:
    first = await http.get("/bank")
    assert first.status_code == 200
    assert f"of {JUNK + 1} waiting" in first.text and "offset=100" in first.text
    assert first.text.index("Beitrag November") < first.text.index("junk-line")

    last = await http.get("/bank?order=oldest&offset=200")
    assert "Lines 201–261" in last.text and "next page" not in last.text and "Beitrag November" in last.text
