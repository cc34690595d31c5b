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
    return hmac_sha256(secret_key.encode(), f"{purpose}:{token}".encode())


def hmac_sha256(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 in hex. Requests take several (a session's, a throttle's,
    an audit row's), under a handful of server keys: each key's HMAC state is
    set up once, and a copy of it costs less than keying anew."""
    keyed = _keyed.get(key)
    if keyed is None:
        keyed = _keyed.setdefault(key, hmac.new(key, digestmod=hashlib.sha256))
    mac = keyed.copy()
    mac.update(message)
    return mac.hexdigest()


_keyed: dict[bytes, hmac.HMAC] = {}
