"""Reading what the test SMTP server received, as a patient would."""

from __future__ import annotations

import re
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content: str = part.get_content()  # type: ignore[attr-defined]
    return content


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    content: str = part.get_content()  # type: ignore[attr-defined]
    return content


def link_in(message: EmailMessage) -> str:
    found = re.search(r"https://portal\.test/\S+", text_of(message))
    assert found, text_of(message)
    return found.group(0)


def token_in(message: EmailMessage) -> str:
    return parse_qs(urlsplit(link_in(message)).query)["token"][0]


def code_in(message: EmailMessage) -> str:
    """The six digits of a verification code, read as the patient would."""
    codes = re.findall(r"\b\d{6}\b", text_of(message))
    assert len(codes) == 1, text_of(message)
    return str(codes[0])


def another_code(code: str) -> str:
    """A six-digit code other than the given one."""
    return f"{(int(code) + 1) % 10**6:06d}"
