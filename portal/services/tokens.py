"""Secret tokens: generated with `secrets`, stored only as keyed hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32  # 256 bits


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def keyed_hash(secret_key: str, purpose: str, token: str) -> str:
    """HMAC-SHA256 of the token, bound to its purpose so a session token can
    never be replayed as, say, a reset token."""
    message = f"{purpose}:{token}".encode()
    return hmac.digest(secret_key.encode(), message, hashlib.sha256).hex()
