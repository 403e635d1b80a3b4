"""Small helpers shared by the benchmarks: timing, percentiles, the servers' paths."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

BIN = Path(sys.executable).parent
DEV_SERVER = BIN / "temporal"
TEST_SERVER = BIN / "temporal-test-server"
ROOT = Path(__file__).resolve().parent.parent.parent
T = TypeVar("T")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty list."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def best_of(runs: int, work: Callable[[], T]) -> tuple[float, T]:
    """Median wall time in seconds of `runs` calls, and the last result."""
    times: list[float] = []
    result: T | None = None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    assert result is not None
    return statistics.median(times), result


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)
