"""Waiting for what another thread or process does, within a bound."""

from __future__ import annotations

import time
from collections.abc import Callable

WAIT = 60.0  # seconds any awaited event may take before the test fails


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"waited {WAIT:g} s for {what}"
        time.sleep(0.05)
