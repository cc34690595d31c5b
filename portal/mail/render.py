"""Renders an email's subject, plain-text and HTML parts from template files.

Subjects are fixed, neutral words: nothing in an inbox list, a lock screen or a
mail log may reveal a therapy relationship or any health detail.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"

SUBJECTS = {
    "invitation": "Your invitation to create an account",
    "staff_invitation": "Your invitation to create an account",
    "email_changed": "Your sign-in email address was changed",
    "verification_code": "Your verification code",
    "password_changed": "Your password was changed",
    "sign_in_settings_changed": "Your sign-in settings changed",
    "sign_in_settings_off": "Your sign-in settings changed",
}

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render(kind: str, context: dict[str, Any]) -> RenderedEmail:
    return RenderedEmail(
        subject=SUBJECTS[kind],
        text=_environment.get_template(f"{kind}.txt").render(context),
        html=_environment.get_template(f"{kind}.html").render(context),
    )
