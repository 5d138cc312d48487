"""The web front under a real uvicorn on loopback, in a thread of the test process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from tests.support.smtp import free_port
from tests.support.waiting import wait_until


def free_base_url() -> tuple[int, str]:
    """A free loopback port and the base URL the app served there would have."""
    port = free_port()
    return port, f"http://127.0.0.1:{port}"


@contextmanager
def running(app: Any, port: int) -> Iterator[None]:
    """``app`` served on 127.0.0.1:``port`` until the block ends (its lifespan runs on both sides)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), "uvicorn to start")
    assert server.started, "uvicorn did not start"
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(30)
