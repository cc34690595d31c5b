"""The `portal` console script, run as an operator runs it: a separate process
with its settings in the environment and a SQLite file of its own.

Every bad input fails with a non-zero exit code and one line on standard error,
having written nothing to the database.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

PORTAL = Path(sys.executable).parent / "portal"
SECRET_KEY = "cli-test-only-key-" + "k" * 30
STRONG_PASSWORD = "lunar-teapot-orchestra-91"
TABLES = {"practice", "account", "patient", "session"}

Call = tuple[Sequence[str], dict[str, str]]


def clean_environment(directory: Path, **extra: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PORTAL_") and name != "DATABASE_URL"
    }
    env.update(
        DATABASE_URL=f"sqlite://{directory / 'cli.sqlite3'}",
        PORTAL_SECRET_KEY=SECRET_KEY,
        PORTAL_ARGON2_MEMORY_KIB="1024",
        PORTAL_ARGON2_TIME_COST="1",
    )
    env.update(extra)
    return env


class Cli:
    """Runs `portal` in one directory; stdin is never a terminal."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.database = directory / "cli.sqlite3"

    def _start(self, args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(PORTAL), *args],
            cwd=self.directory,
            env=clean_environment(self.directory, **env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run_all([(args, env)])[0]

    def run_all(self, calls: Sequence[Call]) -> list[subprocess.CompletedProcess[str]]:
        """Runs commands side by side: for failures that must only read the database."""
        started = [(args, self._start(args, env)) for args, env in calls]
        results = []
        for args, process in started:
            stdout, stderr = process.communicate(timeout=60)
            results.append(subprocess.CompletedProcess(args, process.returncode, stdout, stderr))
        return results

    def rows(self, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.database)) as connection:
            return connection.execute(sql, parameters).fetchall()

    def dump(self) -> list[str]:
        with closing(sqlite3.connect(self.database)) as connection:
            return list(connection.iterdump())


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)


def assert_one_line_failure(result: subprocess.CompletedProcess[str], command: str) -> None:
    assert result.returncode != 0, (result.args, result.stdout)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, (result.args, result.stderr)
    assert lines[0].startswith(f"portal {command}: "), lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cli-template")
    assert_ok(Cli(directory).run("migrate"))
    return directory / "cli.sqlite3"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def migrated(cli: Cli, migrated_template: Path) -> Iterator[Cli]:
    """A freshly migrated, empty database (a copy, to spare a `portal migrate`)."""
    shutil.copyfile(migrated_template, cli.database)
    yield cli


@pytest.fixture
def north(migrated: Cli) -> Cli:
    assert_ok(migrated.run("create-practice", "--name", "North Street Practice", "--slug", "north"))
    return migrated


def table_names(cli: Cli) -> set[str]:
    return {name for (name,) in cli.rows("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_migrate_creates_the_tables_and_can_run_again(cli: Cli) -> None:
    first = cli.run("migrate")

    assert_ok(first)
    assert table_names(cli) >= TABLES
    before = cli.dump()

    second = cli.run("migrate")

    assert_ok(second)
    assert cli.dump() == before


def test_create_practice_stores_the_practice(migrated: Cli) -> None:
    result = migrated.run("create-practice", "--name", " North Street Practice ", "--slug", "north")

    assert_ok(result)
    assert "north" in result.stdout
    assert migrated.rows("SELECT name, slug FROM practice") == [("North Street Practice", "north")]


def test_create_practice_rejects_a_bad_or_taken_slug_writing_nothing(north: Cli) -> None:
    before = north.dump()
    # The last two are the service's own addresses (/web/…, /graphql).
    bad_slugs = ["Bad Slug", "-x", "UPPER", "x-", "a--b", "a" * 64, "web", "graphql"]

    results = north.run_all(
        [(["create-practice", "--name", "Other", f"--slug={slug}"], {}) for slug in bad_slugs]
        + [(["create-practice", "--name", "Other North", "--slug", "north"], {})]
        + [(["create-practice", "--name", "   ", "--slug", "blank-name"], {})]
    )

    for result in results:
        assert_one_line_failure(result, "create-practice")
    assert "slug" in results[0].stderr
    assert "the service's own addresses" in results[len(bad_slugs) - 1].stderr
    assert "already used" in results[len(bad_slugs)].stderr
    assert north.dump() == before


def test_create_user_makes_an_account_that_can_sign_in(north: Cli) -> None:
    result = north.run(
        "create-user",
        "--practice",
        "north",
        "--email",
        " Ada@North.Example ",
        "--role",
        "CLINICIAN",
        PORTAL_PASSWORD=STRONG_PASSWORD,
    )

    assert_ok(result)
    [(email, role, password_hash, slug)] = north.rows(
        "SELECT a.email, a.role, a.password_hash, p.slug"
        " FROM account a JOIN practice p ON p.id = a.practice_id"
    )
    assert (email, role, slug) == ("ada@north.example", "CLINICIAN", "north")
    assert password_hash.startswith("$argon2id$")
    assert STRONG_PASSWORD not in password_hash
    assert PasswordHasher().verify(password_hash, STRONG_PASSWORD)


def test_the_operator_disables_and_enables_a_staff_account_but_keeps_an_admin(
    north: Cli,
) -> None:
    for email, role in (("ada@north.example", "ADMIN"), ("bea@north.example", "CLINICIAN")):
        north.run(
            "create-user",
            "--practice",
            "north",
            "--email",
            email,
            "--role",
            role,
            PORTAL_PASSWORD=STRONG_PASSWORD,
        )

    disabled = north.run("disable-user", "--practice", "north", "--email", "BEA@north.example")
    last_admin = north.run("disable-user", "--practice", "north", "--email", "ada@north.example")
    unknown = north.run("disable-user", "--practice", "north", "--email", "nobody@north.example")

    assert_ok(disabled)
    assert "is disabled" in disabled.stdout
    assert_one_line_failure(last_admin, "disable-user")
    assert "at least one active ADMIN" in last_admin.stderr
    assert_one_line_failure(unknown, "disable-user")
    states = dict(north.rows("SELECT email, disabled_at IS NULL FROM account"))
    assert states == {"ada@north.example": 1, "bea@north.example": 0}

    enabled = north.run("enable-user", "--practice", "north", "--email", "bea@north.example")

    assert_ok(enabled)
    assert (
        dict(north.rows("SELECT email, disabled_at IS NULL FROM account"))["bea@north.example"] == 1
    )


def test_the_operator_turns_off_a_locked_out_admins_second_step(north: Cli) -> None:
    north.run(
        *("create-user", "--practice", "north", "--email", "ada@north.example"),
        *("--role", "ADMIN"),
        PORTAL_PASSWORD=STRONG_PASSWORD,
    )
    with closing(sqlite3.connect(north.database)) as connection, connection:
        connection.execute(
            "UPDATE account SET mfa_secret = 'sealed', mfa_enabled_at = '2026-11-01 10:00:00+00:00'"
        )

    reset = north.run("reset-mfa", "--practice", "north", "--email", "ADA@north.example")
    unknown = north.run("reset-mfa", "--practice", "north", "--email", "nobody@north.example")

    assert_ok(reset)
    assert "is off" in reset.stdout
    assert north.rows("SELECT mfa_secret, mfa_enabled_at FROM account") == [(None, None)]
    assert_one_line_failure(unknown, "reset-mfa")


def test_create_user_rejects_bad_input_writing_nothing(north: Cli) -> None:
    assert_ok(
        north.run(
            "create-user",
            *("--practice", "north", "--email", "admin@north.example", "--role", "ADMIN"),
            PORTAL_PASSWORD=STRONG_PASSWORD,
        )
    )
    before = north.dump()

    def create_user(
        email: str = "new@north.example", practice: str = "north", password: str | None = None
    ) -> Call:
        args = ["create-user", "--practice", practice, "--email", email, "--role", "ADMIN"]
        return args, {"PORTAL_PASSWORD": password or STRONG_PASSWORD}

    rejected = {
        "unknown practice": create_user(practice="nowhere"),
        "taken email": create_user(email="admin@north.example"),
        "taken email in other case": create_user(email="Admin@NORTH.example"),
        "short common password": create_user(password="password123"),
        "long guessable password": create_user(password="qwertyuiop12"),
        "password is the email": create_user(
            email="carol@north.example", password="carol@north.example"
        ),
        "invalid email": create_user(email="not-an-email"),
        "no password and no terminal": (create_user()[0], {}),
    }
    results = dict(zip(rejected, north.run_all(list(rejected.values())), strict=True))

    for reason, result in results.items():
        assert result.returncode != 0, reason
        assert_one_line_failure(result, "create-user")
    assert "nowhere" in results["unknown practice"].stderr
    assert "already" in results["taken email in other case"].stderr
    assert "email" in results["invalid email"].stderr
    assert "PORTAL_PASSWORD" in results["no password and no terminal"].stderr
    assert north.dump() == before


def test_create_user_refuses_the_patient_role(north: Cli) -> None:
    before = north.dump()

    result = north.run(
        "create-user",
        *("--practice", "north", "--email", "pat@north.example", "--role", "PATIENT"),
        PORTAL_PASSWORD=STRONG_PASSWORD,
    )

    assert result.returncode == 2  # argparse's usage error
    assert "invalid choice: 'PATIENT'" in result.stderr.strip().splitlines()[-1]
    assert north.dump() == before


def test_a_usage_error_is_also_one_line(cli: Cli) -> None:
    result = cli.run("create-user", "--practice", "north", "--email", "x@y.example", "--role", "X")

    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_ensure_demo_creates_a_demo_admin_once_and_shows_the_password_once(
    migrated: Cli,
) -> None:
    first = migrated.run("ensure-demo")

    assert_ok(first)
    shown = {}
    for line in first.stdout.splitlines():
        key, colon, value = line.strip().partition(":")
        if colon:
            shown[key] = value.strip()
    assert shown["practice"] == "demo"
    [(email, role, password_hash)] = migrated.rows(
        "SELECT a.email, a.role, a.password_hash"
        " FROM account a JOIN practice p ON p.id = a.practice_id WHERE p.slug = 'demo'"
    )
    assert (shown["email"], role) == (email, "ADMIN")
    assert len(shown["password"]) >= 12
    assert PasswordHasher().verify(password_hash, shown["password"])
    # The web app's address for staff, where a newcomer signs in with them.
    assert shown["Staff sign-in"] == "http://127.0.0.1:8000/demo/staff/sign-in"
    after_first = migrated.dump()

    second = migrated.run("ensure-demo")

    assert_ok(second)
    assert "password" not in second.stdout.lower()
    assert "Staff sign-in: http://127.0.0.1:8000/demo/staff/sign-in" in second.stdout
    assert shown["password"] not in second.stdout + second.stderr
    assert migrated.dump() == after_first


def test_a_settings_error_stops_any_command_with_one_line(cli: Cli) -> None:
    staging, typo = cli.run_all(
        [
            (["migrate"], {"PORTAL_ENV": "staging"}),
            (["migrate"], {"PORTAL_SESION_IDLE_MINUTES": "5"}),
        ]
    )

    assert_one_line_failure(staging, "migrate")
    assert "PORTAL_ENV" in staging.stderr
    assert_one_line_failure(typo, "migrate")
    assert "PORTAL_SESION_IDLE_MINUTES" in typo.stderr
    assert not cli.database.exists()


def test_a_database_that_does_not_answer_stops_any_command_with_one_line(cli: Cli) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nothing_listens = f"postgres://portal@127.0.0.1:{probe.getsockname()[1]}/portal"
    migrate, practice = cli.run_all(
        [
            (["migrate"], {"DATABASE_URL": nothing_listens}),
            (["create-practice", "--name", "N", "--slug", "n"], {"DATABASE_URL": nothing_listens}),
        ]
    )

    assert_one_line_failure(migrate, "migrate")
    assert "database is not answering" in migrate.stderr
    assert_one_line_failure(practice, "create-practice")
    assert "database is not answering" in practice.stderr


RECORD_EVENTS = """
import asyncio
from models import AuditAction
from portal import db
from portal.services import audit, audit_chain
from portal.settings import Settings

async def main():
    settings = Settings.from_env()
    audit_chain.configure(settings)
    async with db.connected(settings):
        for action in (AuditAction.ACCOUNT_DISABLED, AuditAction.ACCOUNT_ENABLED):
            await audit.record(action, practice_id=None)

asyncio.run(main())
"""


def test_the_operator_verifies_the_audit_trail_and_is_told_which_row_was_changed(
    migrated: Cli,
) -> None:
    # Rows written by the service, with the operator's secret key.
    subprocess.run(  # noqa: S603
        [sys.executable, "-c", RECORD_EVENTS],
        cwd=migrated.directory,
        env=clean_environment(migrated.directory),
        check=True,
        timeout=60,
    )
    north = migrated

    intact = north.run("verify-audit", "--seal")

    assert_ok(intact)
    assert "intact (2 rows checked, 0 not sealed yet" in intact.stdout
    assert intact.stdout.strip().endswith("The audit trail is intact.")
    [(changed,)] = north.rows("SELECT id FROM audit_event WHERE action = 'ACCOUNT_ENABLED'")
    with closing(sqlite3.connect(north.database)) as connection:
        # The trigger refuses; someone who drops it can change the row, and is found out.
        with pytest.raises(sqlite3.DatabaseError, match="cannot be changed"):
            connection.execute("UPDATE audit_event SET client_ip = '10.1.1.1'")
        connection.execute("DROP TRIGGER audit_event_append_only")
        connection.execute("UPDATE audit_event SET client_ip = '10.1.1.1' WHERE id = ?", (changed,))
        connection.commit()

    broken = north.run("verify-audit")

    assert broken.returncode == 1
    assert f"BROKEN: row {changed} (seq 2) was changed" in broken.stdout
    assert (
        broken.stderr.strip()
        == "portal verify-audit: the audit trail was tampered with (see above)"
    )


def test_the_operator_prunes_and_is_told_what_went(north: Cli) -> None:
    pruned = north.run("prune")

    assert_ok(pruned)
    assert "sessions: 0 deleted" in pruned.stdout
    assert "audit events: 0 deleted" in pruned.stdout
    bad = north.run("prune", PORTAL_RETENTION_DAYS="0")
    assert_one_line_failure(bad, "prune")
