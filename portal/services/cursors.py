"""Opaque pagination cursors: a kind and a row id, base64url-encoded."""

from __future__ import annotations

import base64
import binascii
import uuid

from portal.services.errors import BadInput


def encode_cursor(kind: str, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> uuid.UUID:
    """The row id in a cursor of this kind; BadInput for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        prefix = f"{kind}:"
        if not text.startswith(prefix):
            raise ValueError(text)
        return uuid.UUID(text.removeprefix(prefix))
    except (ValueError, UnicodeError, binascii.Error):
        raise BadInput("`after` is not a cursor from this list.") from None
