"""Runs the dunning worker: workflows and activities on the `dunning` task queue.

Scale out by starting more of these, on any number of machines, against the same Temporal
cluster and database.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from config import get_settings
from ledger.db import make_engine, migrate
from runtime import build_worker, connect


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("weasyprint").setLevel(logging.WARNING)  # one INFO line per layout step otherwise
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    settings = get_settings()
    migrate(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    client = await connect(settings)
    with ThreadPoolExecutor(max_workers=16) as executor:
        worker = build_worker(client, engine, settings, executor)
        logging.getLogger("worker").info("worker started on task queue %s", settings.task_queue)
        await worker.run()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
