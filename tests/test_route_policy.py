"""Every URL has exactly one owner and one policy (issue #12, item 4): the routes of the public,
internal and metrics apps and of every feature router are enumerated and held against the one
table in web/auth/policy.py; the other apps answer 404 for a URL they do not own (real requests)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import Engine
from temporalio.client import Client

import web.app
from infra.config import Settings
from ledger.inbound import Inbound
from web.app import ROUTERS, create_internal_app, create_metrics_app, create_public_app
from web.auth import policy
from web.auth.policy import POLICIES
from web.deps import AppContext

Key = tuple[str, str]  # (method, path template)


def route_keys(routes: list[object]) -> set[Key]:
    """(method, path) of every route, as the router sees them (HEAD counts as GET, as in the policy)."""
    keys: set[Key] = set()
    for route in iter_route_contexts(routes):  # type: ignore[arg-type]
        assert route.path and route.methods, f"a route without path or methods: {route!r}"
        keys |= {("GET" if method == "HEAD" else method, route.path) for method in route.methods}
    return keys


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> dict[policy.App, FastAPI]:
    """The three apps as `make run` builds them. Only 404s and the table are asked of them here, so
    no ledger or Temporal client is needed (a handler reached by mistake fails loudly)."""
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("route-policy")), public_base_url="http://test.invalid")
    ctx = AppContext(cast(Engine, None), cast(Client, None), settings, cast(Inbound, None))
    built: dict[policy.App, FastAPI] = {
        "public": create_public_app(ctx),
        "internal": create_internal_app(ctx),
        "metrics": create_metrics_app(ctx),
    }
    for app in built.values():
        app.state.ctx = ctx
    return built


def served(apps: dict[policy.App, FastAPI]) -> dict[policy.App, set[Key]]:
    return {name: route_keys(list(app.routes)) for name, app in apps.items()}


def feature_routes() -> Iterator[tuple[str, Key]]:
    for router in [*ROUTERS, web.app.prometheus_metrics.router]:
        for key in route_keys(list(router.routes)):
            yield str(router.tags[0]) if router.tags else router.prefix or "router", key


def test_every_route_of_every_feature_router_has_a_policy() -> None:
    missing = sorted(
        f"{method} {path} ({owner})" for owner, (method, path) in feature_routes() if (method, path) not in POLICIES
    )

    assert missing == [], f"routes without an entry in web/auth/policy.py POLICIES: {missing}"


def test_every_route_an_app_serves_has_a_policy_naming_that_app(apps: dict[policy.App, FastAPI]) -> None:
    wrong = [
        f"{method} {path} served by the {app} app, policy says {owner}"
        for app, keys in served(apps).items()
        for method, path in sorted(keys)
        if (owner := POLICIES[(method, path)].app if (method, path) in POLICIES else "nothing") != app
    ]

    assert wrong == []


def test_no_policy_entry_is_stale(apps: dict[policy.App, FastAPI]) -> None:
    """An entry that no app serves under the app it names is a leftover (or a route not wired in)."""
    by_app = served(apps)
    stale = sorted(
        f"{method} {path} ({entry.app})"
        for (method, path), entry in POLICIES.items()
        if (method, path) not in by_app[entry.app]
    )

    assert stale == [], f"POLICIES entries no app serves: {stale}"


def test_no_url_is_served_by_two_apps(apps: dict[policy.App, FastAPI]) -> None:
    paths = {app: {path for _, path in keys} for app, keys in served(apps).items()}
    shared = {(a, b): sorted(paths[a] & paths[b]) for a in paths for b in paths if a < b and paths[a] & paths[b]}

    assert shared == {}, f"URLs with more than one owner: {shared}"


def concrete(path: str) -> str:
    """A URL for a path template: every parameter a plausible value (a number parses as either)."""
    return re.sub(r"\{[^}]+\}", "1", path)


async def answers(app: FastAPI, method: str, path: str) -> int:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        # JSON, so the CSRF check (which refuses a form post to an unknown path with 403) stays out of it:
        # the question is only whether the URL is there.
        answer = await http.request(method, concrete(path), json={} if method in ("POST", "PUT") else None)
        return answer.status_code


async def test_a_url_answers_404_on_every_app_that_does_not_own_it(apps: dict[policy.App, FastAPI]) -> None:
    wrong: list[str] = []
    for (method, path), entry in sorted(POLICIES.items()):
        for name, app in apps.items():
            if name == entry.app:
                continue
            status = await answers(app, method, path)
            if status != 404:
                wrong.append(f"{method} {concrete(path)} ({entry.app}) answered {status} on the {name} app")

    assert wrong == []


async def test_internal_pages_and_the_api_are_not_on_the_public_app(apps: dict[policy.App, FastAPI]) -> None:
    """The attacks of issue #12, by hand: the public app has none of them."""
    public = apps["public"]
    for method, path in [
        ("POST", "/api/ledger/events"),
        ("PUT", "/api/contracts/K-1"),
        ("POST", "/api/messages/1/evidence"),
        ("POST", "/api/bank/statements"),
        ("POST", "/api/campaign/quotes/abandoned"),
        ("POST", "/codec/decode"),
        ("GET", "/"),
        ("GET", "/outbox"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
        ("GET", "/metrics"),
        ("GET", "/sign-in"),
    ]:
        assert await answers(public, method, path) == 404, f"{method} {path}"


def test_an_app_with_a_route_that_has_no_policy_is_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    unlisted = APIRouter()

    @unlisted.post("/api/unlisted/{thing}")
    def handler(thing: str) -> dict[str, str]:
        return {"thing": thing}

    with pytest.raises(RuntimeError, match=re.escape("POST /api/unlisted/{thing}")):
        policy.guarded_app([unlisted], "internal")

    monkeypatch.setattr(web.app, "ROUTERS", [*ROUTERS, unlisted])
    for create in (create_internal_app, create_public_app):
        with pytest.raises(RuntimeError, match=re.escape("POST /api/unlisted/{thing}")):
            create(None)
