"""Hostile HTTP servers on loopback, written on raw sockets so they can break HTTP on purpose, and a
way to run `digest scrape` in a child process and read how long it took and how much memory it grew."""

from __future__ import annotations

import gzip
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Script = Callable[[socket.socket, bytes], None]


class HostileServer:
    """Accepts connections on 127.0.0.1 and hands each, with the request head it sent, to ``script``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._closed = threading.Event()

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def url(self, path: str = "/feed") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> HostileServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            try:
                while b"\r\n\r\n" not in head:
                    data = conn.recv(65536)
                    if not data:
                        return
                    head += data
                self.requests.append(head)
                self.script(conn, head)
            except OSError:
                return


def trickled_head(conn: socket.socket, _head: bytes) -> None:
    """A status line, then header bytes one at a time, forever: every read succeeds, none ends."""
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    while True:
        for byte in b"X-Slow: y\r\n":
            conn.sendall(bytes([byte]))
            time.sleep(0.2)


def processing_forever(conn: socket.socket, _head: bytes) -> None:
    """``102 Processing`` every half second, and never a final answer."""
    while True:
        conn.sendall(b"HTTP/1.1 102 Processing\r\n\r\n")
        time.sleep(0.5)


def answering(body: bytes, headers: dict[str, str], status: str = "200 OK") -> Script:
    """An answer with ``body`` sent as is under ``headers``, its end marked by closing the connection
    (no Content-Length), so only the caps applied while reading can stop it."""
    fields = {"Connection": "close", **headers}
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{name}: {value}\r\n" for name, value in fields.items())

    def script(conn: socket.socket, _head: bytes) -> None:
        conn.sendall(head.encode() + b"\r\n" + body)

    return script


def gzip_of_zeros(size: int) -> bytes:
    """A gzip member that inflates to ``size`` zero bytes (a multiple of 1 MiB), built in well under a
    second: one MiB of zeros is compressed once after a full flush, and its output repeated."""
    block = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    piece = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    end = packer.flush()
    crc = 0
    for _ in range(size >> 20):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + piece * (size >> 20) + end + struct.pack("<II", crc, size & 0xFFFFFFFF)


def stacked_bomb(size: int) -> bytes:
    """gzip inside gzip: a few kilobytes on the wire, ``size`` bytes once both layers are undone."""
    return gzip.compress(gzip_of_zeros(size), 9)


@dataclass(frozen=True)
class ChildRun:
    """How a child process went: its exit status, output, wall time and peak resident memory."""

    returncode: int
    output: str
    seconds: float
    peak_bytes: int


def run_measured(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> ChildRun:
    """Run ``python -m digest ARGS`` and measure it (peak RSS from the kernel's accounting of it alone)."""
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-m", "digest", *args],
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    timer = threading.Timer(timeout, child.kill)
    timer.start()
    try:
        output = child.stdout.read().decode(errors="replace") if child.stdout else ""
        _pid, status, usage = os.wait4(child.pid, 0)
    finally:
        timer.cancel()
    child.returncode = os.waitstatus_to_exitcode(status)
    return ChildRun(child.returncode, output, time.monotonic() - started, usage.ru_maxrss * 1024)
