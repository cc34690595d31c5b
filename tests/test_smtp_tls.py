"""Mail leaves over TLS: STARTTLS when the server offers it, TLS from the
start with smtps://, and never STARTTLS when the URL turns it off."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession

from portal.mail.transports import SmtpTransport
from tests.conftest import free_port

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="openssl makes the test certificate"
)


class TlsMailbox:
    def __init__(self) -> None:
        self.received: list[tuple[str, bool]] = []

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        transport = server.transport
        encrypted = transport is not None and transport.get_extra_info("ssl_object") is not None
        self.received.append((",".join(envelope.rcpt_tos), encrypted))
        return "250 OK"


@pytest.fixture
def certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A certificate for localhost that this test process trusts."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


@pytest.fixture
def starttls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[int, TlsMailbox]]:
    mailbox, port = TlsMailbox(), free_port()
    controller = Controller(
        mailbox,
        hostname="localhost",
        port=port,
        tls_context=server_context(certificate),
        require_starttls=True,
    )
    controller.start()
    yield port, mailbox
    controller.stop()


def a_message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Client Portal <no-reply@portal.test>"
    message["To"] = "grace@mail.example"
    message["Subject"] = "Your verification code"
    message.set_content("123456")
    return message


async def test_starttls_is_used_when_the_server_offers_it(
    starttls_server: tuple[int, TlsMailbox],
) -> None:
    port, mailbox = starttls_server

    await SmtpTransport(f"smtp://localhost:{port}", 10).send(a_message())

    assert mailbox.received == [("grace@mail.example", True)]


async def test_starttls_off_in_the_url_sends_nothing_to_a_server_that_requires_it(
    starttls_server: tuple[int, TlsMailbox],
) -> None:
    port, mailbox = starttls_server

    with pytest.raises(Exception):  # noqa: B017 - the server's refusal, whatever its class
        await SmtpTransport(f"smtp://localhost:{port}?starttls=off", 10).send(a_message())

    assert mailbox.received == []


async def test_smtps_speaks_tls_from_the_start(certificate: tuple[Path, Path]) -> None:
    mailbox, port = TlsMailbox(), free_port()
    controller = Controller(
        mailbox, hostname="localhost", port=port, ssl_context=server_context(certificate)
    )
    controller.start()
    try:
        await SmtpTransport(f"smtps://localhost:{port}", 10).send(a_message())
    finally:
        controller.stop()

    assert mailbox.received == [("grace@mail.example", True)]
