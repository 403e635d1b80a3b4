"""Timeouts and retries every workflow of the engine uses for its activities (one place to tune)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

ACTIVITY_TIMEOUT = timedelta(minutes=2)
# Retry until it works, backing off to 5 minutes: activities are idempotent, and bad input is raised
# as a non-retryable ApplicationError that stops the retries at once.
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))
