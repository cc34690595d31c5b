"""Email address syntax, checked with a maintained validator and stored lowercase."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


def normalize_email(raw: str) -> str:
    """The address as stored, for matching ignoring case and surrounding space;
    an address that fails validation is still trimmed and lowercased, so a
    look-up with it simply finds nothing."""
    return valid_email(raw) or raw.strip().lower()


def valid_email(raw: str) -> str | None:
    """The normalised address, or None when its syntax is invalid."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return result.normalized.lower()
