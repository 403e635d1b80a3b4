"""No secret has a default in code (issue #12, "no unsafe defaults"): the embedded default generates
random secrets, one per purpose, once per installation, readable by its owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.config import GENERATED_SECRETS, SECRETS_FILE, Settings


def test_an_installation_generates_its_own_secrets_once_one_per_purpose_owner_only(tmp_path: Path) -> None:
    first, again = Settings(data_dir=tmp_path / "a"), Settings(data_dir=tmp_path / "a")
    other = Settings(data_dir=tmp_path / "b")

    values = [getattr(first, name) for name in GENERATED_SECRETS]
    assert values == [getattr(again, name) for name in GENERATED_SECRETS]  # every process shares them
    assert len(set(values)) == len(values) and all(len(v) >= 32 for v in values)  # one per purpose
    assert all(getattr(other, name) != getattr(first, name) for name in GENERATED_SECRETS)  # per installation
    assert stat.S_IMODE(os.stat(tmp_path / "a" / SECRETS_FILE).st_mode) == 0o600


def test_a_configured_secret_is_used_as_given_and_a_short_one_is_refused(tmp_path: Path) -> None:
    given = Settings(data_dir=tmp_path, link_secret="x" * 40)
    assert given.link_secret == "x" * 40
    assert given.testpay_webhook_secret != "x" * 40  # the others are still generated

    with pytest.raises(ValidationError, match="LINK_SECRET must be at least 16 characters"):
        Settings(data_dir=tmp_path, link_secret="short")


def test_a_damaged_secrets_file_is_named_not_silently_replaced(tmp_path: Path) -> None:
    (tmp_path / SECRETS_FILE).write_text('{"link_secret": "abc"}')

    with pytest.raises(ValidationError, match="lacks"):
        Settings(data_dir=tmp_path)
