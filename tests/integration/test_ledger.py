"""The ledger under stress: competing senders, interrupted batches, missed days, odd data."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import event, select, update

from digest.cli import cli
from digest.deliver import planner
from digest.deliver.ledgers import LiveLedger
from digest.deliver.sender import Sender, Summary
from digest.mail.transports import OutboxTransport, Outcome, Transport, transport_for
from digest.model.time import system_clock
from digest.render.mails import Renderer
from digest.store import ledger as store_ledger
from digest.store.engine import Database
from digest.store.models import Delivery, DeliveryPaper, Paper, Subscriber
from digest.usecases import digests
from tests.support.data import HF_JSON, NOW
from tests.support.smtp import ScriptedServer, free_port
from tests.support.store import add_subscriber, context, ingest_fixture, ledger, outbox, send


class SlowServer(ScriptedServer):
    async def handle_DATA(self, server, session, envelope) -> str:
        time.sleep(0.25)  # blocks the server's loop: one message at a time, slowly
        return await super().handle_DATA(server, session, envelope)


def test_two_senders_with_a_lease_shorter_than_a_batch_send_each_digest_once(mail_settings, sessions) -> None:
    handler = SlowServer()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    ingest_fixture(sessions)
    for number in range(8):
        add_subscriber(sessions, f"reader{number}@example.org", interests="")
    settings = mail_settings.model_copy(
        update={
            "smtp_url": SecretStr(f"smtp://127.0.0.1:{controller.port}"),
            "smtp_connections": 1,
            "claim_batch": 8,
            "claim_lease": 1.0,
        }
    )
    now = NOW
    results: list[Summary] = []

    def later_sender() -> None:
        time.sleep(1.3)  # past the first sender's original lease, mid-batch
        results.append(send(settings, sessions, now))

    second = threading.Thread(target=later_sender)
    try:
        second.start()
        first = send(settings, sessions, now)
        second.join(30)
    finally:
        controller.stop()
    assert first.sent + results[0].sent == 8
    assert sorted(handler.message_ids) == sorted({row.message_id for row in ledger(sessions)})
    assert len(handler.message_ids) == 8


def test_a_sender_that_lost_its_claim_records_nothing(mail_settings, sessions) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    with transport_for(mail_settings) as transport:
        stale = Sender(mail_settings, Database(sessions.kw["bind"]), transport)
        with sessions() as session:
            planner.plan(session, NOW)
            [(row_id, _)] = store_ledger.claim(
                session, stale.claimant, NOW, system_clock, batch=10, lease=60, deadline=24
            )
            session.execute(update(Delivery).values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
            session.commit()
        assert send(mail_settings, sessions).sent == 1  # another sender takes the row over and sends it
        with sessions() as session:
            row = session.get(Delivery, row_id)
            subscriber = session.get(Subscriber, row.subscriber_id)
            outcome = Outcome(row_id, False, permanent=True, code=550, error="550 late news")
            rows = LiveLedger(session, stale.claimant, mail_settings, system_clock)
            assert stale._finish(rows, row, subscriber, NOW, outcome) is None
            session.commit()
    [row] = ledger(sessions)
    assert row.status == "sent" and row.last_error is None


def test_a_sender_that_loses_the_race_for_a_batch_claims_the_next_one(sessions) -> None:
    """Between one sender's select and its update, another claims every row it found (SQLite has no
    SKIP LOCKED): the first claims the next free rows instead of ending its run with rows due."""
    for number in range(4):
        add_subscriber(sessions, f"reader{number}@example.org")
    with sessions() as session:
        planner.plan(session, NOW)
    engine = sessions.kw["bind"]
    rival: list[list[tuple[int, str]]] = []

    def rival_claims_first(_connection, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("UPDATE DELIVERIES") and not rival:
            rival.append([])  # once
            with sessions() as other:
                rival[0] = store_ledger.claim(
                    other, "rival:1:x", NOW, system_clock, batch=2, lease=600, deadline=24
                )

    event.listen(engine, "before_cursor_execute", rival_claims_first)
    try:
        with sessions() as session:
            mine = store_ledger.claim(session, "me:2:y", NOW, system_clock, batch=2, lease=600, deadline=24)
    finally:
        event.remove(engine, "before_cursor_execute", rival_claims_first)
    assert len(rival[0]) == 2 and len(mine) == 2
    assert {row_id for row_id, _ in mine}.isdisjoint(row_id for row_id, _ in rival[0])


def test_only_a_taken_over_row_whose_message_was_built_counts_as_a_possible_duplicate(
    mail_settings, sessions
) -> None:
    """A dead sender's row with no Message-ID never reached the transport (the Message-ID is stored
    before it goes): taking it over is no possible duplicate. One with a Message-ID may be."""
    ingest_fixture(sessions)
    add_subscriber(sessions, "ada@example.org")
    add_subscriber(sessions, "bob@example.org")
    with sessions() as session:
        planner.plan(session, NOW)
        claimed = store_ledger.claim(session, "dead:1:x", NOW, system_clock, batch=10, lease=600, deadline=24)
        built = min(row_id for row_id, _ in claimed)
        session.execute(update(Delivery).where(Delivery.id == built).values(message_id="<built@example.org>"))
        session.execute(update(Delivery).values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
        session.commit()
    summary = send(mail_settings, sessions)
    assert summary.sent == 2 and summary.possible_duplicates == ["<built@example.org>"]
    assert {message["Message-ID"] for message in outbox(mail_settings)} >= {"<built@example.org>"}


def test_an_error_building_one_digest_does_not_stop_the_others(mail_settings, sessions, monkeypatch) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions, "ada@example.org")
    add_subscriber(sessions, "bob@example.org")
    original = Renderer.render

    def broken_for_bob(self, digest):
        if digest.email == "bob@example.org":
            raise KeyError("a template bug")
        return original(self, digest)

    monkeypatch.setattr(Renderer, "render", broken_for_bob)
    summary = send(mail_settings, sessions)
    rows = {row.subscriber_id: row for row in ledger(sessions)}
    assert (summary.sent, summary.failed_temporary) == (1, 1)
    bob = rows[2]
    assert bob.status == "failed-temporary" and "a template bug" in bob.last_error and bob.next_attempt_at


class BreaksAfterOne(OutboxTransport):
    def deliver(self, messages):
        for number, message in enumerate(messages):
            if number == 1:
                raise RuntimeError("the transport fell over")
            yield self.deliver_one(message)


def test_an_interrupted_batch_gives_back_the_digests_it_never_handed_over(mail_settings, sessions) -> None:
    ingest_fixture(sessions)
    for number in range(4):
        add_subscriber(sessions, f"reader{number}@example.org")
    transport = BreaksAfterOne(Path(mail_settings.outbox_dir))
    with pytest.raises(RuntimeError):
        Sender(mail_settings, Database(sessions.kw["bind"]), transport).run(NOW)
    statuses = [row.status for row in ledger(sessions)]
    assert statuses == ["sent", "sending", "failed-temporary", "failed-temporary"]
    assert "the sender stopped before sending it" in ledger(sessions)[2].last_error
    later = send(mail_settings, sessions, NOW + timedelta(minutes=1))
    assert later.sent == 2  # the released ones; the one in flight waits for its lease


def test_a_digest_never_sent_is_covered_by_the_next_days(mail_settings, sessions) -> None:
    ingest_fixture(sessions, seen=NOW - timedelta(days=1, hours=2))
    add_subscriber(sessions, max_papers=50, trending_section=False, created_at=NOW - timedelta(days=3))
    with sessions() as session:  # planned yesterday, then the sender died before claiming it
        assert len(planner.plan(session, NOW - timedelta(days=1)).due) == 1
    ingest_fixture(sessions, HF_JSON)
    summary = send(mail_settings, sessions)
    yesterday, today = ledger(sessions)
    assert (summary.sent, yesterday.status, today.status) == (1, "superseded", "sent")
    with sessions() as session:
        held = set(session.scalars(select(DeliveryPaper.paper_id)))
    assert "2407.21783" in held and any(paper.startswith("2606.") for paper in held)


def test_papers_of_a_digest_that_was_given_up_come_in_the_next_one(mail_settings, sessions, tmp_path) -> None:
    ingest_fixture(sessions, seen=NOW - timedelta(hours=3))
    add_subscriber(sessions, trending_section=False)
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    broken = mail_settings.model_copy(update={"outbox_dir": blocked, "retry_deadline": 1.0})
    send(broken, sessions)
    send(broken, sessions, NOW + timedelta(hours=2))  # past the deadline: given up
    assert ledger(sessions)[0].status == "failed-permanent"
    assert send(mail_settings, sessions, NOW + timedelta(days=1)).sent == 1
    [message] = outbox(mail_settings)
    assert "Llama 3 Herd" in message.get_body(("plain",)).get_content()


def test_a_retry_for_someone_who_left_is_not_sent(mail_settings, sessions, tmp_path) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    send(mail_settings.model_copy(update={"outbox_dir": blocked}), sessions)
    with sessions.begin() as session:
        session.execute(update(Subscriber).values(status="unsubscribed"))
    summary = send(mail_settings, sessions, NOW + timedelta(hours=1))
    [row] = ledger(sessions)
    assert (summary.sent, summary.skipped, row.status) == (0, 1, "skipped")
    assert row.last_error == "the subscriber is unsubscribed" and outbox(mail_settings) == []


def test_a_weekly_subscriber_whose_day_was_missed_gets_it_the_day_after(mail_settings, sessions) -> None:
    ingest_fixture(sessions, seen=NOW - timedelta(days=8))
    add_subscriber(sessions, frequency="weekly", weekly_day="tue", interests="")
    week_before = NOW - timedelta(days=7)  # a Tuesday, like NOW
    assert send(mail_settings, sessions, week_before).sent == 1
    ingest_fixture(sessions, HF_JSON, seen=NOW - timedelta(days=2))
    assert send(mail_settings, sessions, NOW + timedelta(days=1)).sent == 1  # Wednesday: Tuesday was missed
    assert send(mail_settings, sessions, NOW + timedelta(days=2)).planned == 0  # and only once
    assert [row.digest_date.isoformat() for row in ledger(sessions)] == ["2026-11-17", "2026-11-25"]


def test_a_paper_stored_late_with_an_earlier_stamp_is_not_missed(mail_settings, sessions) -> None:
    ingest_fixture(sessions, seen=NOW - timedelta(hours=2))
    add_subscriber(sessions, interests="", max_papers=50, trending_section=False)
    send(mail_settings, sessions)
    # Another process had stamped these papers before the digest was made but stored them after.
    ingest_fixture(sessions, HF_JSON, seen=NOW - timedelta(minutes=30))
    send(mail_settings, sessions, NOW + timedelta(days=1))
    with sessions() as session:
        held = set(session.scalars(select(DeliveryPaper.paper_id)))
        late = set(session.scalars(select(Paper.id).where(Paper.id.like("2606.%"))))
    assert late and late <= held


def test_an_unknown_time_zone_stops_only_that_subscriber(mail_settings, sessions, caplog) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions, "ada@example.org")
    add_subscriber(sessions, "bob@example.org")
    with sessions.begin() as session:
        session.execute(
            update(Subscriber).where(Subscriber.email == "bob@example.org").values(timezone="Mars/Olympus")
        )
    assert send(mail_settings, sessions).sent == 1
    assert "bob@example.org has an unknown time zone 'Mars/Olympus'" in caplog.text


def test_send_dry_run_lists_every_due_subscriber(mail_settings, sessions, migrated_url) -> None:
    ingest_fixture(sessions)
    for name in ("ada", "bob", "cy"):
        add_subscriber(sessions, f"{name}@example.org")
    env = {"DIGEST_DATABASE_URL": migrated_url}
    result = CliRunner().invoke(cli, ["send", "--dry-run", "--now", NOW.isoformat()], env=env)
    assert result.exit_code == 0, result.output
    assert all(f"{name}@example.org" in result.output for name in ("ada", "bob", "cy"))
    assert "3 digests due" in result.output and ledger(sessions) == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DIGEST_MAIL_FROM": "dïgest@example.org"}, "mail_from (DIGEST_MAIL_FROM)"),
        ({"DIGEST_DKIM_SELECTOR": "s1", "DIGEST_DKIM_KEY_FILE": "{bad}"}, "cannot sign"),
        (
            {"DIGEST_SMTP_URL": "smtp://mail.example.org:587", "DIGEST_BASE_URL": "https://d.example.org"},
            "needs an address of your domain",
        ),
        ({"DIGEST_SMTP_URL": "smtp://127.0.0.1:1"}, None),
    ],
)
def test_bad_mail_settings_are_refused_before_anything_is_claimed(
    sessions, migrated_url, tmp_path, env, expected
) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    env = {key: value.replace("{bad}", str(bad)) for key, value in env.items()}
    result = CliRunner().invoke(
        cli, ["send", "--now", NOW.isoformat()], env={"DIGEST_DATABASE_URL": migrated_url, **env}
    )
    if expected is None:  # an unreachable server: a temporary failure, clearly reported
        assert result.exit_code == 1 and "Traceback" not in result.output
        [row] = ledger(sessions)
        assert (
            row.status == "failed-temporary"
            and "check the host and port in DIGEST_SMTP_URL" in row.last_error
        )
        return
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert ledger(sessions) == []


class Counting(Transport):
    """Accepts everything and counts deliveries by Message-ID; can take a while to get going."""

    def __init__(self, received: list[str], start_delay: float = 0.0) -> None:
        self.received, self.start_delay = received, start_delay

    def deliver(self, messages):
        time.sleep(self.start_delay)  # a slow connect, TLS handshake or login
        yield from super().deliver(messages)

    def deliver_one(self, message):
        self.received.append(message.message_id)
        return Outcome(message.key, True, code=250)


def test_a_sender_slow_to_start_sending_hands_over_nothing_another_took(mail_settings, sessions) -> None:
    ingest_fixture(sessions)
    for number in range(4):
        add_subscriber(sessions, f"reader{number}@example.org", interests="")
    settings = mail_settings.model_copy(update={"claim_lease": 1.0})
    received: list[str] = []
    summaries: list[Summary] = []

    def run(start_delay: float, wait: float) -> None:
        time.sleep(wait)
        summaries.append(
            Sender(settings, Database(sessions.kw["bind"]), Counting(received, start_delay)).run(NOW)
        )

    slow = threading.Thread(target=run, args=(1.6, 0))
    slow.start()
    run(0, 1.1)  # after the slow sender's lease, before it sends
    slow.join(30)
    rows = ledger(sessions)
    assert {row.status for row in rows} == {"sent"} and len(rows) == 4
    assert sorted(received) == sorted(row.message_id for row in rows)  # each once


def test_a_weekly_digest_a_day_late_still_holds_the_papers_of_the_week(mail_settings, sessions) -> None:
    add_subscriber(
        sessions, frequency="weekly", weekly_day="tue", interests="", created_at=NOW - timedelta(days=30)
    )
    ingest_fixture(sessions, seen=NOW - timedelta(days=8))
    assert send(mail_settings, sessions, NOW - timedelta(days=7)).sent == 1  # Tuesday 17th, 08:00
    ingest_fixture(sessions, HF_JSON, seen=NOW - timedelta(days=7) + timedelta(hours=4))  # that noon
    assert send(mail_settings, sessions, NOW + timedelta(days=1)).sent == 1  # Tuesday 24th missed
    with sessions() as session:
        last = max(ledger(sessions), key=lambda row: row.id)
        held = set(
            session.scalars(select(DeliveryPaper.paper_id).where(DeliveryPaper.delivery_id == last.id))
        )
    assert held and all(paper.startswith("2606.") for paper in held)


def test_a_new_digest_waits_while_the_subscribers_earlier_one_is_being_sent(mail_settings, sessions) -> None:
    ingest_fixture(sessions, seen=NOW - timedelta(hours=2))
    add_subscriber(sessions)
    with sessions() as session:  # yesterday's digest, composed and in the hands of another sender
        planner.plan(session, NOW - timedelta(days=1))
        [(row_id, _)] = store_ledger.claim(
            session, "another:1:x", NOW - timedelta(days=1), system_clock, batch=10, lease=600, deadline=24
        )
        session.execute(update(Delivery).values(papers_until=NOW - timedelta(days=1)))
        session.commit()
    waiting = send(mail_settings, sessions)
    today = max(ledger(sessions), key=lambda row: row.id)
    assert waiting.sent == 0 and today.status == "failed-temporary" and "still being sent" in today.last_error
    assert today.attempts == 0  # waiting is no attempt
    with sessions.begin() as session:
        session.execute(update(Delivery).where(Delivery.id == row_id).values(status="sent"))
    assert send(mail_settings, sessions, NOW + timedelta(hours=1)).sent == 1


def test_a_bounce_never_undoes_an_unsubscription(mail_settings, sessions) -> None:
    add_subscriber(sessions)
    with sessions() as session:
        settings = mail_settings.model_copy(update={"max_hard_bounces": 1})
        rows = LiveLedger(session, "me:1:x", settings, system_clock)
        subscriber = session.scalars(select(Subscriber)).one()  # loaded while still active
        with sessions.begin() as other:
            other.execute(update(Subscriber).values(status="unsubscribed"))
        rows.bounced(subscriber, NOW, "550 gone")
        session.commit()
    with sessions() as session:
        stored = session.scalars(select(Subscriber)).one()
    assert (stored.status, stored.hard_bounces) == ("unsubscribed", 1)


def test_a_digest_that_cannot_be_built_is_given_up_after_the_deadline(
    mail_settings, sessions, monkeypatch
) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    monkeypatch.setattr(Renderer, "render", lambda self, digest: {}["a template bug"])
    settings = mail_settings.model_copy(update={"retry_deadline": 1.0})
    send(settings, sessions)
    assert ledger(sessions)[0].status == "failed-temporary"
    send(settings, sessions, NOW + timedelta(hours=2))
    [row] = ledger(sessions)
    assert row.status == "failed-permanent" and row.last_error.startswith("gave up after 1 h")


def test_preview_and_dry_run_name_an_unknown_time_zone_instead_of_failing(sessions, migrated_url) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions, "ada@example.org")
    add_subscriber(sessions, "bob@example.org")
    with sessions.begin() as session:
        session.execute(
            update(Subscriber).where(Subscriber.email == "bob@example.org").values(timezone="Mars/Base")
        )
    env = {"DIGEST_DATABASE_URL": migrated_url}
    preview = CliRunner().invoke(cli, ["preview", "bob@example.org"], env=env)
    assert preview.exit_code == 2 and "unknown time zone 'Mars/Base'" in preview.output
    dry = CliRunner().invoke(cli, ["send", "--dry-run", "--now", NOW.isoformat()], env=env)
    assert dry.exit_code == 0 and "ada@example.org" in dry.output and "1 digests due" in dry.output


def test_a_digest_taken_over_from_a_dead_sender_and_the_next_days_both_go_out_in_one_run(
    mail_settings, sessions
) -> None:
    ingest_fixture(sessions, seen=NOW - timedelta(days=1, hours=3))
    add_subscriber(sessions, trending_section=False)
    yesterday = NOW - timedelta(days=1)
    with sessions() as session:  # yesterday's digest was claimed by a sender that then died
        planner.plan(session, yesterday)
        store_ledger.claim(session, "dead:1:x", yesterday, system_clock, batch=10, lease=600, deadline=24)
        session.execute(update(Delivery).values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
        session.commit()
    ingest_fixture(sessions, HF_JSON, seen=NOW - timedelta(hours=2))
    summary = send(mail_settings, sessions)
    rows = ledger(sessions)
    assert [row.status for row in rows] == ["sent", "sent"] and summary.sent == 2
    with sessions() as session:
        papers = session.scalars(select(DeliveryPaper.paper_id)).all()
    assert len(papers) == len(set(papers))  # the two digests share no paper


def test_a_sender_run_again_after_an_interrupted_batch_stores_nothing_twice(
    mail_settings, sessions, monkeypatch
) -> None:

    ingest_fixture(sessions)
    add_subscriber(sessions, "ada@example.org")
    add_subscriber(sessions, "bob@example.org")
    original = Renderer.render

    def interrupted_at_bob(self, digest):
        if digest.email == "bob@example.org":
            raise KeyboardInterrupt
        return original(self, digest)

    monkeypatch.setattr(Renderer, "render", interrupted_at_bob)
    with transport_for(mail_settings) as transport:
        sender = Sender(mail_settings, Database(sessions.kw["bind"]), transport)
        with pytest.raises(KeyboardInterrupt):
            sender.run(NOW)
        monkeypatch.setattr(Renderer, "render", original)
        assert sender.run(NOW).sent == 2  # the same sender, again: what the first run queued is gone
    assert {row.status for row in ledger(sessions)} == {"sent"} and len(outbox(mail_settings)) == 2


class LeaseWatching(Transport):
    """Accepts everything, noting the lease each row had when its message was handed over."""

    def __init__(self, sessions) -> None:
        self.sessions, self.leases = sessions, []

    def deliver_one(self, message):
        with self.sessions() as session:
            self.leases.append(session.get(Delivery, message.key).lease_until)
        return Outcome(message.key, True, code=250)


def test_leases_run_on_the_real_clock_whatever_time_the_send_acts_at(
    mail_settings, sessions, monkeypatch
) -> None:
    """Other senders judge a lease by the real time: a send acting at another time (--now, a
    scheduler's clock) must still lease on it, or its rows would be taken over at once, or never."""
    ingest_fixture(sessions)
    add_subscriber(sessions)
    watching = LeaseWatching(sessions)
    monkeypatch.setattr(digests, "transport_for", lambda _settings: watching)
    before = datetime.now(UTC)
    result = digests.send(context(mail_settings, sessions, lambda: NOW), NOW)
    assert result.sent == 1
    [lease] = watching.leases
    assert before + timedelta(seconds=mail_settings.claim_lease - 60) < lease
    assert lease <= datetime.now(UTC) + timedelta(seconds=mail_settings.claim_lease)
