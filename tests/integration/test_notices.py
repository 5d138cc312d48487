"""The web front's confirmation and manage mails: sent in the background, tried again a bounded
number of times, over a real SMTP server on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from digest.config import Settings
from digest.store import schema
from digest.store.engine import make_engine
from digest.usecases import subscribers
from digest.usecases.context import Context
from digest.usecases.notices import NoticeQueue
from digest.usecases.preferences import Preferences
from digest.usecases.subscribers import Notice, TokenError
from tests.support.smtp import ScriptedServer, serving
from tests.support.waiting import WAIT

NOTICE = Notice("confirm", "ada@example.org", "a-secret-token")


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with serving(ScriptedServer()) as handler:
        yield handler


def queue_to(server: ScriptedServer, tmp_path, delays: tuple[float, ...] = (0.01, 0.01)) -> NoticeQueue:
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    engine = make_engine(url)
    schema.upgrade(engine)  # where a link whose mail did not go is deleted
    engine.dispose()
    settings = Settings(
        database_url=url,
        smtp_url=SecretStr(f"smtp://127.0.0.1:{server.port}"),
        base_url="https://digest.example.org",
    )
    return NoticeQueue(Context(settings), delays=delays)


def sent_through(queue: NoticeQueue, *notices: Notice) -> None:
    queue.start()
    try:
        for notice in notices:
            assert queue.put(notice)
        assert queue.settle(WAIT)
    finally:
        queue.stop()


def test_a_mail_the_server_defers_is_sent_on_a_later_try(server, tmp_path) -> None:
    server.next["MAIL"] = ["421 4.3.2 busy, try later"]
    sent_through(queue_to(server, tmp_path), NOTICE)
    assert [recipient for recipient, _ in server.received] == ["ada@example.org"]
    assert server.connections == 2


def test_a_mail_the_server_keeps_deferring_is_given_up_after_the_last_retry(server, tmp_path, caplog) -> None:
    server.next["MAIL"] = ["421 4.3.2 busy, try later"] * 10
    with caplog.at_level(logging.INFO, "digest.usecases.notices"):
        sent_through(queue_to(server, tmp_path, delays=(0.01, 0.01)), NOTICE)
    assert server.received == [] and server.connections == 3
    assert "the confirm mail to ada@example.org was not sent (3 tries)" in caplog.text


def test_a_mail_refused_for_good_is_not_tried_again(server, tmp_path) -> None:
    server.refuse["ada@example.org"] = "550 5.1.1 no such mailbox"
    sent_through(queue_to(server, tmp_path), NOTICE, Notice("manage", "bo@example.org", "another"))
    assert [recipient for recipient, _ in server.received] == ["bo@example.org"]
    assert server.connections == 2  # one each: the refused one was not tried again


def test_the_link_of_a_mail_refused_for_good_no_longer_confirms(server, tmp_path) -> None:
    """Nothing takes it for mailed: an import with --confirm mails that subscriber a new link."""
    queue = queue_to(server, tmp_path)
    now = queue.context.now()
    notice = subscribers.sign_up(queue.context, Preferences(email="ada@example.org").validated(), now)
    subscribers.check_confirm(queue.context, notice.token, now)  # stored, so far valid
    server.refuse["ada@example.org"] = "550 5.1.1 no such mailbox"
    sent_through(queue, notice)
    with pytest.raises(TokenError):
        subscribers.check_confirm(queue.context, notice.token, now)


def test_a_full_queue_drops_the_mail_and_says_so(server, tmp_path, caplog) -> None:
    queue = queue_to(server, tmp_path)
    queue.limit = 2  # not started: nothing leaves the queue
    assert queue.put(NOTICE) and queue.put(NOTICE)
    assert not queue.put(Notice("manage", "bo@example.org", "another"))
    assert "the manage mail to bo@example.org was dropped: 2 mails wait already" in caplog.text


def test_stopping_says_how_many_mails_were_left_unsent(server, tmp_path, caplog) -> None:
    queue = queue_to(server, tmp_path)
    queue.put(NOTICE)
    queue.put(NOTICE)
    queue.stop()
    assert "2 confirmation or manage mails were not sent: the web front stopped" in caplog.text
    assert server.received == []


def test_a_mail_whose_final_reply_was_lost_is_not_sent_again(server, tmp_path, caplog) -> None:
    server.next["DATA"] = ["drop"]  # the connection closes after the data, before the server's reply
    sent_through(queue_to(server, tmp_path), NOTICE)
    assert server.connections == 1  # not tried again: the server may have the mail
    assert "the confirm mail to ada@example.org was not sent (1 tries)" in caplog.text


def test_a_setting_at_fault_is_said_once_not_retried(server, tmp_path, caplog) -> None:
    queue = queue_to(server, tmp_path)
    missing = tmp_path / "missing.pem"
    queue.context.settings = queue.context.settings.model_copy(
        update={"dkim_selector": "digest", "dkim_key_file": missing}
    )
    sent_through(queue, NOTICE)
    assert server.connections == 0 and "Traceback" not in caplog.text
    assert "the confirm mail to ada@example.org was not sent (1 tries): " in caplog.text
    assert f"Cannot read the DKIM key {missing}" in caplog.text
