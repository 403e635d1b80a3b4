"""Helpers for tests: move time on the time-skipping server until a case gets somewhere; submit a
page's form as a browser does."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from ledger.db import session_scope
from models.case import CaseStatus, PremiumOverdue
from models.ledger import Contract, Message
from web.safety import CSRF_COOKIE, CSRF_FIELD, form_token
from workflows.client import start_or_join_case
from workflows.dunning import DunningCase


def berlin_today(env_now: datetime) -> date:
    return env_now.astimezone(ZoneInfo("Europe/Berlin")).date()


async def status(handle: WorkflowHandle[DunningCase, CaseStatus]) -> CaseStatus:
    return await handle.query(DunningCase.status)


async def advance_until(
    env: WorkflowEnvironment,
    handle: WorkflowHandle[DunningCase, CaseStatus],
    done: Callable[[CaseStatus], bool],
    step: timedelta = timedelta(hours=6),
    limit: timedelta = timedelta(days=200),
) -> CaseStatus:
    """Skip time in small steps until `done(status)`; fail with the last status if it never is."""
    waited = timedelta(0)
    current = await status(handle)
    while not done(current):
        if waited >= limit:
            raise AssertionError(
                f"case never got there within {limit}: stage={current.stage} journal={current.journal}"
            )
        await env.sleep(step)
        waited += step
        current = await status(handle)
    return current


async def open_case(
    env: WorkflowEnvironment, task_queue: str, contract_number: str, premium_id: str, plan_id: str = "de-follow-up"
) -> WorkflowHandle[DunningCase, CaseStatus]:
    return await start_or_join_case(
        env.client, task_queue, contract_number, PremiumOverdue(premium_id=premium_id), plan_id
    )


def messages(engine: Engine, contract_number: str) -> list[Message]:
    with session_scope(engine) as session:
        contract = session.exec(select(Contract).where(Contract.contract_number == contract_number)).one()
        return list(session.exec(select(Message).where(Message.contract_id == contract.id).order_by(Message.id)))  # type: ignore[arg-type]


def contract_status(engine: Engine, contract_number: str) -> str:
    with session_scope(engine) as session:
        return str(session.exec(select(Contract).where(Contract.contract_number == contract_number)).one().status)


# --- forms ---------------------------------------------------------------------------------------


class _Forms(HTMLParser):
    """The hidden inputs of every form on a page, by the form's action."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self._current: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = self.forms.setdefault(values.get("action", ""), {})
        elif tag == "input" and self._current is not None and values.get("type") == "hidden" and "name" in values:
            self._current[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def hidden_fields(page: str, action: str) -> dict[str, str]:
    """The hidden fields (the CSRF token among them) of the form on `page` that posts to `action`."""
    parser = _Forms()
    parser.feed(page)
    if action not in parser.forms:
        raise AssertionError(f"no form posts to {action!r} on this page; forms post to {sorted(parser.forms)}")
    return parser.forms[action]


async def form_post(
    client: httpx.AsyncClient,
    page_url: str,
    action: str,
    data: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Submit a form as a browser does: open the page (which sets the CSRF cookie), then post the
    form's hidden fields (its CSRF token among them) with `data` to `action`. `kwargs` go to the
    post (files=, follow_redirects=, headers=)."""
    page = await client.get(page_url)
    fields = {**hidden_fields(page.text, action), **(data or {})}
    return await client.post(action, data=fields, **kwargs)


async def csrf_fields(client: httpx.AsyncClient, page_url: str) -> dict[str, str]:
    """The CSRF token field a page gives this browser: it fits every form of the same app while the
    browser keeps its cookie (for posting to a URL whose own page shows no form, e.g. an expired link)."""
    page = await client.get(page_url)
    parser = _Forms()
    parser.feed(page.text)
    for fields in parser.forms.values():
        if CSRF_FIELD in fields:
            return {CSRF_FIELD: fields[CSRF_FIELD]}
    raise AssertionError(f"{page_url} shows no form with a CSRF token")


def csrf_cookie(client: httpx.AsyncClient, csrf_secret: str) -> dict[str, str]:
    """As if this browser had opened some form of the public app before: sets its `csrf` cookie and
    returns the matching form field (for a URL whose own page shows no form, e.g. with Stripe on)."""
    nonce = secrets.token_urlsafe(32)
    client.cookies.set(CSRF_COOKIE, nonce)
    return {CSRF_FIELD: form_token(csrf_secret, nonce, "")}
