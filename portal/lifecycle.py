"""Stopping in good order: from SIGTERM the process takes no new requests,
lets those in flight finish, stops the mail worker after the message it is
sending, and is gone within the grace period."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Shutdown:
    """When this process was asked to stop, and by when it must be gone."""

    def __init__(self, grace_seconds: float) -> None:
        self.grace_seconds = grace_seconds
        self.deadline: float | None = None
        self._listeners: list[Callable[[], None]] = []

    @property
    def requested(self) -> bool:
        return self.deadline is not None

    def on_request(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def begin(self) -> float:
        """Starts the grace period (once); the deadline, in `time.monotonic()`."""
        if self.deadline is None:
            self.deadline = time.monotonic() + self.grace_seconds
            for listener in self._listeners:
                listener()
        return self.deadline


def watch_stop_signals(shutdown: Shutdown) -> Callable[[], None]:
    """Starts the shutdown as soon as SIGINT or SIGTERM arrives, then passes
    the signal on to the handler already installed (uvicorn's, which stops
    accepting connections and drains them). Returns what undoes this."""
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def handle(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(shutdown.begin)
        handler = previous[sig]
        if callable(handler):
            handler(sig, frame)
        elif handler == signal.SIG_DFL:
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
