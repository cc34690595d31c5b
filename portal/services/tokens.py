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
    keyed = _keyed.get(secret_key)
    if keyed is None:
        keyed = _keyed.setdefault(
            secret_key, hmac.new(secret_key.encode(), digestmod=hashlib.sha256)
        )
    mac = keyed.copy()
    mac.update(f"{purpose}:{token}".encode())
    return mac.hexdigest()


# Several per request (a session's, a throttle's): each server key's HMAC
# state is set up once, and a copy of it costs less than keying anew.
_keyed: dict[str, hmac.HMAC] = {}
