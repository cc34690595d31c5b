"""Pages tested in a real browser: Debian's Chromium driven by Playwright
(`.ci/run` installs Chromium; without it these tests are skipped)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.conftest import SmtpServer
from tests.processes import Cluster

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
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

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (.ci/run installs it)"
)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium (.ci/run installs it)")
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
    cluster.set_up("north", {"admin@north.example": "ADMIN"}, PASSWORD)
    _, url = cluster.serve()
    try:
        yield url
    finally:
        cluster.stop_all()
