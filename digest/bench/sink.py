"""A fast SMTP sink on loopback, in a process of its own: what the send benchmarks send to."""

from __future__ import annotations

import asyncio
import multiprocessing
import re
from pathlib import Path
from typing import Any

MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


class _SinkProtocol(asyncio.Protocol):
    """Just enough SMTP to accept mail as fast as the client sends it; counts messages, and writes
    each message's Message-ID as a line to ``ids`` (an unbuffered file) if given."""

    def __init__(self, counter: Any, ids: Any) -> None:
        self.counter = counter
        self.ids = ids
        self.buffer = b""
        self.in_data = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    return
                if self.ids is not None:
                    head = self.buffer[: self.buffer.find(b"\r\n\r\n", 0, end + 2)]
                    found = MESSAGE_ID.search(head)
                    self.ids.write((found.group(1) if found else b"-") + b"\n")
                self.buffer = self.buffer[end + 5 :]
                self.in_data = False
                with self.counter.get_lock():
                    self.counter.value += 1
                self.transport.write(b"250 OK queued\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return
            line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.transport.write(b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n")
            elif verb == b"DATA":
                self.in_data = True
                self.transport.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.transport.write(b"221 bye\r\n")
                self.transport.close()
                return
            else:
                self.transport.write(b"250 OK\r\n")


def _run_sink(port: Any, counter: Any, ready: Any, ids_path: str | None) -> None:
    ids = open(ids_path, "ab", buffering=0) if ids_path else None  # noqa: SIM115 (open while serving)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _SinkProtocol(counter, ids), "127.0.0.1", 0)
        port.value = server.sockets[0].getsockname()[1]
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


class Sink:
    """A fast SMTP sink on loopback in a child process; ``received`` counts accepted messages. Given
    ``ids``, a file path, it writes each message's Message-ID to it as a line ("-" for a message
    without one), as the message is accepted."""

    def __init__(self, ids: Path | None = None) -> None:
        self._ids = ids

    def __enter__(self) -> Sink:
        context = multiprocessing.get_context("spawn")
        self._port = context.Value("i", 0)
        self._counter = context.Value("q", 0)
        ready = context.Event()
        self._process = context.Process(
            target=_run_sink,
            args=(self._port, self._counter, ready, str(self._ids) if self._ids else None),
            daemon=True,
        )
        self._process.start()
        if not ready.wait(30):
            raise RuntimeError("the benchmark's SMTP sink did not start")
        return self

    @property
    def port(self) -> int:
        return int(self._port.value)

    @property
    def received(self) -> int:
        return int(self._counter.value)

    def __exit__(self, *_exc: object) -> None:
        self._process.terminate()
        self._process.join(5)
