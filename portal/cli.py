"""The `portal` command: migrate, create practices and staff, serve.

Every command fails with one line on standard error and a non-zero exit code
on bad input, having written nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import NoReturn

from tortoise.transactions import in_transaction

from models import Practice, Role
from portal import db, gauges, metrics
from portal.logs import configure_logging
from portal.mail import delivery
from portal.mail.mailbox import newest_letters
from portal.services import (
    accounts,
    audit_chain,
    mfa,
    passwords,
    practices,
    retention,
    staff,
)
from portal.services.errors import ServiceError
from portal.settings import Settings, SettingsError

DEMO_SLUG = "demo"
DEMO_PRACTICE_NAME = "Demo Practice"
DEMO_ADMIN_EMAIL = "admin@demo.example"


class CommandError(Exception):
    """A failure to report as one line."""


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes are reported in one line too (`--help` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _run(settings: Settings, work: Callable[[], Awaitable[None]]) -> None:
    async def connected_work() -> None:
        passwords.configure(settings)
        audit_chain.configure(settings)
        async with db.connected(settings):
            await work()

    asyncio.run(connected_work())


def _migrate(settings: Settings, args: argparse.Namespace) -> None:
    asyncio.run(db.migrate(settings.database_url))
    print("Database is up to date.")


def _create_practice(settings: Settings, args: argparse.Namespace) -> None:
    async def work() -> None:
        practice = await practices.create_practice(args.name, args.slug)
        print(f"Created practice {practice.slug!r}.")

    _run(settings, work)


def _read_password() -> str:
    from_env = os.environ.get("PORTAL_PASSWORD")
    if from_env is not None:
        return from_env
    if not sys.stdin.isatty():
        raise CommandError("set PORTAL_PASSWORD or run in a terminal to be asked for a password")
    first = getpass.getpass("Password: ")
    second = getpass.getpass("Password again: ")
    if first != second:
        raise CommandError("the two passwords differ")
    return first


def _create_user(settings: Settings, args: argparse.Namespace) -> None:
    password = _read_password()

    async def work() -> None:
        account = await accounts.create_staff_account(
            args.practice, args.email, Role(args.role), password
        )
        print(f"Created {account.role.value} account {account.email} in {args.practice!r}.")

    _run(settings, work)


def _set_user_enabled(enabled: bool) -> Callable[[Settings, argparse.Namespace], None]:
    def handler(settings: Settings, args: argparse.Namespace) -> None:
        async def work() -> None:
            account = await staff.set_staff_enabled(args.practice, args.email, enabled)
            state = "enabled" if account.disabled_at is None else "disabled"
            print(f"{account.role.value} account {account.email} in {args.practice!r} is {state}.")

        _run(settings, work)

    return handler


def _reset_mfa(settings: Settings, args: argparse.Namespace) -> None:
    async def work() -> None:
        account = await mfa.reset_mfa_by_operator(args.practice, args.email)
        print(f"Two-step verification is off for {account.email} in {args.practice!r}.")

    _run(settings, work)


def _ensure_demo(settings: Settings, args: argparse.Namespace) -> None:
    """On an empty database, creates a demo practice and its admin and prints
    the admin's password once; otherwise does nothing and prints nothing secret."""

    async def work() -> None:
        sign_in = f"{settings.base_url}/{DEMO_SLUG}/staff/sign-in"
        if await Practice.exists():
            print("Using the existing database (no demo account created).")
            if await Practice.exists(slug=DEMO_SLUG):
                print(f"Staff sign-in: {sign_in} (as {DEMO_ADMIN_EMAIL}, with what was")
                print("  printed when the demo was created; `portal create-user` adds staff)")
            return
        password = "-".join(secrets.token_hex(4) for _ in range(4))
        async with in_transaction():
            await practices.create_practice(DEMO_PRACTICE_NAME, DEMO_SLUG)
            await accounts.create_staff_account(DEMO_SLUG, DEMO_ADMIN_EMAIL, Role.ADMIN, password)
        print("Created a demo practice. Sign in with (shown only this once):")
        print(f"  practice: {DEMO_SLUG}")
        print(f"  email:    {DEMO_ADMIN_EMAIL}")
        print(f"  password: {password}")
        print(f"Staff sign-in: {sign_in}")

    _run(settings, work)


def _deliver_mail(settings: Settings, args: argparse.Namespace) -> None:
    async def work() -> None:
        if args.once:
            outcome = await delivery.drain(settings)
            print(f"Sent {outcome.sent}, to retry {outcome.retried}, failed {outcome.failed}.")
            return
        db.availability.watch()
        worker = delivery.DeliveryWorker(settings)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stopped.set)
        print(f"Delivering mail {_mail_destination(settings)}; Ctrl+C to stop.", flush=True)
        if settings.metrics_address is not None:
            metrics.serve(settings.metrics_address)
        # Sampled when someone reads them: this listener, or `portal serve`'s
        # through a shared PROMETHEUS_MULTIPROC_DIR.
        sampling = (
            asyncio.create_task(gauges.run_forever())
            if os.environ.get(metrics.MULTIPROC_VARIABLE)
            else None
        )
        worker.start()
        await stopped.wait()
        if sampling is not None:
            sampling.cancel()
            metrics.process_ended()
        # The message being sent may finish within the grace period; the rest is handed back.
        await worker.stop(time.monotonic() + settings.shutdown_grace_seconds)

    _run(settings, work)


def _prune(settings: Settings, args: argparse.Namespace) -> None:
    async def work() -> None:
        pruned = await retention.prune(settings)
        for kind, count in pruned.counts.items():
            print(f"{kind.replace('_', ' ')}: {count} deleted")

    _run(settings, work)


def _verify_audit(settings: Settings, args: argparse.Namespace) -> None:
    intact = True

    async def work() -> None:
        nonlocal intact
        if args.seal:
            await audit_chain.seal()
        verification = await audit_chain.verify()
        for report in verification.chains:
            practice = "no practice" if report.chain == audit_chain.NO_PRACTICE else report.chain
            state = f"BROKEN: {report.problem}" if report.problem else "intact"
            print(
                f"practice {practice}: {state} ({report.checked} rows checked,"
                f" {report.pending} not sealed yet, {report.legacy} from before the chain)"
            )
        intact = verification.intact

    _run(settings, work)
    if not intact:
        raise CommandError("the audit trail was tampered with (see above)")
    print("The audit trail is intact.")


def _mail_destination(settings: Settings) -> str:
    if settings.smtp_url:
        return "through the SMTP server in SMTP_URL"
    return f"as .eml files into {settings.mail_dir}/ (SMTP_URL is not set)"


def _trusted_documents(settings: Settings, args: argparse.Namespace) -> None:
    from graph.trusted import manifest

    documents = []
    for name in args.files:
        try:
            documents.append(Path(name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as problem:
            raise CommandError(f"{name} cannot be read ({type(problem).__name__})") from None
    print(json.dumps(manifest(documents), indent=2, ensure_ascii=False))


def _mail(settings: Settings, args: argparse.Namespace) -> None:
    if args.count < 1:
        raise CommandError("--count must be at least 1")
    letters = newest_letters(settings.mail_dir, args.count, args.to)
    if not letters:
        where = "SMTP_URL is set: mail goes to that server" if settings.smtp_url else "no mail"
        print(f"{where} (looked in {settings.mail_dir}/)")
        return
    for letter in letters:
        sent = letter.sent_at.isoformat(sep=" ", timespec="seconds") if letter.sent_at else "?"
        print(f"{sent}  to {letter.to}  {letter.subject}")
        print(f"  file: {letter.path}")
        for link in letter.links:
            print(f"  link: {link}")
        for code in letter.codes:
            print(f"  code: {code}")
        if args.body:
            print()
            print("\n".join(f"    {line}" for line in letter.text.rstrip().splitlines()))
        print()


def _reachable(host: str) -> str:
    """An address a browser on this machine can open for a bind address."""
    if host in ("0.0.0.0", "", "::"):  # noqa: S104 - not a bind address
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    if settings.trusted_documents is not None:
        from graph.view import GraphQLEndpoint

        # A manifest that does not load, or a document this schema refuses,
        # stops the start here, in one line, not in each worker.
        GraphQLEndpoint(settings)

    own_address = f"http://{_reachable(args.host)}:{args.port}"
    if not os.environ.get("PORTAL_BASE_URL"):
        # The links in emails open this service's own pages (read by the
        # workers uvicorn starts, which build their settings from the environment).
        os.environ["PORTAL_BASE_URL"] = own_address
    if not settings.is_production:
        print(f"GraphiQL: {own_address}/graphql")
    print(f"Web app: {os.environ['PORTAL_BASE_URL']}/<practice>/staff/sign-in for staff")
    if settings.mail_worker:
        print(f"Mail: delivered {_mail_destination(settings)}")
    else:
        print("Mail: queued for a separate `portal deliver-mail` (PORTAL_MAIL_WORKER=off)")
    if settings.metrics_address is not None:
        # One listener for every worker (they write to the multi-process
        # directory), apart from the public port.
        metrics.serve(settings.metrics_address)
        host, port = settings.metrics_address
        print(f"Metrics: http://{host}:{port}/metrics")
    uvicorn.run(
        "portal.app:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        log_config=None,  # keep our handlers: one line per request, JSON in production
        # The edge decides whose X-Forwarded-For to believe (PORTAL_TRUSTED_PROXIES);
        # uvicorn's own rewriting (of anything from 127.0.0.1) would pre-empt it.
        proxy_headers=False,
        server_header=False,
        # Requests in flight get the grace period less a second, which the
        # mail worker (stopping since the signal) and the pool close use.
        timeout_graceful_shutdown=max(settings.shutdown_grace_seconds - 1, 1),
    )


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="portal", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    migrate = commands.add_parser("migrate", help="apply the database migrations")
    migrate.set_defaults(handler=_migrate)

    practice = commands.add_parser("create-practice", help="create a practice (tenant)")
    practice.add_argument("--name", required=True)
    practice.add_argument("--slug", required=True, help="lowercase letters, digits, hyphens")
    practice.set_defaults(handler=_create_practice)

    user = commands.add_parser(
        "create-user",
        help="create a staff account; the password comes from PORTAL_PASSWORD or a prompt",
    )
    user.add_argument("--practice", required=True, help="the practice's slug")
    user.add_argument("--email", required=True)
    user.add_argument("--role", required=True, choices=["ADMIN", "CLINICIAN"])
    user.set_defaults(handler=_create_user)

    for name, enabled, what in (
        ("disable-user", False, "disable a staff account and end its sessions"),
        ("enable-user", True, "let a disabled staff account sign in again"),
    ):
        switch = commands.add_parser(name, help=what)
        switch.add_argument("--practice", required=True, help="the practice's slug")
        switch.add_argument("--email", required=True)
        switch.set_defaults(handler=_set_user_enabled(enabled))

    reset = commands.add_parser(
        "reset-mfa",
        help="turn off an account's two-step verification (a locked-out ADMIN); ends its sessions",
    )
    reset.add_argument("--practice", required=True, help="the practice's slug")
    reset.add_argument("--email", required=True)
    reset.set_defaults(handler=_reset_mfa)

    demo = commands.add_parser(
        "ensure-demo", help="on an empty database, create a demo practice and admin"
    )
    demo.set_defaults(handler=_ensure_demo)

    deliver = commands.add_parser("deliver-mail", help="deliver queued mail until stopped")
    deliver.add_argument("--once", action="store_true", help="deliver what is due, then exit")
    deliver.set_defaults(handler=_deliver_mail)

    prune = commands.add_parser(
        "prune",
        help="delete what has no further use after PORTAL_RETENTION_DAYS, and audit events"
        " after PORTAL_AUDIT_RETENTION_DAYS",
    )
    prune.set_defaults(handler=_prune)

    verify = commands.add_parser(
        "verify-audit",
        help="check every practice's audit chain; names the first row changed, removed or"
        " inserted out of order",
    )
    verify.add_argument(
        "--seal", action="store_true", help="seal rows not yet in their chain before checking"
    )
    verify.set_defaults(handler=_verify_audit)

    documents = commands.add_parser(
        "trusted-documents",
        help="print the trusted-documents manifest of GraphQL files (one document each)",
    )
    documents.add_argument("files", nargs="+", metavar="FILE")
    documents.set_defaults(handler=_trusted_documents)

    mail = commands.add_parser(
        "mail",
        help="show the newest mail written to PORTAL_MAIL_DIR (no SMTP_URL), decoded, "
        "with its links and codes",
    )
    mail.add_argument("--count", type=int, default=5, help="how many (default 5)")
    mail.add_argument("--to", help="only mail to this address")
    mail.add_argument("--body", action="store_true", help="print each message's text too")
    mail.set_defaults(handler=_mail)

    serve = commands.add_parser("serve", help="run the service with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(handler=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        configure_logging(settings)
        args.handler(settings, args)
    except (SettingsError, ServiceError, CommandError) as problem:
        print(f"portal {args.command}: {problem}", file=sys.stderr)
        return 1
    except Exception as problem:
        if not db.is_unavailable(problem):
            raise
        print(
            f"portal {args.command}: the database is not answering ({db.cause_name(problem)})",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
