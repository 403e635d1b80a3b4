"""ENVIRONMENT=production refuses to start while anything is unsafe, naming every problem at once
(issue #12, "no unsafe defaults"); a correct production configuration starts. Every entry point reads
its settings through config.get_settings(), so every process refuses the same way, before it writes
anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import cast

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from sqlmodel import select
from temporalio.client import Client

from infra import config
from infra.config import GENERATED_SECRETS, SECRETS_FILE, Settings, UnsafeProduction, production_problems
from infra.crypto.codec import new_key
from ledger.db import make_engine, migrate, session_scope
from ledger.inbound import Inbound
from models.ledger import Contract
from tests.apps import TEST_STAFF, signed_in_as
from web.app import create_internal_app
from web.deps import AppContext

ROOT = Path(__file__).resolve().parent.parent

# One correct production configuration, as environment variables (what an operator sets).
GOOD_ENV = {
    "ENVIRONMENT": "production",
    "DATABASE_URL": "postgresql://dunning:pw@db.internal:5432/dunning",
    "LINK_SECRET": "l" * 40,
    "CAMPAIGN_EVENTS_SECRET": "c" * 40,
    "OIDC_STATE_SECRET": "o" * 40,
    "CSRF_SECRET": "x" * 40,
    "PAYMENT_PROVIDER": "stripe",
    "STRIPE_API_KEY": "sk_live_example",
    "STRIPE_WEBHOOK_SECRET": "whsec_example",
    "PAYLOAD_KEYS": f'{{"2026-11": "{new_key()}"}}',
    "OIDC_ISSUER": "https://id.example.com/realms/insurer",
    "OIDC_CLIENT_ID": "dunning",
    "PUBLIC_BASE_URL": "https://pay.example.com",
    "INTERNAL_BASE_URL": "https://dunning.internal.example.com",
    "TEMPORAL_UI_URL": "https://temporal.internal.example.com",
}


def good_settings(tmp_path: Path, **changes: object) -> Settings:
    """The good configuration as Settings, with `changes` applied (pydantic field names)."""
    values: dict[str, object] = {k.lower(): v for k, v in GOOD_ENV.items() if k != "PAYLOAD_KEYS"}
    values["payload_keys"] = {"2026-11": SecretStr(new_key())}
    values.update(changes, data_dir=tmp_path / "data")
    return Settings.model_validate(values)  # validated like the environment, but nothing read from it


@pytest.fixture(autouse=True)
def no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test process' own environment must not leak into these settings."""
    for name in list(os.environ):
        if name.upper() in Settings.model_fields or name.lower() in Settings.model_fields:
            monkeypatch.delenv(name)


def test_a_correct_production_configuration_has_no_problems_and_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert production_problems(good_settings(tmp_path)) == []

    for name, value in {**GOOD_ENV, "DATA_DIR": str(tmp_path / "data")}.items():
        monkeypatch.setenv(name, value)
    config.get_settings.cache_clear()
    try:
        settings = config.get_settings()
    finally:
        config.get_settings.cache_clear()
    assert settings.environment == "production" and settings.link_secret == "l" * 40
    assert not (tmp_path / "data" / SECRETS_FILE).exists()  # production generates nothing
    assert settings.codec_token.get_secret_value() == ""  # optional there: off unless set


# Each change to the good configuration makes exactly one problem, named with its setting.
ONE_PROBLEM = {
    "link secret missing": ({"link_secret": ""}, "LINK_SECRET is not set"),
    "campaign secret missing": ({"campaign_events_secret": ""}, "CAMPAIGN_EVENTS_SECRET is not set"),
    "csrf secret missing": ({"csrf_secret": ""}, "CSRF_SECRET is not set"),
    "oidc state secret missing": ({"oidc_state_secret": ""}, "OIDC_STATE_SECRET is not set"),
    "testpay": (
        {"payment_provider": "testpay", "testpay_webhook_secret": "t" * 40},
        "PAYMENT_PROVIDER=testpay",
    ),
    "demo plan as default": ({"default_plan": "demo-fast"}, "DEFAULT_PLAN=demo-fast is a demo plan"),
    "no payload keys": ({"payload_keys": {}}, "PAYLOAD_KEYS is empty"),
    "no codec authentication (no OIDC)": ({"oidc_issuer": "", "oidc_client_id": ""}, "OIDC_ISSUER is empty"),
    "oidc issuer over http": ({"oidc_issuer": "http://id.example.com"}, "OIDC_ISSUER=http://id.example.com must be"),
    "oidc without client": ({"oidc_client_id": ""}, "OIDC_CLIENT_ID is empty"),
    "http public url": ({"public_base_url": "http://pay.example.com"}, "PUBLIC_BASE_URL=http://pay.example.com"),
    "http internal url": ({"internal_base_url": "http://10.0.0.5:8001"}, "INTERNAL_BASE_URL=http://10.0.0.5:8001"),
    "unauthenticated temporal ui": (
        {"temporal_ui_url": "http://temporal.internal:8080"},
        "TEMPORAL_UI_URL=http://temporal.internal:8080 is neither loopback nor https",
    ),
    "sqlite ledger": ({"database_url": ""}, "DATABASE_URL is not PostgreSQL"),
    "sqlite ledger given explicitly": ({"database_url": "sqlite:////srv/ledger.db"}, "DATABASE_URL is not PostgreSQL"),
}


@pytest.mark.parametrize("change,expected", ONE_PROBLEM.values(), ids=ONE_PROBLEM.keys())
def test_each_unsafe_production_setting_is_named(tmp_path: Path, change: dict[str, object], expected: str) -> None:
    problems = production_problems(good_settings(tmp_path, **change))

    assert len(problems) == 1 and problems[0].startswith(expected), problems
    with pytest.raises(UnsafeProduction, match="ENVIRONMENT=production refuses to start") as refused:
        config.refuse_unsafe_production(good_settings(tmp_path, **change))
    assert expected in str(refused.value)


def test_testpay_with_its_secret_missing_names_both() -> None:
    settings = Settings(_env_file=None, environment="production", payment_provider="testpay")
    problems = "\n".join(production_problems(settings))
    assert "PAYMENT_PROVIDER=testpay" in problems and "TESTPAY_WEBHOOK_SECRET is not set" in problems


def test_loopback_staff_and_temporal_ui_urls_are_not_problems(tmp_path: Path) -> None:
    """A UI or internal app reached only on the machine itself (e.g. through an SSH tunnel) is not exposed."""
    settings = good_settings(
        tmp_path, internal_base_url="http://127.0.0.1:8001", temporal_ui_url="http://localhost:8233"
    )
    assert production_problems(settings) == []


# What the refusal of an empty production configuration must name, all in one message.
EVERY_PROBLEM = [
    *(f"{name.upper()} is not set" for name in GENERATED_SECRETS if name != "codec_token"),
    "PAYMENT_PROVIDER=testpay",
    "PAYLOAD_KEYS is empty",
    "OIDC_ISSUER is empty",
    "PUBLIC_BASE_URL=http://127.0.0.1:8000 must be https",
    "DATABASE_URL is not PostgreSQL",
]


def test_all_problems_are_named_together(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        environment="production",
        data_dir=tmp_path,
        default_plan="demo",
        internal_base_url="http://10.1.2.3:8001",
        temporal_ui_url="http://10.1.2.3:8233",
    )
    with pytest.raises(UnsafeProduction) as refused:
        config.refuse_unsafe_production(settings)

    message = str(refused.value)
    expected = [*EVERY_PROBLEM, "DEFAULT_PLAN=demo is a demo plan", "INTERNAL_BASE_URL=", "TEMPORAL_UI_URL="]
    assert [e for e in expected if e not in message] == []
    assert f"({len(expected)} problems;" in message
    assert list(tmp_path.iterdir()) == []  # nothing generated, nothing written


def production_run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env.update({"ENVIRONMENT": "production", "DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)})
    return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


ENTRY_POINTS = {
    "worker": ["worker.py"],
    "worker processes": ["worker.py", "--processes", "2"],
    "starter CLI": ["starter.py", "status", "K-1001"],
    "bank CLI": ["starter.py", "bank", "queue"],
    "make run": ["dev/stack.py"],
}


@pytest.mark.parametrize("args", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_every_entry_point_refuses_an_unsafe_production_start_naming_every_problem(
    tmp_path: Path, args: list[str]
) -> None:
    done = production_run([str(ROOT / args[0]), *args[1:]], tmp_path)

    assert done.returncode != 0
    output = done.stdout + done.stderr
    if args[0] == "dev/stack.py":  # the embedded default never runs in production, however configured
        assert "make run is the embedded default" in output
    else:
        assert "ENVIRONMENT=production refuses to start" in output
        assert [p for p in EVERY_PROBLEM if p not in output] == []
    assert not (tmp_path / "data").exists()  # no secret generated, no ledger created, no log written


def test_the_web_apps_refuse_an_unsafe_production_start(tmp_path: Path) -> None:
    """The web apps read their settings at start-up (lifespan): the server stops before it serves."""
    code = (
        "import asyncio, web.app as a\n"
        "async def main():\n"
        "    async with a.internal_app.router.lifespan_context(a.internal_app):\n"
        "        pass\n"
        "asyncio.run(main())\n"
    )
    done = production_run(["-c", code], tmp_path)

    assert done.returncode != 0
    assert "ENVIRONMENT=production refuses to start" in done.stderr
    assert not (tmp_path / "data").exists()


def test_development_needs_none_of_it(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    config.refuse_unsafe_production(settings)  # development: no refusal
    assert len(settings.codec_token.get_secret_value()) >= 32  # generated per installation, like the others
    assert "demo" in settings.selectable_plan_ids()


def test_demo_plans_are_not_selectable_in_production(tmp_path: Path) -> None:
    plans = good_settings(tmp_path).selectable_plan_ids()
    assert "de-follow-up" in plans and "demo" not in plans and "demo-fast" not in plans


def test_an_unknown_default_plan_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="DEFAULT_PLAN must be one of .*got 'de-folow-up'"):
        Settings(_env_file=None, data_dir=tmp_path, default_plan="de-folow-up")


def test_a_refused_setting_never_echoes_secret_values(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, data_dir=tmp_path, link_secret="a-secret-value-123", payment_provider="stripe")
    assert "STRIPE_API_KEY" in str(refused.value) and "a-secret" not in str(refused.value)


async def test_in_production_the_api_neither_offers_nor_accepts_demo_plans(tmp_path: Path) -> None:
    settings = good_settings(tmp_path)
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")  # the checks need no PostgreSQL
    migrate(str(engine.url))
    ctx = AppContext(engine, cast(Client, None), settings, cast(Inbound, None))
    app = create_internal_app(ctx)
    app.state.ctx = ctx
    signed_in_as(app, TEST_STAFF)
    customer = {"customer_number": "C-P1", "name": "Erika Mustermann", "email": "erika@example.org"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://internal.test") as http:
        offered = await http.get("/api/plans")
        refused = await http.put("/api/contracts/K-P1", json={"customer": customer, "dunning_plan": "demo-fast"})
        accepted = await http.put("/api/contracts/K-P2", json={"customer": customer, "dunning_plan": "de-follow-up"})

    assert offered.status_code == 200 and "de-follow-up" in offered.json()
    assert not [p for p in offered.json() if p.startswith("demo")]
    assert refused.status_code == 422 and "demo-fast" in refused.json()["detail"]
    assert accepted.status_code == 200
    with session_scope(engine) as session:
        assert [c.contract_number for c in session.exec(select(Contract)).all()] == ["K-P2"]  # nothing else written
