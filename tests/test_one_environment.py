"""One Jinja environment for every message, letter and document (channels/render.environment):
dunning messages, campaign mails, the agent's notices and the court application all come from
templates/<language>/, with the same filters, autoescaping and strict undefined names."""

from __future__ import annotations

import ast
from io import BytesIO
from pathlib import Path

import pytest
from jinja2 import UndefinedError
from pypdf import PdfReader

from activities.court import APPLICATION_TEMPLATE, application_pdf
from channels.render import TEMPLATES_DIR, environment, render_template

ROOT = Path(__file__).resolve().parent.parent


def test_only_channels_render_builds_a_jinja_environment() -> None:
    builders = []
    for path in ROOT.rglob("*.py"):
        parts = set(path.relative_to(ROOT).parts)
        if parts & {".venv", "tests", "web"}:  # web/ renders its own pages (Jinja2Templates), not messages
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Environment":
                builders.append(str(path.relative_to(ROOT)))
    assert builders == ["channels/render.py"]


def test_every_language_shares_the_filters_and_a_missing_name_is_an_error() -> None:
    env = environment("de")
    assert {"eur", "datum", "uhrzeit"} <= set(env.filters)
    assert environment("xx-YY") is env  # no such folder: German
    with pytest.raises(UndefinedError):
        render_template("agent_escalation.email.subject.txt", {})


def test_the_agent_notices_are_templates_without_amounts() -> None:
    notice = render_template("agent_call_notice.txt", {"who": "Max Agent", "creditor_name": "Muster Versicherung AG"})
    assert notice.startswith("Guten Tag, hier ist Max Agent von Muster Versicherung AG.") and "€" not in notice
    escalation = render_template(
        "agent_escalation.email.txt",
        {
            "supervisor_name": "Sam",
            "task_id": 7,
            "contract_number": "K-1",
            "agent_code": "A-7",
            "reason": "no call within 24 h",
            "task_url": "https://intern.example/agent/tasks/7",
        },
    )
    assert escalation.splitlines() == [
        "Hallo Sam,",
        "",
        "die Aufgabe 7 (Vertrag K-1) liegt bei A-7: no call within 24 h.",
        "",
        "Aufgabe öffnen: https://intern.example/agent/tasks/7",
    ]


def test_the_court_application_is_a_template_escaped_and_printed_with_the_letters_money_format() -> None:
    assert (TEMPLATES_DIR / "de" / APPLICATION_TEMPLATE).is_file()
    record: dict[str, object] = {
        "case_id": "dunning-K-1/2026",
        "contract_number": "K-1",
        "debtor_customer_number": "C-1",
        "principal": [{"premium_id": "P1", "period": "2026-01", "due_date": "2026-01-01", "amount_cents": 12345}],
        "interest": [],  # a record prepared before the flat fee existed has no "flat_fee" key
        "costs": [{"label": "Mahngebühr <script>", "amount_cents": 150}],
        "court_fee_estimate_cents": 3600,
        "claimed_cents": 12495,
        "prepared_at": "2026-03-01",
    }

    text = "".join(page.extract_text() for page in PdfReader(BytesIO(application_pdf(record))).pages)

    assert "123,45\xa0€" in text and "Mahngebühr <script>" in text and "Verzugspauschale" not in text
