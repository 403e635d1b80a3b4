"""One time zone setting: the literal "Europe/Berlin" is written once in the code, in
core/timezone.py; everything else names BUSINESS_TIMEZONE (or a plan's own zone)."""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

from core.timezone import BUSINESS_TIMEZONE

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {".venv", "tests", "migrations", "build", "node_modules"}


def zone_literals(path: Path) -> list[int]:
    """Lines of `path` holding a string literal that is exactly the business zone."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    return [
        token.start[0]
        for token in tokens
        if token.type == tokenize.STRING and token.string.strip("'\"") == BUSINESS_TIMEZONE
    ]


def test_the_business_time_zone_is_written_only_in_core_timezone() -> None:
    found = {
        str(path.relative_to(ROOT)): lines
        for path in ROOT.rglob("*.py")
        if not SKIPPED & set(path.relative_to(ROOT).parts) and (lines := zone_literals(path))
    }
    assert found == {"core/timezone.py": [found["core/timezone.py"][0]]}
