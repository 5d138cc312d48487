"""Kill the sender with SIGKILL at random points, again and again, on the default SMTP settings (four
connections): no digest is lost, and a digest arrives twice only when a kill fell between the
server's 250 and the ledger commit, as logged; one kill repeats at most one digest.

Once with every run on the same day (the digests of 150 subscribers take several runs to send), and
once with each run a day later than the one before; the last two runs are left to finish."""

from __future__ import annotations

import asyncio
import email
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from digest.bench.data import warm_kernels
from digest.store import schema
from digest.store.engine import Database
from digest.store.models import Delivery
from tests.support.store import add_subscriber, ingest_fixture

KILLS = 12  # across days: each kill a day, enough for missed days to be covered both ways
MANY_KILLS = 30
SUBSCRIBERS = 30
NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


class SlowSink:
    """Accepts every message after a short pause, so that kills land mid-send."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received: list[tuple[str, str]] = []
        self.run = 0  # the sender run now going
        self.arrivals: dict[str, list[int]] = {}  # the runs during which each Message-ID arrived

    async def handle_DATA(self, server, session, envelope) -> str:
        await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content)
        self.received.append((message["Message-ID"], envelope.rcpt_tos[0]))
        self.arrivals.setdefault(message["Message-ID"], []).append(self.run)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def kill_and_rerun(
    migrated_url: str,
    sessions,
    tmp_path: Path,
    subscribers: int,
    delay: float,
    day_of_run,
    kills: int = KILLS,
) -> tuple[list[Delivery], Counter[str], list[str]]:
    """Start `digest send` ``kills`` times and SIGKILL it at a random point, then run it to the end
    twice. Returns the ledger, the copies of each Message-ID the server accepted, and each run's
    output. Checks that every second copy was logged, and that no kill caused more than one."""
    warm_kernels()  # no killed child dies while compiling it
    ingest_fixture(sessions, seen=NOW - timedelta(hours=1))
    for number in range(subscribers):
        add_subscriber(sessions, f"reader{number:03d}@example.org", interests="", send_hour=0)
    sink = SlowSink(delay)
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("DIGEST_")},
        "DIGEST_DATABASE_URL": migrated_url,
        "DIGEST_SMTP_URL": f"smtp://127.0.0.1:{port}",
        "DIGEST_CLAIM_BATCH": "4",
        "DIGEST_CLAIM_LEASE": "1",  # a killed run's claims are free by the time the next one looks
        "DIGEST_SEND_EMPTY_DIGEST": "true",
    }
    rng = random.Random(20261124)
    logs: list[str] = []
    try:
        for run in range(kills + 2):
            sink.run = run
            log_path = tmp_path / f"run{run}.log"
            with log_path.open("wb") as log:
                child = subprocess.Popen(
                    [sys.executable, "-m", "digest", "send", "--now", day_of_run(run).isoformat()],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                if run < kills:
                    if run % 2:  # anywhere, start-up included
                        time.sleep(rng.uniform(0.3, 1.5))  # start-up takes about 1 s
                    else:  # once it sends: however slow the start-up, half the kills land mid-send
                        before = len(sink.received)
                        deadline = time.monotonic() + 30
                        while (
                            len(sink.received) == before
                            and child.poll() is None
                            and time.monotonic() < deadline
                        ):
                            time.sleep(0.01)
                        time.sleep(rng.uniform(0, 1.0))
                    child.send_signal(signal.SIGKILL)
                child.wait(timeout=120)
            logs.append(log_path.read_text(encoding="utf-8", errors="replace"))
            if run >= kills:
                assert child.returncode == 0, logs[-1]
    finally:
        controller.stop()
    with sessions() as session:
        rows = list(session.scalars(select(Delivery)))
    copies = Counter(message_id for message_id, _ in sink.received)
    logged = "\n".join(logs)
    for message_id, count in copies.items():
        if count > 1:
            assert f"same Message-ID {message_id}" in logged, f"{message_id} arrived {count} times unlogged"
    assert any("left mid-send" in log for log in logs), "no kill landed mid-send; the test proved nothing"
    # Every copy but the last was sent again, because the run it arrived in was killed before
    # recording it: count each such copy against that run.
    repeated_by_kill = Counter(run for runs in sink.arrivals.values() for run in runs[:-1])
    assert all(run < kills for run in repeated_by_kill), "a run that was not killed sent a digest twice"
    assert max(repeated_by_kill.values(), default=0) <= 1, (
        f"one kill repeated several digests: {repeated_by_kill}"
    )
    return rows, copies, logs


def test_sigkill_at_random_points_loses_no_digest(migrated_url: str, sessions, tmp_path: Path) -> None:
    """One day's digests for 150 subscribers, the sender killed 30 times while sending them."""
    rows, copies, _ = kill_and_rerun(migrated_url, sessions, tmp_path, 150, 0.03, lambda run: NOW, MANY_KILLS)
    assert len(rows) == 150 and {row.status for row in rows} == {"sent"}
    assert set(copies) == {row.message_id for row in rows}  # every digest arrived, under one Message-ID


def test_sigkill_across_days_leaves_one_digest_covering_each_missed_day(
    migrated_url: str, sessions, tmp_path: Path
) -> None:
    """Each run a day later: a digest a kill kept from going out before the next day's was planned
    is covered by that next one ("superseded"); every other digest was sent."""
    rows, copies, _ = kill_and_rerun(
        migrated_url, sessions, tmp_path, SUBSCRIBERS, 0.02, lambda run: NOW + timedelta(days=run)
    )
    days = {row.digest_date for row in rows}
    assert len(rows) == SUBSCRIBERS * len(days) and len(days) > KILLS // 2
    assert {row.status for row in rows} <= {"sent", "superseded"}
    assert {row.status for row in rows if row.digest_date == max(days)} == {"sent"}
    assert set(copies) == {row.message_id for row in rows if row.status == "sent"}


@pytest.mark.postgres
def test_four_senders_on_postgresql_one_killed_midway_lose_nothing(postgres_url: str, tmp_path: Path) -> None:
    """Four `digest send` processes at once share a day's 400 digests; one is killed by SIGKILL while
    it sends, and the others, then the next run, take over its claims after their lease."""
    database = Database.open(postgres_url)
    schema.upgrade(database.engine)
    sessions = database.sessions
    warm_kernels()  # no killed child dies while compiling it
    ingest_fixture(sessions, seen=NOW - timedelta(hours=1))
    for number in range(400):
        add_subscriber(sessions, f"reader{number:03d}@example.org", interests="", send_hour=0)
    sink = SlowSink(0.005)
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("DIGEST_")},
        "DIGEST_DATABASE_URL": postgres_url,
        "DIGEST_SMTP_URL": f"smtp://127.0.0.1:{controller.port}",
        "DIGEST_CLAIM_BATCH": "10",
        "DIGEST_CLAIM_LEASE": "2",
    }
    command = [sys.executable, "-m", "digest", "send", "--now", NOW.isoformat()]
    logs = [tmp_path / f"sender{number}.log" for number in range(5)]
    try:
        senders = [
            subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
            for log in logs[:4]
        ]
        deadline = time.monotonic() + 60
        while not _holds_claims(sessions, senders[0].pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(random.uniform(0, 0.3))
        senders[0].send_signal(signal.SIGKILL)
        for sender in senders:
            sender.wait(timeout=300)
        time.sleep(
            2.5
        )  # the killed sender's lease runs out; the next run (a scheduler's next tick) takes over
        with logs[4].open("wb") as log:
            assert (
                subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=300).returncode
                == 0
            )
    finally:
        controller.stop()
    assert senders[0].returncode == -signal.SIGKILL and [s.returncode for s in senders[1:]] == [0, 0, 0]
    with sessions() as session:
        rows = list(session.scalars(select(Delivery)))
    assert len(rows) == 400 and {row.status for row in rows} == {"sent"}
    copies = Counter(message_id for message_id, _ in sink.received)
    assert set(copies) == {row.message_id for row in rows}  # every digest arrived
    logged = "\n".join(log.read_text(encoding="utf-8", errors="replace") for log in logs[1:])
    assert "left mid-send" in logged  # the killed sender's claims were taken over
    for message_id, count in copies.items():
        if count > 1:  # only a message the killed sender had handed over may come twice, and it is logged
            assert f"same Message-ID {message_id}" in logged, f"{message_id} arrived {count} times unlogged"


def _holds_claims(sessions, pid: int) -> bool:
    """Whether the sender process ``pid`` has rows claimed (its claimant is host:pid:random)."""
    with sessions() as session:
        claimed = select(Delivery.id).where(
            Delivery.status == "sending", Delivery.claimed_by.like(f"%:{pid}:%")
        )
        return session.scalar(claimed.limit(1)) is not None
