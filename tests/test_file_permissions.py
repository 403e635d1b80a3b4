"""Data files are their owner's only (issue #12): the data folder is 0700; the ledger, its journal
files, the generated secrets and payload key, and the logs are 0600 — on creation, and an
installation an older version left readable is tightened at the next start. Every process gets this
from config.get_settings() (umask 077, inherited by the processes it starts)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from infra.config import Settings

ROOT = Path(__file__).resolve().parent.parent

# What a process of the installation does at start: read the settings, migrate the ledger, open the
# payload key, write a log through `make run`'s spawn, and start a child that writes a file itself.
START = """
import sys
from infra.config import get_settings
from infra.crypto.codec import configured_keys
from ledger.db import make_engine, migrate, session_scope
from sqlalchemy import text
from dev import stack
settings = get_settings()
migrate(settings.effective_database_url)
with session_scope(make_engine(settings.effective_database_url)) as session:
    session.execute(text("PRAGMA journal_mode=wal"))
    session.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
    session.execute(text("INSERT INTO probe VALUES (1)"))
    configured_keys(settings)
    logs = settings.data_dir / "logs"
    logs.mkdir(exist_ok=True)
    target = str(settings.data_dir / "written-by-a-child")  # as the Temporal dev server writes its database
    child = stack.spawn("child", [sys.executable, "-c", f"open({target!r}, 'w').write('x')"], logs, {})
    assert child.wait() == 0
"""


def start_process(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env.update({"DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)})
    subprocess.run([sys.executable, "-c", START], cwd=ROOT, env=env, check=True, timeout=120)


def modes(data_dir: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(data_dir.stat().st_mode)}
    for path in data_dir.rglob("*"):
        found[str(path.relative_to(data_dir))] = stat.S_IMODE(path.stat().st_mode)
    return found


def test_a_new_installation_s_data_folder_and_files_are_the_owner_s_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    start_process(data)

    found = modes(data)
    for name in ["secrets.json", "payload-keys.json", "ledger.sqlite3", "logs/child.log", "written-by-a-child"]:
        assert name in found, sorted(found)
    assert found["."] == 0o700 and found["logs"] == 0o700
    loose = {name: oct(mode) for name, mode in found.items() if mode & 0o077}
    assert loose == {}


def test_an_installation_left_readable_by_an_older_version_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    os.chmod(data, 0o755)
    os.chmod(data / "logs", 0o755)
    for name in ["ledger.sqlite3", "logs/web.log", "notes.txt"]:
        (data / name).write_text("")
        os.chmod(data / name, 0o644)
    os.chmod(data / "notes.txt", 0o640)

    start_process(data)

    found = modes(data)
    assert found["."] == 0o700 and found["logs"] == 0o700
    assert found["logs/web.log"] == 0o600 and found["notes.txt"] == 0o600
    assert {name: oct(mode) for name, mode in found.items() if mode & 0o077} == {}
