"""docs/security.md carries the route-policy table the apps enforce, generated, not retyped."""

from __future__ import annotations

from pathlib import Path

from dev.scripts.policy_table import BEGIN, END, table

DOC = Path(__file__).resolve().parent.parent / "docs" / "security.md"


def test_the_documented_policy_table_is_the_enforced_one() -> None:
    text = DOC.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == table(), "docs/security.md is stale: python -m dev.scripts.policy_table"
