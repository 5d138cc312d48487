"""The transports that carry messages: SMTP (pooled, pipelined), a file outbox, the console."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import smtplib
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from digest.errors import ConfigError
from digest.model.network import names_loopback


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to deliver; ``key`` is the caller's (the ledger row id)."""

    key: int
    sender: str
    recipient: str
    message_id: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message. ``permanent`` failures (5xx) must not be retried;
    ``maybe_sent`` ones lost the connection after the final dot, so the server may have the message."""

    key: int
    ok: bool
    permanent: bool = False
    code: int | None = None
    error: str | None = None
    maybe_sent: bool = False


class _AfterFinalDot(Exception):
    """The connection failed while waiting for the reply to the final dot (``__cause__`` says how)."""


class Transport:
    """Delivers messages; ``deliver`` yields one Outcome per message, in any order."""

    name = "transport"

    def deliver(self, messages: Iterable[Outgoing]) -> Iterator[Outcome]:
        for message in messages:
            yield self.deliver_one(message)

    def deliver_one(self, message: Outgoing) -> Outcome:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; the transport may not be used afterwards."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class OutboxTransport(Transport):
    """Writes each message to ``folder/<message id>.eml``, atomically: a crash leaves no half file,
    and sending the same message again replaces its file instead of adding one."""

    name = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def deliver_one(self, message: Outgoing) -> Outcome:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", message.message_id.strip("<>")) + ".eml"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(message.data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, self.folder / name)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            error = f"cannot write to the outbox {self.folder}: {exc.strerror}"
            return Outcome(message.key, False, error=error)
        return Outcome(message.key, True)


class ConsoleTransport(Transport):
    """Prints each message to a stream (standard output by default), for debugging."""

    name = "console"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def deliver_one(self, message: Outgoing) -> Outcome:
        self.stream.write(f"--- message {message.message_id} to {message.recipient}\n")
        self.stream.write(message.data.decode("utf-8", "replace").replace("\r\n", "\n"))
        self.stream.write("\n")
        self.stream.flush()
        return Outcome(message.key, True)


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how to connect, from ``smtp_url``."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> SmtpTarget:
        parsed = urlsplit(url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise ConfigError("smtp_url must look like smtp://user:password@host:587 or smtps://…@host:465.")
        implicit = parsed.scheme == "smtps"
        return cls(
            host=parsed.hostname,
            port=parsed.port or (465 if implicit else 587),
            implicit_tls=implicit,
            username=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
        )

    @property
    def loopback(self) -> bool:
        return self.host in ("localhost", "::1") or self.host.startswith("127.")


class RateLimiter:
    """At most ``rate`` calls of ``wait`` per second across threads (0: no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


IDLE_CHECK_AFTER = 5.0
GIVE_UP_AFTER_CONNECT_FAILURES = 3
GIVE_UP_AFTER_TIMEOUTS = 3
DATA_END_TIMEOUT = 600.0  # RFC 5321 4.5.3.2.6: wait 10 minutes for the reply to the data's end


class CommitPoint:
    """Lets one message at a time stand between the end of its data and its record in the ledger.

    The server accepts a message when it answers the final dot; until the caller has recorded that,
    a crash makes the message go out again. Connections send their envelopes and data at once, but
    each takes this slot before its final dot and gives it back only once the caller has recorded
    the outcome, so a crash can repeat at most one message, whatever ``smtp_connections`` is.
    """

    def __init__(self) -> None:
        self._slot = threading.Semaphore(1)
        self.closed = threading.Event()

    def enter(self) -> None:
        """Wait for the slot. Raises SMTPServerDisconnected when the run ends meanwhile."""
        while not self._slot.acquire(timeout=0.2):
            if self.closed.is_set():
                raise smtplib.SMTPServerDisconnected("the run ended before this message could be sent")
        if self.closed.is_set():  # woken by the run ending: the caller records nothing more
            self._slot.release()
            raise smtplib.SMTPServerDisconnected("the run ended before this message could be sent")

    def leave(self) -> None:
        self._slot.release()


class SmtpTransport(Transport):
    """Sends over ``connections`` persistent SMTP connections at once, each in a thread of its own.

    Every socket operation has ``timeout``, except the wait for the reply to the data's end, which
    has ``data_timeout`` (RFC 5321's ten minutes by default: failing sooner would only resend a
    message the server may be accepting). A connection that fails is dropped and opened again for
    the next message. A recipient's 5xx (at RCPT or DATA) is permanent; 4xx replies, connection and
    login errors and a refused sender are temporary. One message's failure never stops the next, but
    after three failed connection attempts, or three timeouts, in a row the rest of the run is
    failed without trying. With several connections, one message at a time may wait between its
    final dot and its record (CommitPoint).
    """

    name = "smtp"

    def __init__(
        self,
        target: SmtpTarget,
        *,
        timeout: float,
        connections: int = 1,
        rate: float = 0.0,
        helo: str | None = None,
        data_timeout: float = DATA_END_TIMEOUT,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.data_timeout = data_timeout
        self.connections = connections
        self.limiter = RateLimiter(rate)
        self.helo = helo or socket.gethostname() or "localhost"
        self._idle: queue.SimpleQueue[tuple[smtplib.SMTP, float]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._connect_failures = 0
        self._timeouts = 0
        self._broken: str | None = None
        self._commit: CommitPoint | None = None
        self._holding: set[int] = set()  # keys whose message holds the commit point

    def connect(self) -> smtplib.SMTP:
        """Open, greet, secure and log in. Raises OSError or smtplib.SMTPException."""
        target = self.target
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if target.implicit_tls:
            client = smtplib.SMTP_SSL(
                target.host, target.port, local_hostname=self.helo, timeout=self.timeout, context=context
            )
        else:
            client = smtplib.SMTP(target.host, target.port, local_hostname=self.helo, timeout=self.timeout)
        try:
            # The final dot is a write of its own (after the commit point): with Nagle's algorithm it
            # waits for the server's delayed ACK of the data, 40 ms a message on Linux.
            client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.ehlo()
            if not target.implicit_tls and client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            elif not target.implicit_tls and target.username and not target.loopback:
                raise smtplib.SMTPNotSupportedError(
                    "the server offers no STARTTLS; digest will not send the password in clear "
                    "(use smtps:// or a server with STARTTLS)"
                )
            if target.username:
                client.login(target.username, target.password or "")
        except BaseException:
            _close(client)
            raise
        return client

    def deliver_one(self, message: Outgoing) -> Outcome:
        if self._broken is not None:
            return Outcome(message.key, False, error=f"not tried: {self._broken}")
        if self._commit is not None and self._commit.closed.is_set():
            return Outcome(message.key, False, error="not tried: the run ended")
        self.limiter.wait()
        client = self._checkout()
        if client is None:
            try:
                client = self.connect()
            except (smtplib.SMTPException, OSError) as exc:
                return self._cannot_connect(message, exc)
            self._connect_failures = 0
        outcome, kept = self._send(client, message)
        if kept is not None:
            self._idle.put((kept, time.monotonic()))
        return outcome

    def deliver(self, messages: Iterable[Outgoing]) -> Iterator[Outcome]:
        """Send on up to ``connections`` threads, each taking an open connection from the idle pool;
        yields outcomes as they come."""
        if self.connections == 1:
            yield from super().deliver(messages)
            return
        window = self.connections * 4
        self._commit = commit = CommitPoint()
        try:
            with ThreadPoolExecutor(self.connections, thread_name_prefix="smtp") as pool:
                running: set[Future[Outcome]] = set()
                try:
                    for message in messages:
                        running.add(pool.submit(self.deliver_one, message))
                        if len(running) >= window:
                            finished, running = wait(running, return_when=FIRST_COMPLETED)
                            for future in finished:
                                yield from self._recorded(future.result())
                    for future in as_completed(running):
                        yield from self._recorded(future.result())
                except BaseException:
                    # The caller stopped (an error, a signal): nothing more will be recorded, so no
                    # message may end its data now, and those not started are not tried.
                    commit.closed.set()
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
                finally:
                    commit.closed.set()
        finally:
            self._commit = None

    def _recorded(self, outcome: Outcome) -> Iterator[Outcome]:
        """Yield ``outcome``; once the caller asks for the next one (it has recorded this one), free
        the commit point if this message held it. If the caller stops instead, the point is closed
        first and never freed: no other message may end its data unrecorded."""
        commit = self._commit
        assert commit is not None
        try:
            yield outcome
        except BaseException:
            commit.closed.set()
            raise
        if outcome.key in self._holding:
            self._holding.discard(outcome.key)
            commit.leave()

    def _checkout(self) -> smtplib.SMTP | None:
        """An open connection from the pool; one idle for a while is checked with NOOP first, since
        servers close idle connections."""
        while True:
            try:
                client, since = self._idle.get_nowait()
            except queue.Empty:
                return None
            if time.monotonic() - since < IDLE_CHECK_AFTER:
                return client
            try:
                if client.noop()[0] == 250:
                    return client
            except (smtplib.SMTPException, OSError):
                pass
            _close(client)

    def _cannot_connect(self, message: Outgoing, exc: BaseException) -> Outcome:
        """Connecting or logging in failed: our side or the server's, never the recipient's, so a
        temporary failure. After a few in a row the rest of this run is not tried."""
        reason = _reason(exc)
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            reason = f"login refused ({reason}); check the user and password in DIGEST_SMTP_URL"
        elif isinstance(exc, smtplib.SMTPNotSupportedError) and "AUTH" in str(exc):
            reason = (
                "the server offers no login; drop the user and password from DIGEST_SMTP_URL, or use the "
                "server's submission port (587 or 465)"
            )
        elif not isinstance(exc, smtplib.SMTPNotSupportedError):
            reason += "; check the host and port in DIGEST_SMTP_URL and that the server is running"
        error = f"cannot send through the SMTP server {self._where}: {reason}"
        with self._lock:
            self._connect_failures += 1
            if self._connect_failures >= GIVE_UP_AFTER_CONNECT_FAILURES:
                self._broken = error
        return Outcome(message.key, False, error=error)

    def _send(self, client: smtplib.SMTP, message: Outgoing) -> tuple[Outcome, smtplib.SMTP | None]:
        """Send on ``client``; returns the outcome and the connection to keep (None when it is no
        longer usable). Only the recipient's refusal (RCPT, or DATA) is permanent."""
        try:
            if client.has_extn("pipelining"):
                self._send_pipelined(client, message)
            else:
                self._send_plainly(client, message)
            with self._lock:
                self._timeouts = 0
            return Outcome(message.key, True, code=250), client
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            return _failure(message, code, reply, "recipient refused"), _usable(client, code)
        except smtplib.SMTPSenderRefused as exc:
            error = (
                f"the SMTP server refused the sender {exc.sender}: {exc.smtp_code} {_text(exc.smtp_error)}; "
                "check DIGEST_MAIL_FROM and the server's sending rules"
            )
            return Outcome(message.key, False, code=exc.smtp_code, error=error), _usable(
                client, exc.smtp_code
            )
        except smtplib.SMTPResponseException as exc:
            return _failure(message, exc.smtp_code, exc.smtp_error, "refused"), _usable(client, exc.smtp_code)
        except _AfterFinalDot as wrapped:
            return self._lost(client, message, wrapped.__cause__ or wrapped, maybe_sent=True), None
        except (smtplib.SMTPException, OSError) as exc:
            return self._lost(client, message, exc, maybe_sent=False), None

    def _lost(self, client: smtplib.SMTP, message: Outgoing, exc: BaseException, maybe_sent: bool) -> Outcome:
        """The outcome of a connection that failed (it is closed); GIVE_UP_AFTER_TIMEOUTS timeouts in a
        row break the transport for the rest of the run."""
        _close(client)
        error = f"SMTP server {self._where}: {_reason(exc)}"
        if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
            with self._lock:
                self._timeouts += 1
                if self._timeouts >= GIVE_UP_AFTER_TIMEOUTS:
                    self._broken = f"{error} {self._timeouts} times in a row; not tried again this run"
        return Outcome(message.key, False, error=error, maybe_sent=maybe_sent)

    def _send_pipelined(self, client: smtplib.SMTP, message: Outgoing) -> None:
        """MAIL, RCPT and DATA in one write, then their three replies, then the data (RFC 2920): two
        round trips a message instead of four. Raises what smtplib's sendmail raises."""
        envelope = f"MAIL FROM:<{message.sender}>\r\nRCPT TO:<{message.recipient}>\r\nDATA\r\n"
        client.send(envelope.encode("ascii"))
        mail, rcpt, data = client.getreply(), client.getreply(), client.getreply()
        if data[0] == 354:  # a server that took DATA after a refusal still needs the data ended
            if mail[0] != 250 or rcpt[0] not in (250, 251):
                client.send(b".\r\n")
                client.getreply()
            else:
                data = self._send_data(client, message)
        if mail[0] != 250:
            raise smtplib.SMTPSenderRefused(mail[0], mail[1], message.sender)
        if rcpt[0] not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({message.recipient: rcpt})
        if data[0] != 250:
            raise smtplib.SMTPDataError(*data)

    def _send_plainly(self, client: smtplib.SMTP, message: Outgoing) -> None:
        """MAIL, RCPT, DATA one after the other, for a server without PIPELINING."""
        code, reply = client.mail(message.sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, message.sender)
        code, reply = client.rcpt(message.recipient)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({message.recipient: (code, reply)})
        client.putcmd("data")
        code, reply = client.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        code, reply = self._send_data(client, message)
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)

    def _send_data(self, client: smtplib.SMTP, message: Outgoing) -> tuple[int, bytes]:
        """The data, dot-stuffed (RFC 5321 4.5.2); then, holding the commit point when there is one,
        the final dot and its reply, waited for up to ``data_timeout``."""
        body = message.data.replace(b"\n.", b"\n..")
        if body.startswith(b"."):
            body = b"." + body
        client.send(body + (b"" if body.endswith(b"\r\n") else b"\r\n"))
        commit = self._commit
        if commit is not None:
            commit.enter()
            self._holding.add(message.key)
        if client.sock is not None:
            client.sock.settimeout(self.data_timeout)
        client.send(b".\r\n")
        try:
            reply = client.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            raise _AfterFinalDot from exc
        if client.sock is not None:
            client.sock.settimeout(self.timeout)
        return reply

    @property
    def _where(self) -> str:
        return f"{self.target.host}:{self.target.port}"

    def close(self) -> None:
        while True:
            try:
                client, _since = self._idle.get_nowait()
            except queue.Empty:
                return
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                _close(client)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return str(exc) or type(exc).__name__


def _failure(message: Outgoing, code: int, reply: bytes | str, what: str) -> Outcome:
    """A refusal of this message: permanent (a bounce) for 5xx, temporary for 4xx."""
    error = f"{what}: {code} {_text(reply)}".strip()
    return Outcome(message.key, False, permanent=code >= 500, code=code, error=error)


def _usable(client: smtplib.SMTP | None, code: int) -> smtplib.SMTP | None:
    """Keep the connection after a refusal, unless the server is closing it (421) or it is broken."""
    if client is None:
        return None
    if code == 421:
        _close(client)
        return None
    try:
        client.rset()
    except (smtplib.SMTPException, OSError):
        _close(client)
        return None
    return client


def _close(client: smtplib.SMTP | None) -> None:
    if client is None:
        return
    with contextlib.suppress(OSError):
        client.close()


def transport_for(settings: Any, stream: IO[str] | None = None) -> Transport:
    """The transport the settings ask for. Raises ConfigError for SMTP without an https base_url
    (unless its links lead to this machine only) or without a mail domain of one's own."""
    kind = settings.transport
    if kind == "console":
        return ConsoleTransport(stream)
    if kind == "outbox":
        return OutboxTransport(Path(settings.outbox_dir))
    if settings.smtp_url is None:
        raise ConfigError("mail_transport is smtp but smtp_url is not set: set DIGEST_SMTP_URL.")
    target = SmtpTarget.from_url(settings.smtp_url.get_secret_value())
    if settings.mail_domain == "localhost" and not target.loopback:
        raise ConfigError(
            f"mail_from is {settings.mail_from}: mail sent over SMTP needs an address of your domain "
            "(Message-IDs and the List-Id are made from it). Set DIGEST_MAIL_FROM."
        )
    if (
        not settings.base_url.startswith("https://")
        and not target.loopback
        and not names_loopback(urlsplit(settings.base_url).hostname or "")  # links to this machine only
    ):
        raise ConfigError(
            f"base_url is {settings.base_url}: mail sent over SMTP must carry https links "
            "(unsubscribe, preferences). Set DIGEST_BASE_URL to your web front's https address "
            "(an http one only on this machine: http://localhost:8000, for trying it out)."
        )
    return SmtpTransport(
        target,
        timeout=settings.smtp_timeout,
        connections=settings.smtp_connections,
        rate=settings.smtp_rate_limit,
        data_timeout=settings.smtp_data_timeout,
    )
