"""Screenshots for the README, from the running stack (`make run`), with headless Chromium.

    .venv/bin/python dev/scripts/screenshots.py            # after `make run` has been up a few minutes

Saves docs/screenshots/temporal-ui-cases.png (the Temporal UI's list of dunning cases),
temporal-ui-case.png (one case: summary, current details, history, payloads decoded through the
web app's codec endpoint) and pay-page.png (the customer's pay page of the newest pay link).
Needs the Debian packages `chromium` and `chromium-driver` (`apt-get install -y chromium
chromium-driver`); drives them through chromedriver's WebDriver HTTP API. The UI keeps polling, so
"network idle" never comes: each page waits for an element, then a few seconds to fill in.
"""

from __future__ import annotations

import argparse
import base64
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlmodel import col, select

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from infra.config import get_settings  # noqa: E402 (the project root is put on the path first)
from ledger.db import make_engine, session_scope  # noqa: E402
from models.ledger import Message  # noqa: E402

PAY_LINK = re.compile(r"https?://[^\s\"<>]+/pay/[A-Za-z0-9._~-]+")


def find(names: tuple[str, ...], package: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit(f"{names[0]} not found: apt-get install -y {package}")


class Browser:
    """Headless Chromium driven through chromedriver's W3C WebDriver HTTP API (no client library
    needed): open a page, wait for an element, let it settle, take a PNG."""

    def __init__(self) -> None:
        self.port = free_port()
        self.driver = subprocess.Popen(
            [find(("chromedriver",), "chromium-driver"), f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.http.get("/status").json()["value"]["ready"]:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("chromedriver did not start")
            time.sleep(0.2)
        self.profile = tempfile.mkdtemp(prefix="shot-")  # throwaway profile: nothing remembered
        options = {
            "binary": find(("chromium", "chromium-browser", "google-chrome"), "chromium"),
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={self.profile}",
            ],
        }
        created = self.http.post(
            "/session", json={"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}}
        ).json()["value"]
        if "sessionId" not in created:
            raise SystemExit(f"chromium did not start: {created}")
        self.session = f"/session/{created['sessionId']}"

    def shoot(self, url: str, out: Path, size: tuple[int, int], wait_for: str, settle: float) -> None:
        self.http.post(f"{self.session}/window/rect", json={"width": size[0], "height": size[1]})
        self.http.post(f"{self.session}/url", json={"url": url})
        deadline = time.monotonic() + 30
        while self.http.post(
            f"{self.session}/element", json={"using": "css selector", "value": wait_for}
        ).status_code != 200:
            if time.monotonic() > deadline:
                raise SystemExit(f"{url}: nothing matching {wait_for!r} within 30 s")
            time.sleep(0.5)
        time.sleep(settle)  # the UI fills in its panels after the first element
        png = base64.b64decode(self.http.get(f"{self.session}/screenshot").json()["value"])
        out.write_bytes(png)
        print(f"{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}  ←  {url}")

    def close(self) -> None:
        try:
            self.http.delete(self.session)
        finally:
            self.driver.terminate()
            self.driver.wait(timeout=10)
            shutil.rmtree(self.profile, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def newest_pay_link(contract_number: str | None) -> str:
    engine = make_engine(get_settings().effective_database_url)
    with session_scope(engine) as session:
        for message in session.exec(select(Message).order_by(col(Message.id).desc())):
            found = PAY_LINK.search(message.body_text)
            if found and (contract_number is None or contract_number in (message.case_id or "")):
                return found.group(0)
    raise SystemExit("no message with a pay link yet: let `make run` work a few minutes (the SMS step sends one)")


def main() -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(description="Screenshots of the running stack for the README")
    parser.add_argument("--ui", default=settings.temporal_ui_url, help="Temporal UI base URL")
    parser.add_argument("--namespace", default=settings.temporal_namespace)
    parser.add_argument("--case", default="dunning-K-1001", help="workflow id of the case to show")
    parser.add_argument("--pay-contract", default=None, help="contract whose newest pay link to open (default: any)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    ui = args.ui.rstrip("/")
    try:
        httpx.get(ui, timeout=5).raise_for_status()
    except httpx.HTTPError as error:
        raise SystemExit(f"the Temporal UI at {ui} does not answer ({error}): is `make run` running?") from error

    browser = Browser()
    try:
        browser.shoot(
            f"{ui}/namespaces/{args.namespace}/workflows?query=WorkflowType%3D%22DunningCase%22",
            args.out / "temporal-ui-cases.png",
            (1600, 1000),
            wait_for="a[href*='dunning-K-']",
            settle=3,
        )
        browser.shoot(
            f"{ui}/namespaces/{args.namespace}/workflows/{args.case}",
            args.out / "temporal-ui-case.png",
            (1600, 1500),
            wait_for="main",
            settle=8,
        )
        browser.shoot(newest_pay_link(args.pay_contract), args.out / "pay-page.png", (1000, 1000), "form", 1)
    finally:
        browser.close()

if __name__ == "__main__":
    main()
