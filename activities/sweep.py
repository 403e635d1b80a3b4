"""The sweep's one activity: page through overdue premiums and start or join their cases."""

from __future__ import annotations

import asyncio
from datetime import date

from sqlalchemy import Engine
from temporalio import activity
from temporalio.client import Client

from ledger import service
from ledger.db import session_scope
from models.activities import SweepRequest, SweepResult
from models.case import PremiumOverdue
from workflows.client import start_or_join_case

PAGE = 500
CONCURRENT = 16  # signal-with-starts in flight at once (issue #15 P1: the sweep near the raw start loop)


class SweepActivities:
    def __init__(self, engine: Engine, client: Client, task_queue: str, default_plan: str) -> None:
        self.engine = engine
        self.client = client
        self.task_queue = task_queue
        self.default_plan = default_plan

    @activity.defn
    async def start_overdue_cases(self, request: SweepRequest) -> SweepResult:
        as_of = request.as_of or date.today()
        # Resume after the last page a previous attempt finished (heartbeat details).
        details = activity.info().heartbeat_details
        after_id, seen, signalled = (int(details[0]), int(details[1]), int(details[2])) if details else (0, 0, 0)
        gate = asyncio.Semaphore(CONCURRENT)
        while True:
            page = await self._page(as_of, after_id)
            if not page:
                break
            # A page's contracts are signalled CONCURRENT at a time (each signal-with-start is one round
            # trip to the server, and a case ignores a premium it holds already, so repeats do not
            # matter); one contract's premiums one after another, so two starts of the same case never
            # race. The page counts as done, and is heartbeated, only when all of them are.
            by_contract: dict[str, list[tuple[str, str | None]]] = {}
            for _, number, premium, plan in page:
                by_contract.setdefault(number, []).append((premium, plan))
            await asyncio.gather(*(self._join(gate, number, premiums) for number, premiums in by_contract.items()))
            signalled += len(page)
            after_id = page[-1][0]
            seen += len(page)
            activity.heartbeat(after_id, seen, signalled)
        return SweepResult(as_of=as_of, premiums_seen=seen, cases_signalled=signalled)

    async def _join(
        self, gate: asyncio.Semaphore, contract_number: str, premiums: list[tuple[str, str | None]]
    ) -> None:
        async with gate:
            for premium_id, plan in premiums:
                await start_or_join_case(
                    self.client,
                    self.task_queue,
                    contract_number,
                    PremiumOverdue(premium_id=premium_id),
                    plan or self.default_plan,
                )

    async def _page(self, as_of: date, after_id: int) -> list[tuple[int, str, str, str | None]]:
        def read() -> list[tuple[int, str, str, str | None]]:
            with session_scope(self.engine) as session:
                return service.overdue_premiums(session, as_of, after_id, PAGE)

        return await asyncio.to_thread(read)
