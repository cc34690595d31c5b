"""Where delivered mail goes: an SMTP server, or .eml files for local work."""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from portal.settings import Settings

logger = logging.getLogger("portal.mail")


class Transport(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class SmtpTransport:
    """SMTP via aiosmtplib: `smtps://` is TLS from the start; on `smtp://`,
    STARTTLS is used whenever the server offers it, unless `?starttls=off`."""

    def __init__(self, url: str, timeout_seconds: float) -> None:
        parts = urlsplit(url)
        self.timeout_seconds = timeout_seconds
        query = parse_qs(parts.query)
        self.hostname = parts.hostname or "localhost"
        self.use_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.use_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        starttls_off = query.get("starttls", [""])[0].lower() in ("off", "false", "0", "no")
        self.start_tls: bool | None = False if (starttls_off or self.use_tls) else None

    async def send(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            timeout=self.timeout_seconds,
        )


class FileTransport:
    """Writes each message as an .eml file, so mail works offline."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: EmailMessage) -> None:
        path = self.directory / f"{message['Message-ID'].strip('<>').split('@')[0]}.eml"
        await asyncio.to_thread(self._write, path, bytes(message))
        logger.info("mail written to %s", path)

    def _write(self, path: Path, content: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def transport_for(settings: Settings) -> Transport:
    if settings.smtp_url:
        return SmtpTransport(settings.smtp_url, settings.smtp_timeout_seconds)
    return FileTransport(settings.mail_dir)
