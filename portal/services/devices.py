"""What a session's User-Agent says of its device, in a few words, by the
maintained ua-parser rules. Only the summary is stored, never the header."""

from __future__ import annotations

from functools import lru_cache

from ua_parser import parse

MAX_DEVICE_LENGTH = 100


def warm_up() -> None:
    """Compiles the rules, which the first parse would do: half a second of
    CPU that a first sign-in after start must not wait for."""
    device_of("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")


# Parsing runs a few hundred regular expressions; sign-ins from one browser
# repeat one header.
@lru_cache(maxsize=1024)
def device_of(user_agent: str) -> str | None:
    """'Firefox on Windows', 'Mobile Safari on iOS', 'curl'; None when unknown."""
    if not user_agent:
        return None
    parsed = parse(user_agent)
    browser = parsed.user_agent.family if parsed.user_agent else None
    system = parsed.os.family if parsed.os else None
    if browser in (None, "Other"):
        return None
    summary = f"{browser} on {system}" if system not in (None, "Other") else browser
    return summary[:MAX_DEVICE_LENGTH]
