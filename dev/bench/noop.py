"""The baseline workflows: one does nothing, so its start and replay cost only what Temporal costs;
the other replays the shape of a real case (its activities, timers and signal waits) and nothing else."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow

from workflows.common import ACTIVITY_TIMEOUT, RETRY


@workflow.defn(name="BenchNoop")
class BenchNoop:
    @workflow.run
    async def run(self) -> None:
        return None


@dataclass(frozen=True)
class ScriptStep:
    """One step a real case's history took: an activity (or local activity), a timer that fired, or a
    timer that a signal cancelled ("wait": until `signals` signals have come, at most `seconds`). An
    activity waits for the `signals` the real case had seen when it scheduled it (a receipt follows its
    payment). `mark` names an activity the benchmark's driver watches for (the no-op activity writes it)."""

    kind: str  # "activity" | "local_activity" | "timer" | "wait"
    seconds: float = 0.0
    signals: int = 0
    mark: str = ""


@dataclass(frozen=True)
class Script:
    steps: list[ScriptStep] = field(default_factory=list)
    answers: bool = False  # each payment's sender also waits for an update's answer, as in the real case


STEP_ACTIVITY = "bench_step"  # the no-op activity (dev/bench/throughput.py registers it)


@workflow.defn(name="BenchScript")
class BenchScript:
    """The same activities, timers and signal waits as a real case, in the same order, and nothing
    else: the end-to-end throughput benchmark's baseline (dev/bench/throughput.py)."""

    def __init__(self) -> None:
        self.signals = 0

    @workflow.run
    async def run(self, script: Script) -> None:
        for step in script.steps:
            if step.kind in ("activity", "local_activity") and self.signals < step.signals:
                await workflow.wait_condition(functools.partial(self._reached, step.signals))
            if step.kind == "activity":
                await workflow.execute_activity(
                    STEP_ACTIVITY, step.mark, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY
                )
            elif step.kind == "local_activity":
                await workflow.execute_local_activity(
                    STEP_ACTIVITY, step.mark, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY
                )
            elif step.kind == "timer":
                await workflow.sleep(step.seconds)
            elif step.kind == "wait":
                try:
                    await workflow.wait_condition(
                        functools.partial(self._reached, step.signals), timeout=timedelta(seconds=step.seconds)
                    )
                except TimeoutError:
                    pass
            else:
                raise ValueError(f"unknown script step {step.kind!r}")

    def _reached(self, signals: int) -> bool:
        return self.signals >= signals

    @workflow.signal(name="event")
    def event(self) -> None:
        self.signals += 1

    @workflow.update(name="answer")
    def answer(self) -> int:
        return self.signals
