"""Email address syntax, checked with a maintained validator and stored lowercase."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

# An ASCII address of plain characters in a domain that is not
# internationalised (no "xn--" label) comes out of the validator exactly as it
# went in, lowercased, whether it is valid or not; the validator's work, a
# good part of a sign-in's beside the hash, can be skipped for it.
_PLAIN_ADDRESS = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9.-]+")


def normalize_email(raw: str) -> str:
    """The address as stored, for matching ignoring case and surrounding space;
    an address that fails validation is still trimmed and lowercased, so a
    look-up with it simply finds nothing."""
    trimmed = raw.strip()
    lowered = trimmed.lower()
    if trimmed.isascii() and _PLAIN_ADDRESS.fullmatch(lowered) and "xn--" not in lowered:
        return lowered
    return valid_email(raw) or lowered


def valid_email(raw: str) -> str | None:
    """The normalised address, or None when its syntax is invalid."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return result.normalized.lower()
