"""`digest inbound fetch` killed with SIGKILL at random points, 20 times, over a real IMAP server:
every message is handled once, answered at most once, and none is lost or left behind."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from digest.store.models import InboundMessage
from tests.integration.test_listener import wire
from tests.integration.test_mail_commands import COMMANDS, letter
from tests.support.imap import dovecot
from tests.support.store import migrated_sessions

KILLS = 20
PER_RUN = 6  # new messages before each run, so each run has some to handle when it is killed


def test_fetch_killed_at_random_points_handles_every_message_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    sessions = migrated_sessions(url)
    outbox = tmp_path / "outbox"
    rng = random.Random(20261204)
    with dovecot() as server:
        env = {
            **{key: value for key, value in os.environ.items() if not key.startswith("DIGEST_")},
            "DIGEST_DATABASE_URL": url,
            "DIGEST_INBOUND_IMAP_URL": server.url(),
            "DIGEST_COMMANDS_ADDRESS": COMMANDS,
            "DIGEST_MAIL_FROM": "digest@digest.example.org",
            "DIGEST_OUTBOX_DIR": str(outbox),
        }
        midway = 0
        sent = 0
        for run in range(KILLS + 1):
            batch = [wire(letter(f"r{run:02d}m{number}@example.org", "help")) for number in range(PER_RUN)]
            server.deliver(*batch)
            sent += PER_RUN
            before, answers_before = server.count("digest-done"), _answered(outbox)
            child = subprocess.Popen(
                [sys.executable, "-m", "digest", "inbound", "fetch"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            if run < KILLS:
                if run % 2:  # anywhere, start-up included
                    time.sleep(rng.uniform(0.3, 2.0))
                else:  # once it handles: half the kills land between messages or inside one
                    deadline = time.monotonic() + 30
                    while (
                        _answered(outbox) == answers_before
                        and child.poll() is None
                        and time.monotonic() < deadline
                    ):
                        time.sleep(0.005)
                    time.sleep(rng.uniform(0, 0.15))
                child.send_signal(signal.SIGKILL)
            _, errors = child.communicate(timeout=120)
            if run == KILLS:
                assert child.returncode == 0, errors.decode()
            elif before < server.count("digest-done") < sent:
                midway += 1
        done, waiting = server.count("digest-done"), server.count("INBOX")
    with sessions() as session:
        rows = session.scalar(select(func.count()).select_from(InboundMessage))
    answered = Counter(
        path.read_bytes().split(b"\r\nTo: ", 1)[1].split(b"\r\n", 1)[0] for path in outbox.glob("*.eml")
    )
    assert (done, waiting, rows) == (sent, 0, sent)  # each handled once: none lost, none twice
    assert max(answered.values()) == 1  # no answer twice
    assert len(answered) >= sent - KILLS  # an answer is lost only to a kill between commit and send
    assert midway > 0, "no kill landed while messages were handled; the test proved nothing"


def _answered(outbox: Path) -> int:
    return len(list(outbox.glob("*.eml"))) if outbox.exists() else 0
