"""Pages tested in a real browser: Debian's Chromium driven by Playwright
(`.ci/run` installs Chromium; without it these tests are not collected and
the run says so in one line).

Fixtures for a new browser test:

- `site`: a real `portal serve` on SQLite of its own, its mail worker sending
  to the test SMTP server (aiosmtpd), PORTAL_BASE_URL left to its default
  (the service's own address, so emailed links open its pages); practice
  `north` (North Practice) with ADMIN `admin@north.example` and CLINICIAN
  `clinician@north.example`, both with PASSWORD; `api(site, query, …)` calls
  its /graphql as another client would, to set the scene quickly.
- `browser`: Chromium; `new_page(browser, width=…)` opens a page that fails
  the test on any console error (a refused script or style included).
- `mailbox` (tests/conftest.py) with `latest_mail(mailbox, to)` and
  `link_in(message)` here: wait for a message, read its link as a reader would.
- `assert_accessible(page)`: axe-core finds nothing serious or critical.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright

from tests.conftest import Mailbox, SmtpServer
from tests.mail import text_of
from tests.processes import Cluster

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FOUND = Path(CHROMIUM).exists()
# As this machine's network is closed: no background connections, no updates.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "copper-lantern-meadow-2047"
ADMIN_EMAIL = "admin@north.example"
CLINICIAN_EMAIL = "clinician@north.example"
# How long a page or a mail may take on a busy 2-core machine: a bound, not a timing.
WAIT_MS = 20_000

if not CHROMIUM_FOUND:
    collect_ignore_glob = ["test_*.py"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not CHROMIUM_FOUND:
        terminalreporter.write_line(
            "tests/browser skipped: no Chromium at /usr/bin/chromium "
            "(apt-get install chromium to run the browser tests)"
        )


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def service(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[str]:
    """`portal serve` in development on a SQLite file of its own, with a
    practice `north` and its ADMIN; its address."""
    cluster = Cluster(tmp_path, f"sqlite://{tmp_path / 'portal.sqlite3'}", smtp_server.port)
    cluster.set_up("north", {ADMIN_EMAIL: "ADMIN"}, PASSWORD)
    _, url = cluster.serve()
    try:
        yield url
    finally:
        cluster.stop_all()


@dataclass
class Site:
    url: str
    practice: str
    admin_email: str
    password: str
    cluster: Cluster

    def page_url(self, path: str) -> str:
        return f"{self.url}/{self.practice}/{path}"


@pytest.fixture
def site(tmp_path: Path, smtp_server: SmtpServer, mailbox: Mailbox) -> Iterator[Site]:
    """The whole service as a practice runs it, mail delivered by its own worker."""
    cluster = Cluster(
        tmp_path,
        f"sqlite://{tmp_path / 'portal.sqlite3'}",
        smtp_server.port,
        PORTAL_MAIL_WORKER="on",
        PORTAL_MAIL_POLL_SECONDS="1",
    )
    # Unset: `portal serve` makes the emailed links point at itself.
    del cluster.env["PORTAL_BASE_URL"]
    cluster.set_up("north", {ADMIN_EMAIL: "ADMIN", CLINICIAN_EMAIL: "CLINICIAN"}, PASSWORD)
    _, url = cluster.serve()
    try:
        yield Site(url, "north", ADMIN_EMAIL, PASSWORD, cluster)
    finally:
        cluster.stop_all()


SIGN_IN = """
mutation ($practice: String!, $email: String!, $password: String!) {
  login(practice: $practice, email: $email, password: $password) {
    ... on LoginSuccess { token }
  }
}
"""


async def api(site: Site, query: str, token: str | None = None, **variables: Any) -> Any:
    """The data of a request to the site's /graphql (Bearer token, no cookie)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=site.url, timeout=30) as http:
        response = await http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def bearer_token(site: Site, email: str) -> str:
    data = await api(site, SIGN_IN, practice=site.practice, email=email, password=site.password)
    token: str = data["login"]["token"]
    return token


async def new_page(browser: Browser, width: int = 1280, height: int = 900) -> Page:
    """A page of a fresh context (its own cookies) that fails the test on a
    console error, such as a script or style the policy refused."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.console_problems = problems  # type: ignore[attr-defined]
    return page


def console_problems(page: Page) -> list[str]:
    problems: list[str] = page.console_problems  # type: ignore[attr-defined]
    return problems


_axe = Axe()


async def assert_accessible(page: Page) -> None:
    """axe-core (WCAG 2 A and AA rules) finds no serious or critical violation."""
    results = await _axe.run(page)
    assert results.response["passes"], "axe-core checked nothing"
    serious = [
        f"{violation['id']} ({violation['impact']}): "
        + "; ".join(node["target"][0] for node in violation["nodes"][:3])
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert serious == [], f"{page.url}: {serious}"


async def latest_mail(mailbox: Mailbox, to: str) -> EmailMessage:
    """The newest message to `to`, waiting for the service's mail worker."""
    for _ in range(WAIT_MS // 100):
        messages = mailbox.to(to)
        if messages:
            return messages[-1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no mail to {to} within {WAIT_MS} ms")


def link_in(message: EmailMessage) -> str:
    """The one link of a message's text, as its reader clicks it."""
    links = re.findall(r"https?://\S+", text_of(message))
    assert len(links) == 1, text_of(message)
    return str(links[0])
