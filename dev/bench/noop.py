"""The baseline workflow: does nothing, so its start and replay cost only what Temporal costs."""

from __future__ import annotations

from temporalio import workflow


@workflow.defn(name="BenchNoop")
class BenchNoop:
    @workflow.run
    async def run(self) -> None:
        return None
