"""Reading the mail the service wrote as `.eml` files (no SMTP_URL), for
`portal mail`: the files are MIME, quoted-printable, so a link or code read
from them with `less` is wrong (`=3D`, soft line breaks); decoded here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

LINK = re.compile(r"https?://[^\s<>\"']+")
# The verification code: six digits on a line of their own.
CODE = re.compile(r"^\s*(\d{6})\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Letter:
    path: Path
    sent_at: datetime | None
    to: str
    subject: str
    text: str
    links: list[str]
    codes: list[str]


def read_letter(path: Path) -> Letter:
    with path.open("rb") as file:
        message = BytesParser(policy=policy.default).parse(file)
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    try:
        sent_at = parsedate_to_datetime(str(message["Date"])) if message["Date"] else None
    except (TypeError, ValueError):
        sent_at = None
    return Letter(
        path=path,
        sent_at=sent_at,
        to=str(message["To"] or ""),
        subject=str(message["Subject"] or ""),
        text=text,
        links=LINK.findall(text),
        codes=CODE.findall(text),
    )


def newest_letters(directory: Path, count: int, to: str | None = None) -> list[Letter]:
    """The `count` newest letters in `directory`, newest first; only those to
    `to` (ignoring case) when given."""
    if not directory.is_dir():
        return []
    paths = sorted(directory.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True)
    letters = []
    for path in paths:
        letter = read_letter(path)
        if to is not None and to.strip().lower() not in letter.to.lower():
            continue
        letters.append(letter)
        if len(letters) == count:
            break
    return letters
