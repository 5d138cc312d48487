"""`digest serve`'s scheduler: restarts, replicas, hung sources, SIGTERM; with real processes where
the behaviour is about processes, a real SMTP server on loopback, SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from digest.cli import cli
from digest.config import Settings
from digest.model.time import system_clock
from digest.scheduler import Scheduler
from digest.store.models import Delivery, FetchLog, Source
from tests.support.data import FIXTURES, NOW
from tests.support.loopback import LoopbackServer, Reply
from tests.support.smtp import ScriptedServer, free_port
from tests.support.store import add_subscriber, context, ingest_fixture, ledger, migrated_sessions, outbox
from tests.support.waiting import WAIT, wait_until

DIGEST = [sys.executable, "-m", "digest"]


class Runs:
    """Counts the scheduler's finished runs of each job."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.done: dict[str, int] = {}
        self.changed = threading.Condition()
        scheduler.scheduler.add_listener(self._seen, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def _seen(self, event: JobExecutionEvent) -> None:
        assert event.exception is None, event.traceback
        with self.changed:
            self.done[event.job_id] = self.done.get(event.job_id, 0) + 1
            self.changed.notify_all()

    def wait(self, job_id: str, count: int = 1) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.done.get(job_id, 0) >= count, WAIT), self.done


def no_network_sources(sessions: sessionmaker[Session]) -> None:
    """Only the test's own sources: the built-in hf-daily would try the internet."""
    with sessions.begin() as session:
        session.execute(update(Source).where(Source.name == "hf-daily").values(enabled=False))


def run_scheduler(settings: Settings, sessions: sessionmaker[Session], at: datetime) -> None:
    """Start a scheduler whose clock says ``at``, let its first send run, stop it."""
    service = Scheduler(context(settings, sessions, lambda: at))
    runs = Runs(service)
    service.start()
    try:
        runs.wait("send")
    finally:
        service.stop()


def test_stopped_across_the_send_hour_and_restarted_each_subscriber_gets_one_digest(
    mail_settings, sessions
) -> None:
    no_network_sources(sessions)
    ingest_fixture(sessions)
    for number in range(5):
        add_subscriber(sessions, f"s{number}@example.org", send_hour=8)
    run_scheduler(mail_settings, sessions, NOW - timedelta(minutes=30))  # 07:30: nobody due yet
    assert outbox(mail_settings) == []
    run_scheduler(mail_settings, sessions, NOW + timedelta(hours=2))  # down from 07:30 to 10:00
    run_scheduler(mail_settings, sessions, NOW + timedelta(hours=3))
    sent = outbox(mail_settings)
    assert sorted(message["To"] for message in sent) == [f"s{number}@example.org" for number in range(5)]
    assert {row.status for row in ledger(sessions)} == {"sent"} and len(ledger(sessions)) == 5


@contextmanager
def silent_source(sessions: sessionmaker[Session]) -> Iterator[tuple[LoopbackServer, threading.Event]]:
    """A source "silent" on loopback whose /never answers only once the event is set."""
    answer = threading.Event()

    def silent(_handler: object) -> Reply:
        answer.wait(WAIT * 2)  # until the test is done
        return Reply(503)

    with LoopbackServer() as server:
        server.routes["/never"] = silent
        with sessions.begin() as session:
            session.add(
                Source(name="silent", kind="rss", url=server.url("/never"), created_at=system_clock())
            )
        try:
            yield server, answer
        finally:
            answer.set()


def test_a_source_that_never_answers_does_not_delay_sending(mail_settings, sessions) -> None:
    no_network_sources(sessions)
    ingest_fixture(sessions)
    settings = mail_settings.model_copy(
        update={"respect_robots_txt": False, "read_timeout": 600, "fetch_deadline": 600, "send_interval": 1}
    )
    with silent_source(sessions) as (server, answer):
        service = Scheduler(context(settings, sessions, lambda: NOW))
        runs = Runs(service)
        service.start()
        try:
            wait_until(lambda: server.requests_to("/never"), "the fetch of the silent source")
            add_subscriber(sessions)  # due only now, while the fetch hangs
            runs.wait("send", runs.done.get("send", 0) + 2)
            assert len(outbox(mail_settings)) == 1
            with sessions() as session:
                fetched = (
                    select(func.count()).select_from(FetchLog).join(Source).where(Source.name == "silent")
                )
                assert session.scalar(fetched) == 0  # the fetch still hangs
        finally:
            answer.set()
            wait_until(lambda: not service.fetching(), "the fetch to end")
            service.stop()


def serve(url: str, sink: ScriptedServer, *args: str, **env: str) -> subprocess.Popen[str]:
    """`digest serve` in a process of its own, mailing to ``sink``."""
    environment = {
        **os.environ,
        "DIGEST_DATABASE_URL": url,
        "DIGEST_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
        "DIGEST_SEND_INTERVAL": "1",
        "DIGEST_LOG_LEVEL": "WARNING",
        **env,
    }
    return subprocess.Popen([*DIGEST, "serve", *args], env=environment, stderr=subprocess.PIPE, text=True)


def stop(process: subprocess.Popen[str], code: int = 0) -> str:
    """SIGTERM, then the process must exit with ``code``; returns what it wrote to stderr."""
    process.send_signal(signal.SIGTERM)
    _, errors = process.communicate(timeout=WAIT)
    assert process.returncode == code, errors
    return errors


def due_now(sessions: sessionmaker[Session], count: int) -> None:
    """``count`` subscribers due at any hour, and papers stored two hours ago."""
    no_network_sources(sessions)
    ingest_fixture(sessions, seen=datetime.now(UTC) - timedelta(hours=2))
    for number in range(count):
        add_subscriber(sessions, f"r{number:03d}@example.org", send_hour=0, max_papers=3)


@pytest.mark.postgres
def test_two_schedulers_on_one_postgresql_send_each_digest_once(postgres_url, sink) -> None:
    sessions = migrated_sessions(postgres_url)
    due_now(sessions, 60)
    replicas = [serve(postgres_url, sink, "--no-web", DIGEST_CLAIM_BATCH="4") for _ in range(2)]
    try:
        wait_until(lambda: len(sink.received) >= 60, "60 digests at the SMTP server")
        wait_until(lambda: {row.status for row in ledger(sessions)} == {"sent"}, "every row sent")
    finally:
        for replica in replicas:
            stop(replica)
    assert len(sink.received) == 60 and len(set(sink.message_ids)) == 60
    assert sorted(recipient for recipient, _ in sink.received) == [f"r{n:03d}@example.org" for n in range(60)]


def test_sigterm_finishes_the_message_in_flight_and_loses_nothing(migrated_url, sessions, sink) -> None:
    due_now(sessions, 30)
    sink.next["DATA"] = ["stall"] * 30  # every message takes a while at the server
    process = serve(migrated_url, sink, "--no-web", DIGEST_SMTP_CONNECTIONS="1", DIGEST_SMTP_TIMEOUT="10")
    wait_until(lambda: len(sink.received) >= 2, "the first digests at the SMTP server")
    errors = stop(process)
    rows = ledger(sessions)
    sent = [row for row in rows if row.status == "sent"]
    assert "sending" not in {row.status for row in rows}, errors  # nothing left mid-send
    assert len(sent) == len(sink.received) < 30  # it stopped early, and recorded all it sent
    assert {row.last_error for row in rows if row.status != "sent"} <= {
        None,
        "the sender stopped before sending it: the sender was asked to stop",
    }
    sink.next["DATA"] = []
    with sessions.begin() as session:  # the rest are due again at once
        session.execute(
            update(Delivery).where(Delivery.status != "sent").values(next_attempt_at=system_clock())
        )
    again = serve(migrated_url, sink, "--no-web")
    wait_until(lambda: len(sink.received) >= 30, "the rest of the digests")
    stop(again)
    assert len(sink.received) == 30 and len(set(sink.message_ids)) == 30


def test_a_second_scheduler_on_sqlite_is_refused_with_what_to_do(tmp_path, sink) -> None:
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    assert CliRunner().invoke(cli, ["db", "upgrade"], env={"DIGEST_DATABASE_URL": url}).exit_code == 0
    first = serve(url, sink, "--no-web")
    try:
        lock = tmp_path / "digest.db.scheduler.lock"
        wait_until(lambda: lock.exists() and lock.read_text().strip() == str(first.pid), "the lock")
        second = subprocess.run(
            [*DIGEST, "serve", "--no-web"],
            env={**os.environ, "DIGEST_DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        assert second.returncode == 4
        assert (
            f"pid {first.pid}" in second.stderr
            and "--no-scheduler" in second.stderr
            and "Traceback" not in second.stderr
        )
        web_only = CliRunner().invoke(
            cli, ["serve", "--no-web", "--no-scheduler"], env={"DIGEST_DATABASE_URL": url}
        )
        assert web_only.exit_code == 2 and "leave nothing to run" in web_only.output
    finally:
        stop(first)


def test_serve_refuses_an_old_schema(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    result = CliRunner().invoke(cli, ["serve"], env={"DIGEST_DATABASE_URL": url})
    assert result.exit_code == 3 and "digest db upgrade" in result.output


def test_serve_runs_the_web_front_and_the_scheduler_in_one_process(migrated_url, sessions, sink) -> None:
    import httpx

    port = free_port()
    process = serve(
        migrated_url,
        sink,
        "--port",
        str(port),
        DIGEST_BASE_URL=f"http://127.0.0.1:{port}",
        DIGEST_LOG_LEVEL="INFO",
    )
    try:
        due_now(sessions, 1)
        wait_until(lambda: _answers(httpx, f"http://127.0.0.1:{port}/readyz"), "the web front")
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz").json()
        assert {key: ready[key] for key in ("status", "database", "scheduler")} == {
            "status": "ok",
            "database": "ok",
            "scheduler": "ok",
        }
        wait_until(lambda: len(sink.received) == 1, "the digest")
        env = {"DIGEST_DATABASE_URL": migrated_url, "DIGEST_LISTEN_PORT": str(port)}
        healthy = CliRunner().invoke(cli, ["healthcheck"], env=env)
        assert healthy.exit_code == 0 and "ready" in healthy.output
    finally:
        errors = stop(process)
    assert "Application shutdown complete" in errors and "scheduler stopped" in errors


def test_serve_on_another_port_mails_links_to_that_port_and_says_so(migrated_url, sink) -> None:
    import httpx

    port = free_port()
    process = serve(migrated_url, sink, "--port", str(port), "--no-scheduler")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(httpx, f"{base}/readyz"), "the web front")
        with httpx.Client(base_url=base) as reader:
            token = reader.get("/").text.split('name="csrf" value="')[1].split('"')[0]
            reader.post("/", data={"email": "ada@example.org", "csrf": token, "timezone": "UTC"})
        wait_until(lambda: len(sink.contents) == 1, "the confirmation mail")
    finally:
        errors = stop(process)
    assert f"links in mail start with {base} (from where it listens" in errors
    assert f"{base}/confirm/" in sink.contents[0].decode()


def test_serve_says_at_info_what_each_fetch_and_send_run_did(migrated_url, sessions, sink) -> None:
    no_network_sources(sessions)
    page = str(FIXTURES / "hf_papers_page_2024-08-01.html")
    added = CliRunner().invoke(
        cli,
        ["sources", "add", "sample", "--kind", "hf-page", "--url", page],
        env={"DIGEST_DATABASE_URL": migrated_url},
    )
    assert added.exit_code == 0, added.output
    env = {key: value for key, value in os.environ.items() if key != "DIGEST_LOG_LEVEL"}
    env |= {"DIGEST_DATABASE_URL": migrated_url, "DIGEST_SMTP_URL": f"smtp://127.0.0.1:{sink.port}"}
    process = subprocess.Popen([*DIGEST, "serve", "--no-web"], env=env, stderr=subprocess.PIPE, text=True)
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(process.stderr or ()), daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: "fetched sample" in "".join(said) and "send run:" in "".join(said), "the log lines"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=WAIT)
        reader.join(WAIT)
    log = "".join(said)
    assert "fetched sample (ok): 13 seen, 13 new, 0 updated in" in log
    assert "send run: 0 newly due, 0 sent, 0 skipped, 0 failed" in log
    assert "alembic" not in log  # the schema check's chatter is not the operator's business


def test_serve_stopped_while_a_source_hangs_exits_at_once_leaving_the_fetch(
    migrated_url, sessions, sink
) -> None:
    import httpx

    no_network_sources(sessions)
    with silent_source(sessions) as (server, answer):
        port = free_port()
        process = serve(migrated_url, sink, "--port", str(port), DIGEST_RESPECT_ROBOTS_TXT="false")
        try:
            wait_until(lambda: _answers(httpx, f"http://127.0.0.1:{port}/readyz"), "the web front")
            wait_until(lambda: server.requests_to("/never"), "the fetch of the silent source")
        finally:
            errors = stop(process)
            answer.set()
    assert "exiting with 1 fetches unfinished" in errors  # not waited for: it would hang 25 s


def _answers(httpx, url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.postgres
def test_two_schedulers_on_postgresql_fetch_a_source_once(postgres_url, mail_settings) -> None:
    sessions = migrated_sessions(postgres_url)
    no_network_sources(sessions)
    settings = mail_settings.model_copy(
        update={"database_url": SecretStr(postgres_url), "respect_robots_txt": False}
    )
    arrived, answer = threading.Event(), threading.Event()

    def slow(_handler: object) -> Reply:
        arrived.set()
        answer.wait(WAIT)
        return Reply(
            body=(FIXTURES / "arxiv_rss_new_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_trimmed.xml").read_bytes()
        )

    with LoopbackServer() as server:
        server.routes["/feed"] = slow
        with sessions.begin() as session:
            source = Source(name="feed", kind="arxiv-rss", url=server.url("/feed"), created_at=system_clock())
            session.add(source)
        replicas = [Scheduler(context(settings, sessions)), Scheduler(context(settings, sessions))]
        first = threading.Thread(target=replicas[0].fetch, args=[source.id])
        first.start()
        assert arrived.wait(WAIT)
        assert replicas[1].fetch(source.id) is None  # the first holds the source's lock
        answer.set()
        first.join(WAIT)
        assert replicas[1].fetch(source.id) is None  # fetched within its interval
        assert len(server.requests_to("/feed")) == 1
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(FetchLog)) == 1


def test_serve_says_what_to_change_when_it_cannot_listen(migrated_url) -> None:
    env = {"DIGEST_DATABASE_URL": migrated_url}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = CliRunner().invoke(cli, ["serve", "--no-scheduler", "--port", str(port)], env=env)
    unknown = CliRunner().invoke(cli, ["serve", "--no-scheduler", "--host", "no-such-host.invalid"], env=env)
    assert busy.exit_code == 2 and "--port or DIGEST_LISTEN_PORT" in busy.output
    assert unknown.exit_code == 2 and "DIGEST_LISTEN_HOST" in unknown.output


def test_untrusted_proxy_settings_are_refused_with_an_example(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["check-config"], env={"DIGEST_FORWARDED_ALLOW_IPS": "10.0.0.1,garbage"})
    assert result.exit_code == 2 and "'garbage' is not an IP address" in result.output
    assert "Value error" not in result.output


def test_healthcheck_says_why_the_service_is_not_ready(migrated_url, tmp_path) -> None:
    nobody = CliRunner().invoke(cli, ["healthcheck"], env={"DIGEST_LISTEN_PORT": str(free_port())})
    assert nobody.exit_code == 1 and "is `digest serve` running?" in nobody.output
    database = CliRunner().invoke(
        cli, ["healthcheck", "--database"], env={"DIGEST_DATABASE_URL": migrated_url}
    )
    assert database.exit_code == 0
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    old = CliRunner().invoke(cli, ["healthcheck", "--database"], env={"DIGEST_DATABASE_URL": empty})
    assert old.exit_code == 3 and "digest db upgrade" in old.output


def test_serve_takes_mail_by_lmtp_when_inbound_listen_is_set(migrated_url, sink) -> None:
    port = free_port()
    process = serve(
        migrated_url,
        sink,
        "--no-web",
        DIGEST_INBOUND_LISTEN=f"127.0.0.1:{port}",
        DIGEST_COMMANDS_ADDRESS="commands@digest.example.org",
        DIGEST_MAIL_FROM="digest@digest.example.org",
    )
    try:
        wait_until(lambda: _listening(port), "the inbound listener")
        with smtplib.LMTP("127.0.0.1", port, timeout=WAIT) as mta:
            letter = (
                b"From: ada@example.org\r\nSubject: help\r\nMessage-ID: <h1@mail.example>\r\n\r\nhelp\r\n"
            )
            assert mta.sendmail("ada@example.org", ["commands@digest.example.org"], letter) == {}
        wait_until(lambda: len(sink.received) == 1, "the answer at the SMTP server")
    finally:
        errors = stop(process)
    assert "taking mail by LMTP on 127.0.0.1:" in errors
    assert sink.received[0][0] == "ada@example.org" and sink.senders == ["<>"]  # RFC 3834: the null sender
    assert b"Auto-Submitted: auto-replied" in sink.contents[0]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
