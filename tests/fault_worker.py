"""A worker process for tests/test_faults.py: exactly worker.py's worker, configured from the
environment, with one optional fault for the test to exploit.

`FAULT_STALL_DIR=<dir>`: every message send of this process does its work (fee booked, messages
rendered and stored, committed) and then hangs before reporting back to Temporal, leaving a
marker file in <dir>. The test SIGKILLs the process then: the send is "in flight" for Temporal,
done in the ledger, and the retry on another worker must find it instead of sending again.

Run as `python -m tests.fault_worker` from the project root.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio import activity

from activities.messaging import Outbox
from infra import runtime
from infra.config import get_settings
from ledger.db import make_engine
from models.activities import SendMessage, SentMessage

STALL_DIR = os.environ.get("FAULT_STALL_DIR", "")


class StallingOutbox(Outbox):
    @activity.defn(name="send_message")
    def send_message(self, request: SendMessage) -> SentMessage:
        sent = super().send_message(request)
        marker = Path(STALL_DIR) / f"{os.getpid()}-{uuid.uuid4().hex}.stall"
        marker.write_text(request.key)
        time.sleep(3600)  # until SIGKILL
        return sent


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("weasyprint").setLevel(logging.WARNING)
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    settings = get_settings()
    engine = make_engine(settings.effective_database_url)  # the test migrated the ledger
    client = await runtime.connect(settings)
    if STALL_DIR:
        setattr(runtime, "Outbox", StallingOutbox)  # noqa: B010 (build_worker constructs runtime.Outbox)
    with ThreadPoolExecutor(max_workers=16) as executor:
        worker = runtime.build_worker(client, engine, settings, executor)
        logging.getLogger("fault_worker").info("worker %s polling %s", os.getpid(), settings.task_queue)
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
