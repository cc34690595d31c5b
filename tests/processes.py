"""Real `portal` processes for tests that need what only a process has: its
own pool, signals, a crash, a restart. Spoken to over real HTTP."""

from __future__ import annotations

import itertools
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import free_port

PORTAL = Path(sys.executable).parent / "portal"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
postgres_only = pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("postgres"),
    reason="needs TEST_DATABASE_URL pointing at PostgreSQL",
)
SECRET_KEY = "process-test-only-key-" + "p" * 30
STARTUP_SECONDS = 30
COMMAND_SECONDS = 60
_log_numbers = itertools.count()


def with_database(url: str, name: str) -> str:
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def psql(database_url: str, sql: str) -> str:
    result = subprocess.run(
        ["psql", database_url, "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
    )
    assert result.returncode == 0, (sql, result.stderr)
    return result.stdout


@contextmanager
def fresh_postgres_database(next_to: str, prefix: str) -> Iterator[str]:
    """A new database beside `next_to`'s, dropped (connections and all) afterwards."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin_url = with_database(next_to, "postgres")
    psql(admin_url, f"CREATE DATABASE {name}")
    try:
        yield with_database(next_to, name)
    finally:
        psql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class Cluster:
    """`portal` processes sharing one database, one SMTP server and one
    environment (cheap argon2, no timing floor); `**settings` adds to it."""

    def __init__(self, directory: Path, database_url: str, smtp_port: int, **settings: str) -> None:
        self.directory = directory
        self.database_url = database_url
        self.env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("PORTAL_") and name not in ("DATABASE_URL", "SMTP_URL")
        }
        self.env.update(
            DATABASE_URL=database_url,
            PORTAL_SECRET_KEY=SECRET_KEY,
            PORTAL_BASE_URL="https://portal.test",
            PORTAL_MAIL_WORKER="off",
            PORTAL_MAIL_POLL_SECONDS="1",
            PORTAL_RECOVERY_RESPONSE_FLOOR_MS="0",
            PORTAL_ARGON2_MEMORY_KIB="1024",
            PORTAL_ARGON2_TIME_COST="1",
            SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
        )
        self.env.update(settings)
        self.processes: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []
        self.urls: list[str] = []

    def run(self, *args: str, **extra: str) -> str:
        result = subprocess.run(
            [str(PORTAL), *args],
            cwd=self.directory,
            env={**self.env, **extra},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
        )
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def set_up(self, practice: str, staff: dict[str, str], password: str) -> None:
        """Migrates, then creates the practice and its staff (email: role) with the CLI."""
        self.run("migrate")
        self.run("create-practice", "--name", f"{practice.title()} Practice", "--slug", practice)
        for email, role in staff.items():
            self.run(
                "create-user",
                *("--practice", practice, "--email", email, "--role", role),
                PORTAL_PASSWORD=password,
            )

    def start(self, *args: str, **extra: str) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{args[0]}-{next(_log_numbers)}.log").open("wb")
        process = subprocess.Popen(
            [str(PORTAL), *args],
            cwd=self.directory,
            env={**self.env, **extra},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append((process, log))
        return process

    def serve(
        self, *args: str, healthy: bool = True, **extra: str
    ) -> tuple[subprocess.Popen[bytes], str]:
        """Starts `portal serve` (with `args`, e.g. --workers 2) and waits until
        /health answers: 200, or anything at all when not `healthy` (a service
        started without its database)."""
        port = free_port()
        process = self.start("serve", "--port", str(port), *args, **extra)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert process.poll() is None, self.logs()
            try:
                status = httpx.get(f"{url}/health", timeout=5).status_code
            except httpx.HTTPError:
                status = None
            if status == 200 or (status is not None and not healthy):
                self.urls.append(url)
                return process, url
            time.sleep(0.1)
        raise AssertionError(f"portal serve did not answer in {STARTUP_SECONDS}s:\n{self.logs()}")

    def log_of(self, process: subprocess.Popen[bytes]) -> str:
        for candidate, log in self.processes:
            if candidate is process:
                log.flush()
                return Path(log.name).read_text(errors="replace")
        raise KeyError(process)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.directory.glob("*.log"))
        )

    def stop(self, process: subprocess.Popen[bytes], seconds: float = 10) -> int:
        """Asks a process to stop (SIGTERM), kills it after `seconds`; its exit code."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        return process.returncode

    def stop_all(self) -> None:
        for process, log in self.processes:
            self.stop(process)
            log.close()


def graphql_body(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json()
