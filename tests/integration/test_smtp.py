"""Sending over a real SMTP server on 127.0.0.1 (aiosmtpd) that refuses, drops and stalls on cue.

Each test scripts the server, runs the transport or the whole send, and checks what a subscriber
would see: which digests arrived (counted by Message-ID, so a duplicate shows) and what the ledger says.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.deliver.sender import Sender, Summary
from digest.inbound.reports import verp_token
from digest.mail.transports import Outgoing, SmtpTarget, SmtpTransport, transport_for
from digest.store.engine import Database
from digest.store.models import Delivery, Subscriber
from tests.support.smtp import ScriptedServer, free_port, serving

NOW = datetime(2026, 11, 24, 8, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture(params=["one command at a time", "pipelining"])
def server(request: pytest.FixtureRequest) -> Iterator[ScriptedServer]:
    """The server, once without and once with PIPELINING (then MAIL, RCPT and DATA go in one write)."""
    with serving(ScriptedServer(pipelining=request.param == "pipelining")) as handler:
        yield handler


@pytest.fixture
def mail_settings(settings: Settings, server: ScriptedServer) -> Settings:
    return settings.model_copy(
        update={
            "smtp_url": SecretStr(f"smtp://127.0.0.1:{server.port}"),
            "smtp_timeout": 2.0,
            "smtp_connections": 1,
            "max_hard_bounces": 2,
            "retry_delay": 60.0,
            "base_url": "https://digest.example.org",
            "send_empty_digest": True,
        }
    )


def subscribe(sessions: sessionmaker[Session], *emails: str) -> None:
    with sessions() as session:
        for address in emails:
            session.add(
                Subscriber(
                    email=address,
                    status="active",
                    interests="",
                    timezone="UTC",
                    send_hour=0,
                    frequency="daily",
                    max_papers=10,
                    min_score=0.0,
                    trending_section=True,
                    created_at=NOW - DAY,
                    updated_at=NOW - DAY,
                )
            )
        session.commit()


def send(settings: Settings, sessions: sessionmaker[Session], now: datetime = NOW) -> Summary:
    with transport_for(settings) as transport:
        return Sender(settings, Database(sessions.kw["bind"]), transport).run(now=now)


def ledger(sessions: sessionmaker[Session]) -> dict[tuple[str, int], Delivery]:
    """Every row by (email, day of month)."""
    with sessions() as session:
        rows = session.execute(select(Subscriber.email, Delivery).join(Delivery))
        return {(address, row.digest_date.day): row for address, row in rows}


def subscriber(sessions: sessionmaker[Session], address: str) -> Subscriber:
    with sessions() as session:
        return session.scalars(select(Subscriber).where(Subscriber.email == address)).one()


TEMPORARY = [(stage, code) for stage in ("MAIL", "RCPT", "DATA") for code in (421, 450, 451)]


@pytest.mark.parametrize(("stage", "code"), TEMPORARY)
def test_a_temporary_refusal_is_retried_and_delivered_once_after_recovery(
    mail_settings: Settings, sessions: sessionmaker[Session], server: ScriptedServer, stage: str, code: int
) -> None:
    subscribe(sessions, "ann@example.org")
    server.next[stage].append(f"{code} 4.3.0 try again later")

    first = send(mail_settings, sessions)
    row = ledger(sessions)["ann@example.org", 24]
    assert (first.sent, first.failed_temporary) == (0, 1)
    assert row.status == "failed-temporary" and row.smtp_code == code
    assert row.next_attempt_at is not None and row.next_attempt_at > NOW
    assert server.received == []

    too_early = send(mail_settings, sessions, row.next_attempt_at - timedelta(seconds=1))
    assert too_early.sent == 0 and server.received == []

    retried = send(mail_settings, sessions, row.next_attempt_at)
    assert retried.sent == 1
    assert ledger(sessions)["ann@example.org", 24].status == "sent"
    assert server.received == [("ann@example.org", row.message_id)]


@pytest.mark.parametrize(("stage", "code"), [("RCPT", 550), ("RCPT", 552), ("DATA", 550), ("DATA", 552)])
def test_a_permanent_refusal_is_not_retried_and_counts_a_hard_bounce(
    mail_settings: Settings, sessions: sessionmaker[Session], server: ScriptedServer, stage: str, code: int
) -> None:
    subscribe(sessions, "ann@example.org")
    server.next[stage].append(f"{code} 5.1.1 no such mailbox")

    summary = send(mail_settings, sessions)
    assert summary.failed_permanent == 1
    row = ledger(sessions)["ann@example.org", 24]
    assert row.status == "failed-permanent" and row.smtp_code == code and str(code) in row.last_error
    assert subscriber(sessions, "ann@example.org").hard_bounces == 1

    later = send(mail_settings, sessions, NOW + timedelta(hours=6))  # the server would accept it now
    assert later.sent == 0 and server.received == []
    assert ledger(sessions)["ann@example.org", 24].status == "failed-permanent"


def test_hard_bounces_on_consecutive_days_suspend_the_subscriber(
    mail_settings: Settings, sessions: sessionmaker[Session], server: ScriptedServer
) -> None:
    subscribe(sessions, "ann@example.org", "bob@example.org")
    server.refuse["ann@example.org"] = "550 5.1.1 no such mailbox"

    send(mail_settings, sessions, NOW)
    assert subscriber(sessions, "ann@example.org").status == "active"
    send(mail_settings, sessions, NOW + DAY)
    ann = subscriber(sessions, "ann@example.org")
    assert (ann.status, ann.hard_bounces) == ("bounced", 2)

    third = send(mail_settings, sessions, NOW + 2 * DAY)
    assert ("ann@example.org", 26) not in ledger(sessions)
    assert third.sent == 1 and subscriber(sessions, "bob@example.org").status == "active"
    assert [to for to, _ in server.received] == ["bob@example.org"] * 3


def test_a_delivered_digest_between_hard_bounces_keeps_the_subscriber(
    mail_settings: Settings, sessions: sessionmaker[Session], server: ScriptedServer
) -> None:
    subscribe(sessions, "ann@example.org")
    server.refuse["ann@example.org"] = "550 5.2.1 mailbox disabled"
    send(mail_settings, sessions, NOW)
    del server.refuse["ann@example.org"]
    send(mail_settings, sessions, NOW + DAY)
    server.refuse["ann@example.org"] = "550 5.2.1 mailbox disabled"
    send(mail_settings, sessions, NOW + 2 * DAY)

    ann = subscriber(sessions, "ann@example.org")
    assert (ann.status, ann.hard_bounces) == ("active", 1)
    statuses = {day: row.status for (_, day), row in ledger(sessions).items()}
    assert statuses == {24: "failed-permanent", 25: "sent", 26: "failed-permanent"}


def test_a_connection_dropped_mid_data_is_retried_and_the_next_digest_still_goes_out(
    mail_settings: Settings, sessions: sessionmaker[Session], server: ScriptedServer
) -> None:
    subscribe(sessions, "ann@example.org", "bob@example.org")
    server.next["DATA"].append("drop")

    summary = send(mail_settings, sessions)
    rows = ledger(sessions)
    assert (summary.sent, summary.failed_temporary) == (1, 1)
    assert rows["ann@example.org", 24].status == "failed-temporary"
    assert server.received == [("bob@example.org", rows["bob@example.org", 24].message_id)]
    assert server.connections == 2  # the broken one was dropped, bob's went on a new one

    retry_at = rows["ann@example.org", 24].next_attempt_at
    assert send(mail_settings, sessions, retry_at).sent == 1
    assert server.message_ids.count(rows["ann@example.org", 24].message_id) == 1


def outgoing(key: int) -> Outgoing:
    message_id = f"<{key}.test@example.org>"
    data = f"Message-ID: {message_id}\r\nSubject: test {key}\r\n\r\nhello\r\n".encode()
    return Outgoing(key, "digest@example.org", f"reader{key}@example.org", message_id, data)


def test_a_stalled_server_times_out_as_a_temporary_failure_and_the_next_message_goes_out(
    server: ScriptedServer,
) -> None:
    target = SmtpTarget.from_url(f"smtp://127.0.0.1:{server.port}")
    server.next["DATA"].append("stall")
    with SmtpTransport(target, timeout=0.5, data_timeout=0.5) as transport:
        stalled, after = transport.deliver([outgoing(1), outgoing(2)])
    assert not stalled.ok and not stalled.permanent and stalled.maybe_sent  # its data had all gone
    assert "timed out" in (stalled.error or "")
    # Returned while the server was still sleeping on the first message: it has not recorded it.
    assert after.ok and server.message_ids == ["<2.test@example.org>"]


def test_a_refusal_before_the_data_is_known_not_to_have_gone(server: ScriptedServer) -> None:
    target = SmtpTarget.from_url(f"smtp://127.0.0.1:{server.port}")
    server.next["MAIL"].append("421 4.3.2 busy")
    with SmtpTransport(target, timeout=0.5) as transport:
        [outcome] = transport.deliver([outgoing(1)])
    assert not outcome.ok and not outcome.permanent and not outcome.maybe_sent


def test_a_slow_reply_to_the_end_of_data_is_waited_for_as_rfc_5321_asks(server: ScriptedServer) -> None:
    """The command timeout (0.5 s) is shorter than the server's 3 s over the data's end: failing
    there would resend a message the server was accepting."""
    target = SmtpTarget.from_url(f"smtp://127.0.0.1:{server.port}")
    server.next["DATA"].append("stall")
    with SmtpTransport(target, timeout=0.5) as transport:
        [outcome] = transport.deliver([outgoing(1)])
    assert outcome.ok and server.message_ids == ["<1.test@example.org>"]


@pytest.mark.parametrize("connections", [1, 4])
def test_a_server_that_keeps_timing_out_is_given_up_for_the_rest_of_the_run(
    server: ScriptedServer, connections: int
) -> None:
    target = SmtpTarget.from_url(f"smtp://127.0.0.1:{server.port}")
    server.next["DATA"].extend(["stall"] * 20)
    started = time.monotonic()
    with SmtpTransport(target, timeout=0.3, data_timeout=0.3, connections=connections) as transport:
        outcomes = list(transport.deliver([outgoing(key) for key in range(1, 21)]))
    assert len(outcomes) == 20 and not any(outcome.ok for outcome in outcomes)
    errors = [outcome.error or "" for outcome in outcomes]
    timed_out = [error for error in errors if "timed out" in error and "not tried" not in error]
    assert 3 <= len(timed_out) < 3 + connections
    assert sum("not tried" in error for error in errors) == 20 - len(timed_out)
    assert time.monotonic() - started < 15


def test_a_caller_that_stops_recording_lets_no_further_message_end_its_data(server: ScriptedServer) -> None:
    """The caller records two outcomes, then fails: only those two messages reached the server,
    however many the other connections had ready."""
    target = SmtpTarget.from_url(f"smtp://127.0.0.1:{server.port}")
    with SmtpTransport(target, timeout=5, connections=4) as transport:
        outcomes = transport.deliver([outgoing(key) for key in range(1, 21)])
        recorded = [next(outcomes), next(outcomes)]
        outcomes.close()
    assert all(outcome.ok for outcome in recorded)
    assert sorted(server.message_ids) == sorted(f"<{outcome.key}.test@example.org>" for outcome in recorded)


@pytest.mark.parametrize("connections", [1, 3])
def test_a_refused_recipient_does_not_stop_the_others(
    mail_settings: Settings,
    sessions: sessionmaker[Session],
    server: ScriptedServer,
    connections: int,
) -> None:
    subscribe(sessions, "ann@example.org", "bob@example.org", "cat@example.org")
    server.refuse["bob@example.org"] = "550 5.1.1 no such user"

    summary = send(mail_settings.model_copy(update={"smtp_connections": connections}), sessions)
    assert (summary.sent, summary.failed_permanent) == (2, 1)
    assert sorted(to for to, _ in server.received) == ["ann@example.org", "cat@example.org"]
    statuses = {address: row.status for (address, _), row in ledger(sessions).items()}
    assert statuses == {
        "ann@example.org": "sent",
        "bob@example.org": "failed-permanent",
        "cat@example.org": "sent",
    }


def test_one_run_sends_every_digest_over_one_connection(
    mail_settings: Settings, sessions: sessionmaker[Session], server: ScriptedServer
) -> None:
    subscribe(sessions, *(f"reader{number}@example.org" for number in range(6)))
    server.refuse["reader2@example.org"] = "550 5.1.1 no such user"  # a refusal keeps the connection

    assert send(mail_settings, sessions).sent == 5
    assert server.connections == 1 and server.quits == 1
    assert len(set(server.message_ids)) == 5


def test_three_connections_deliver_every_digest_exactly_once(
    mail_settings: Settings, sessions: sessionmaker[Session], server: ScriptedServer
) -> None:
    readers = [f"reader{number}@example.org" for number in range(12)]
    subscribe(sessions, *readers)

    summary = send(mail_settings.model_copy(update={"smtp_connections": 3}), sessions)
    rows = ledger(sessions)
    assert summary.sent == 12 and {row.status for row in rows.values()} == {"sent"}
    assert sorted(server.received) == sorted((to, rows[to, 24].message_id) for to in readers)
    assert 1 <= server.connections <= 3 and server.quits == server.connections


def test_a_wrong_smtp_password_bounces_nobody_and_stops_the_run_early(
    mail_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    handler = ScriptedServer()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=lambda *_args: AuthResult(success=False, handled=False),
        auth_require_tls=False,
    )
    controller.start()
    try:
        readers = [f"reader{number}@example.org" for number in range(6)]
        subscribe(sessions, *readers)
        wrong = SecretStr(f"smtp://me:wrong@127.0.0.1:{controller.port}")
        summary = send(mail_settings.model_copy(update={"smtp_url": wrong}), sessions)
    finally:
        controller.stop()
    assert (summary.sent, summary.failed_temporary, summary.failed_permanent) == (0, 6, 0)
    assert handler.connections == 3  # then the rest of the run is not tried
    rows = ledger(sessions)
    errors = [row.last_error for row in rows.values()]
    assert all("check the user and password in DIGEST_SMTP_URL" in error for error in errors), errors
    assert {subscriber(sessions, to).hard_bounces for to in readers} == {0}


def test_a_refused_sender_address_is_our_fault_not_a_bounce(
    mail_settings: Settings, sessions: sessionmaker[Session], server: ScriptedServer
) -> None:
    subscribe(sessions, "ann@example.org")
    server.next["MAIL"].append("550 5.7.1 sender not allowed")
    summary = send(mail_settings, sessions)
    row = ledger(sessions)["ann@example.org", 24]
    assert summary.failed_temporary == 1 and row.status == "failed-temporary"
    assert "DIGEST_MAIL_FROM" in row.last_error
    assert subscriber(sessions, "ann@example.org").hard_bounces == 0


def test_one_run_tries_a_refused_digest_once_even_with_the_shortest_retry_delay(
    mail_settings: Settings, sessions: sessionmaker[Session], server: ScriptedServer
) -> None:
    subscribe(sessions, "ann@example.org")
    server.refuse["ann@example.org"] = "451 4.3.0 try again later"
    summary = send(mail_settings.model_copy(update={"retry_delay": 1.0}), sessions)
    row = ledger(sessions)["ann@example.org", 24]
    assert summary.failed_temporary == 1 and row.attempts == 1 and row.next_attempt_at > NOW


def test_with_a_bounce_address_each_digest_goes_out_from_a_return_address_naming_it(
    mail_settings: Settings, sessions: sessionmaker[Session], server: ScriptedServer
) -> None:
    subscribe(sessions, "ada@example.org", "bo@example.org")
    settings = mail_settings.model_copy(update={"bounce_address": "bounces@digest.example.org"})
    assert send(settings, sessions).sent == 2
    tokens = [verp_token(sender) for sender in server.senders]
    assert server.senders == [f"bounces+{token}@digest.example.org" for token in tokens]
    left_parts = {row.message_id.strip("<>").rsplit("@", 1)[0] for row in ledger(sessions).values()}
    assert set(tokens) == left_parts and len(left_parts) == 2  # each names its own ledger row


def test_without_a_bounce_address_the_envelope_sender_is_mail_from(
    mail_settings: Settings, sessions: sessionmaker[Session], server: ScriptedServer
) -> None:
    subscribe(sessions, "ada@example.org")
    assert send(mail_settings, sessions).sent == 1
    assert server.senders == [mail_settings.mail_from]


def test_lines_starting_with_a_dot_arrive_unchanged(server: ScriptedServer) -> None:
    target = SmtpTarget.from_url(f"smtp://127.0.0.1:{server.port}")
    body = b"Message-ID: <1.test@example.org>\r\nSubject: dots\r\n\r\n.hidden\r\n..two\r\n.\r\nend\r\n"
    with SmtpTransport(target, timeout=2) as transport:
        [outcome] = transport.deliver([Outgoing(1, "digest@example.org", "ann@example.org", "<1>", body)])
    assert outcome.ok and server.contents == [body]


@pytest.fixture
def certificate(tmp_path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1 that this test's clients trust (SSL_CERT_FILE)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def _accept(logins: list[str]):
    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        encrypted = server.transport.get_extra_info("ssl_object") is not None
        logins.append(f"{auth_data.login.decode()}:{auth_data.password.decode()}:{encrypted}")
        return AuthResult(success=True)

    return authenticate


@pytest.mark.parametrize("scheme", ["smtp", "smtps"])
def test_mail_goes_over_tls_and_logs_in_only_once_encrypted(certificate, scheme: str) -> None:
    handler, logins = ScriptedServer(), []
    options = (
        {"tls_context": certificate, "require_starttls": True}
        if scheme == "smtp"
        else {
            "ssl_context": certificate,
            "auth_require_tls": False,
        }  # aiosmtpd cannot tell TLS from the start
    )
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), authenticator=_accept(logins), **options
    )
    controller.start()
    try:
        target = SmtpTarget.from_url(f"{scheme}://me%40example.org:s%3Acret@127.0.0.1:{controller.port}")
        with SmtpTransport(target, timeout=5) as transport:
            [outcome] = transport.deliver([outgoing(1)])
    finally:
        controller.stop()
    assert outcome.ok, outcome.error
    assert logins == ["me@example.org:s:cret:True"]
    assert handler.message_ids == ["<1.test@example.org>"]


def test_a_server_without_starttls_never_gets_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    handler, logins = ScriptedServer(), []
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), authenticator=_accept(logins), auth_require_tls=False
    )
    controller.start()
    try:
        target = SmtpTarget("127.0.0.1", controller.port, False, "me", "secret")
        monkeypatch.setattr(SmtpTarget, "loopback", property(lambda self: False))  # as if it were remote
        with SmtpTransport(target, timeout=5) as transport:
            [outcome] = transport.deliver([outgoing(1)])
    finally:
        controller.stop()
    assert not outcome.ok and "will not send the password in clear" in outcome.error
    assert logins == [] and handler.received == []


def test_connections_send_each_write_at_once_so_the_final_dot_does_not_wait_for_an_ack(
    server: ScriptedServer,
) -> None:
    target = SmtpTarget.from_url(f"smtp://127.0.0.1:{server.port}")
    with SmtpTransport(target, timeout=5) as transport:
        client = transport.connect()
        try:
            assert client.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        finally:
            client.close()


def test_the_rate_limit_spaces_messages_out(server: ScriptedServer) -> None:
    target = SmtpTarget.from_url(f"smtp://127.0.0.1:{server.port}")
    with SmtpTransport(target, timeout=5, rate=50) as transport:
        start = time.monotonic()
        outcomes = list(transport.deliver([outgoing(number) for number in range(11)]))
        elapsed = time.monotonic() - start
    assert all(outcome.ok for outcome in outcomes)
    assert elapsed >= 10 / 50  # ten intervals of 1/50 s at least: a floor, not a speed
