"""`starter.py staff …` and `starter.py api-client …` (issue #12): secrets printed once and stored
hashed, bad input named with exit 2, disabling or resetting ends sessions, every change audited."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import select
from typer.testing import CliRunner

from infra import config
from ledger.db import session_scope
from models.auth import ApiClient, AuditEvent, StaffAccount, StaffSession
from starter import app
from web.auth import accounts

runner = CliRunner()


@pytest.fixture
def env(engine: Engine, tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    config.get_settings.cache_clear()
    yield {
        "DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "DATA_DIR": str(tmp_path),
        "CLI_IDENTITY": "admin@ops",
        "COLUMNS": "200",
    }
    config.get_settings.cache_clear()


def invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    config.get_settings.cache_clear()
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_staff_add_prints_a_one_time_password_that_signs_in_and_is_stored_only_hashed(
    engine: Engine, env: dict[str, str]
) -> None:
    code, out = invoke(env, "staff", "add", "mia", "--role", "clerk", "--role", "viewer")
    assert code == 0, out
    password = re.search(r"one-time password: (\S+)", out)
    assert password is not None
    with session_scope(engine) as session:
        account = session.exec(select(StaffAccount)).one()
        assert account.roles == "clerk,viewer" and account.created_by == "admin@ops"
        stored = account.password_hash or ""
        assert password.group(1) not in stored and stored.startswith("$argon2id$")
        assert accounts.verify_password(session, "mia", password.group(1)) is not None
        assert accounts.verify_password(session, "mia", "guess") is None
        trail = list(session.exec(select(AuditEvent)))
    assert [(e.actor, e.action, e.detail) for e in trail] == [
        ("admin@ops", "starter.py staff add", {"account": "mia", "roles": "clerk,viewer"})
    ]


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["staff", "add", "mia", "--role", "boss"], ["boss"]),
        (["staff", "add", "Mia Müller", "--role", "clerk"], ["lower-case"]),
        (["staff", "add", "a7", "--role", "agent"], ["--agent-code"]),
        (["staff", "add", "mia", "--role", "clerk", "--agent-code", "A-7"], ["only for role agent"]),
        (["api-client", "create", "billing", "--scope", "ledger:everything"], ["ledger:everything"]),
        (["staff", "disable", "nobody"], ["no account 'nobody'"]),
        (["api-client", "revoke", "nobody"], ["no API client 'nobody'"]),
    ],
)
def test_bad_input_is_named_and_nothing_is_written(
    engine: Engine, env: dict[str, str], args: list[str], mentions: list[str]
) -> None:
    code, out = invoke(env, *args)
    assert code == 2, out
    assert all(m in out for m in mentions), out
    with session_scope(engine) as session:
        assert session.exec(select(StaffAccount)).first() is None
        assert session.exec(select(ApiClient)).first() is None
        assert session.exec(select(AuditEvent)).first() is None


def test_disable_and_reset_end_the_persons_sessions_and_a_revoked_client_key_stops_working(
    engine: Engine, env: dict[str, str]
) -> None:
    assert invoke(env, "staff", "add", "mia", "--role", "clerk")[0] == 0
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        for n in range(2):
            session.add(
                StaffSession(
                    id_hash=f"h{n}",
                    name="mia",
                    roles="clerk",
                    source="local",
                    subject="1",
                    created_at=now,
                    expires_at=now + timedelta(hours=1),
                )
            )
    code, out = invoke(env, "staff", "disable", "mia")
    assert code == 0 and "2 session(s) ended" in out
    with session_scope(engine) as session:
        assert all(s.revoked_at is not None for s in session.exec(select(StaffSession)))
        assert session.exec(select(StaffAccount)).one().disabled_at is not None
    code, out = invoke(env, "staff", "reset-password", "mia")
    assert code == 0 and "new one-time password" in out

    code, out = invoke(env, "api-client", "create", "billing", "--scope", "ledger:write")
    assert code == 0, out
    key = re.search(r"key \(shown once\): (\S+)", out)
    assert key is not None
    with session_scope(engine) as session:
        assert accounts.client_for_credential(session, key.group(1)) is not None
        assert key.group(1).split(".", 1)[1] not in session.exec(select(ApiClient)).one().secret_hash
    assert invoke(env, "api-client", "revoke", "billing")[0] == 0
    with session_scope(engine) as session:
        assert accounts.client_for_credential(session, key.group(1)) is None
    listing = invoke(env, "api-client", "list")[1]
    assert "billing" in listing and "revoked" in listing and key.group(1).split(".", 1)[1] not in listing
