"""Faults to put between the service and what it depends on: a TCP proxy that
can stop answering the way a stopped database does, or go silent the way a
dropped route or a NAT that forgot a connection does; mail servers that stall."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from tests.conftest import free_port


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    silent: bool = False

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            writer.transport.abort()


class TcpProxy:
    """Forwards 127.0.0.1:`port` to a target, on a thread of its own.

    - `refuse()`: new connections are refused (nothing listens), as when the
      server is down; existing ones go on until the server ends them.
    - `accept()`: listens again, on the same port.
    - `go_silent()`: every open connection stays open but nothing crosses it
      any more, in either direction, and nobody is told; new ones work.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.links: set[_Link] = set()
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.Server | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def _call(self, work: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=10)

    def accept(self) -> None:
        async def listen() -> None:
            if self.server is None:
                self.server = await asyncio.start_server(
                    self._link, "127.0.0.1", self.port, reuse_address=True
                )

        self._call(listen())

    def refuse(self) -> None:
        async def close() -> None:
            if self.server is not None:
                self.server.close()
                self.server = None

        self._call(close())

    def go_silent(self) -> None:
        async def silence() -> None:
            for link in self.links:
                link.silent = True

        self._call(silence())

    def close(self) -> None:
        async def shut() -> None:
            if self.server is not None:
                self.server.close()
            for link in list(self.links):
                link.abort()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            # Aborted links end their tasks by themselves; silent ones need telling.
            _, pending = await asyncio.wait(others, timeout=0.5) if others else (set(), set())
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        self._call(shut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        self.links.add(link)
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, link), self._pipe(up_reader, writer, link)
            )
        finally:
            self.links.discard(link)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        try:
            while data := await reader.read(65536):
                if not link.silent:
                    writer.write(data)
                    await writer.drain()
        except OSError:
            pass
        if not link.silent:
            # One side ended: so does the other, as on a real connection.
            link.abort()


class SilentSmtpServer:
    """Accepts connections and never says a word: a mail server that hangs."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()
        for connection in self.connections:
            connection.close()
