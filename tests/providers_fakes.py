"""Shared pieces of the provider tests: the local fake APIs (dev/fakes/server.py), settings that point
the real SDK adapters at them, and a recorder standing in for the Temporal client."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from dev.fakes.server import FakeProviders, environment, start
from infra.config import Settings
from ledger.db import make_engine, migrate
from models.activities import SendMessage
from models.messages import Channel, MessageKind

CONTRACT = "K-100001"
CASE_ID = f"dunning-{CONTRACT}/20261101T060000"
TODAY = date.today()
# Two overdue premiums: 120,00 € + 50,50 € = 170,50 € open.
PREMIUMS = [("P-1", TODAY - timedelta(days=40), 12_000), ("P-2", TODAY - timedelta(days=10), 5_050)]
PERSONAL_DATA = ["Erika", "Mustermann", "Heidestraße", "51147", "Köln", "erika@example.org", "+4915112345678"]


@pytest.fixture(scope="session")
def migrated_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite ledger per session; each test gets a copy (migrating is the slow part)."""
    path = tmp_path_factory.mktemp("ledger-template") / "ledger.sqlite3"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def engine(migrated_ledger: Path, tmp_path: Path) -> Iterator[Engine]:
    """Overrides conftest's `engine` in the provider tests: a fresh copy of the migrated ledger."""
    for suffix in ("", "-wal", "-shm"):
        source = migrated_ledger.with_name(migrated_ledger.name + suffix)
        if source.exists():
            shutil.copy(source, tmp_path / source.name)
    engine = make_engine(f"sqlite:///{tmp_path / migrated_ledger.name}")
    yield engine
    engine.dispose()


@pytest.fixture
def fake() -> Iterator[FakeProviders]:
    state = FakeProviders()
    server, _ = start(state)
    yield state
    server.shutdown()
    server.server_close()


def provider_settings(settings: Settings, fake: FakeProviders, **overrides: Any) -> Settings:
    """The test settings with every real provider switched on, pointed at the fakes."""
    values: dict[str, Any] = {key.lower(): value for key, value in environment(fake.base_url).items()}
    values.update(public_base_url="http://testserver", **overrides)
    return settings.model_copy(update=values)


def send_request(kind: MessageKind, channels: list[Channel], step: str, **extra: Any) -> SendMessage:
    return SendMessage(
        case_id=CASE_ID,
        contract_number=CONTRACT,
        key=f"{CASE_ID}:{step}",
        kind=kind,
        channels=channels,
        now=datetime.now(UTC),
        as_of=TODAY,
        **extra,
    )


# --- a recorder standing in for the Temporal client ------------------------------------------


@dataclass
class Started:
    workflow: Any
    arg: Any
    id: str
    kwargs: dict[str, Any]


@dataclass
class FakeHandle:
    id: str
    signals: list[tuple[str, str, Any]]

    async def signal(self, signal: Any, arg: Any = None, **_: Any) -> None:
        self.signals.append((self.id, getattr(signal, "__name__", str(signal)), arg))


@dataclass
class FakeTemporal:
    started: list[Started] = field(default_factory=list)
    signals: list[tuple[str, str, Any]] = field(default_factory=list)

    def get_workflow_handle(self, workflow_id: str, **_: Any) -> FakeHandle:
        return FakeHandle(workflow_id, self.signals)

    async def start_workflow(self, workflow: Any, arg: Any, *, id: str, **kwargs: Any) -> FakeHandle:
        from temporalio.common import WorkflowIDReusePolicy
        from temporalio.exceptions import WorkflowAlreadyStartedError

        if kwargs.get("id_reuse_policy") == WorkflowIDReusePolicy.REJECT_DUPLICATE and any(
            s.id == id for s in self.started
        ):
            raise WorkflowAlreadyStartedError(id, "workflow")
        self.started.append(Started(workflow, arg, id, kwargs))
        return FakeHandle(id, self.signals)
