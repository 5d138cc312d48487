"""Jobs that had two owners now have one, so their entry points agree: the dry run and the send, a
preview and the mail sent, ``digest score`` and the digest's picks, the command line and the web
front making a bounced subscriber active again."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, date, datetime, timedelta

from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from digest.cli import cli
from digest.deliver import planner
from digest.model.time import system_clock
from digest.store import ledger as store_ledger
from digest.store.models import Delivery, DeliveryPaper, Subscriber
from digest.usecases import digests, subscribers
from digest.web import Web, create_app
from tests.support.data import HF_JSON, NOW
from tests.support.store import add_subscriber, context, ingest_fixture, ledger, outbox, send

TOKEN = re.compile(r"(/d/|/preferences/|/unsubscribe/|/feedback/)[A-Za-z0-9_-]+")
RANDOM_HEADERS = {"Message-ID", "Date"}


def test_the_dry_run_lists_exactly_the_digests_the_send_then_mails(mail_settings, sessions) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions, "ada@example.org")  # due now
    add_subscriber(sessions, "late@example.org", timezone="America/New_York", send_hour=9)  # 03:00 there
    add_subscriber(sessions, "paused@example.org", status="paused")
    add_subscriber(sessions, "nothing@example.org", interests="quantum chromodynamics")  # no match: skipped
    bob = add_subscriber(sessions, "bob@example.org", frequency="weekly", weekly_day="mon")
    with sessions.begin() as session:  # Monday's digest failed for now, and is due for a retry
        session.add(
            Delivery(
                subscriber_id=bob,
                digest_date=NOW.date() - timedelta(days=1),
                status="failed-temporary",
                attempts=1,
                next_attempt_at=NOW - timedelta(minutes=5),
                created_at=NOW - timedelta(days=1),
                updated_at=NOW - timedelta(days=1),
            )
        )
    ctx = context(mail_settings, sessions, lambda: NOW)
    dry = digests.dry_run(ctx, NOW)
    would = {row.email for row in dry.rows if row.status == "due"}
    assert would == {"ada@example.org", "bob@example.org"}
    assert {row.email: row.status for row in dry.rows}["nothing@example.org"] == "skipped"
    assert [row.status for row in ledger(sessions)] == ["failed-temporary"]  # the dry run stored nothing
    summary = send(mail_settings, sessions)
    assert {message["To"] for message in outbox(mail_settings)} == would
    assert summary.sent == len(would)


def test_the_dry_run_takes_up_a_dead_senders_digest_and_the_next_days_as_the_send_does(
    mail_settings, sessions
) -> None:
    """Yesterday's digest was claimed by a sender that died; today's is due too. The send takes over
    yesterday's, makes today's wait for it, then sends both in one run: so does its dry run."""
    ingest_fixture(sessions, seen=NOW - timedelta(days=1, hours=3))
    add_subscriber(sessions, trending_section=False)
    yesterday = NOW - timedelta(days=1)
    with sessions() as session:
        planner.plan(session, yesterday)
        store_ledger.claim(session, "dead:1:x", yesterday, system_clock, batch=10, lease=600, deadline=24)
        session.execute(update(Delivery).values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
        session.commit()
    ingest_fixture(sessions, HF_JSON, seen=NOW - timedelta(hours=2))
    dry = digests.dry_run(context(mail_settings, sessions, lambda: NOW), NOW)
    listed = sorted((row.email, row.day, row.status, row.papers) for row in dry.rows)
    send(mail_settings, sessions)
    with sessions() as session:
        held = dict(
            session.execute(
                select(Delivery.digest_date, func.count(DeliveryPaper.paper_id))
                .join(DeliveryPaper)
                .group_by(Delivery.digest_date)
            ).all()
        )
    sent = sorted(
        (row_email, row.digest_date, "due", held[row.digest_date]) for row, row_email in _sent(sessions)
    )
    assert listed == sent and len(listed) == 2


def _sent(sessions) -> list[tuple[Delivery, str]]:
    with sessions() as session:
        query = select(Delivery, Subscriber.email).join(Subscriber).where(Delivery.status == "sent")
        return list(session.execute(query).all())


def _normalised(message: email.message.EmailMessage) -> tuple[list[tuple[str, str]], list[str]]:
    """A message's headers and decoded parts, with what is random or secret per message replaced."""
    headers = []
    for name, value in message.items():
        if name in RANDOM_HEADERS:
            continue
        if name == "Content-Type":
            value = re.sub(r'boundary="[^"]+"', 'boundary="B"', value)
        headers.append((name, TOKEN.sub(r"\1T", str(value))))
    parts = [TOKEN.sub(r"\1T", part.get_content()) for part in message.iter_parts()]
    return headers, parts


def test_a_preview_is_the_mail_the_send_then_puts_in_the_outbox(mail_settings, sessions) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions, "ada@example.org")
    previewed = digests.preview(context(mail_settings, sessions, lambda: NOW), "ada@example.org")
    send(mail_settings, sessions)
    [sent] = outbox(mail_settings)
    shown = email.message_from_bytes(previewed.message, policy=email.policy.default)
    assert shown["Message-ID"] != sent["Message-ID"] and "/unsubscribe/preview" in shown["List-Unsubscribe"]
    assert _normalised(shown) == _normalised(sent)
    assert previewed.subject == sent["Subject"] and len(previewed.digest.items) == 5


def test_digest_score_ranks_the_papers_the_digest_picks_in_the_same_order(
    mail_settings, sessions, migrated_url
) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions, "ada@example.org", max_papers=5, trending_section=False)
    env = {"DIGEST_DATABASE_URL": migrated_url}
    scored = CliRunner().invoke(cli, ["score", "ada@example.org", "--all", "--json"], env=env)
    assert scored.exit_code == 0, scored.output
    ranked = [re.search(r'"id": "([^"]+)"', line).group(1) for line in scored.output.splitlines()]
    scores = [float(re.search(r'"score": ([0-9.]+)', line).group(1)) for line in scored.output.splitlines()]
    send(mail_settings, sessions)
    with sessions() as session:
        picked = session.execute(
            select(DeliveryPaper.paper_id, DeliveryPaper.score).order_by(DeliveryPaper.position)
        ).all()
    assert ranked == [paper for paper, _ in picked] and len(ranked) == 5
    assert scores == [round(score, 4) for _, score in picked]


def test_a_bounced_subscriber_made_active_from_the_cli_or_the_web_is_the_same_row(
    mail_settings, sessions, migrated_url
) -> None:
    wanted = {
        "interests": '"language model"\nagents',
        "timezone": "Europe/Paris",
        "send_hour": 8,
        "max_papers": 5,
        "trending_section": True,
    }
    for address in ("cli@example.org", "web@example.org"):
        add_subscriber(
            sessions,
            address,
            status="bounced",
            hard_bounces=3,
            confirmed_at=NOW - timedelta(days=9),
            **wanted,
        )
    with sessions.begin() as session:
        session.execute(update(Subscriber).values(unsubscribed_at=NOW - timedelta(days=1)))
    result = CliRunner().invoke(
        cli,
        ["subscribers", "edit", "cli@example.org", "--status", "active"],
        env={"DIGEST_DATABASE_URL": migrated_url},
    )
    assert result.exit_code == 0, result.output
    ctx = context(mail_settings, sessions, lambda: NOW)
    with sessions() as session:
        web_id = session.scalar(select(Subscriber.id).where(Subscriber.email == "web@example.org"))
    token = subscribers.new_manage_token(ctx, web_id, NOW)
    with TestClient(create_app(Web(ctx)), base_url=mail_settings.base_url) as client:
        page = client.get(f"/preferences/{token}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        form = {
            **{key: str(value) for key, value in wanted.items()},
            "frequency": "daily",
            "trending_section": "yes",
        }
        saved = client.post(f"/preferences/{token}", data={**form, "csrf": csrf}, follow_redirects=False)
        assert saved.status_code == 303
    with sessions() as session:
        rows = {row.email: row for row in session.scalars(select(Subscriber))}
    ignored = {"id", "email", "updated_at"}
    columns = [column.name for column in Subscriber.__table__.columns if column.name not in ignored]
    by_cli = {name: getattr(rows["cli@example.org"], name) for name in columns}
    by_web = {name: getattr(rows["web@example.org"], name) for name in columns}
    assert by_cli == by_web
    assert (by_cli["status"], by_cli["hard_bounces"], by_cli["unsubscribed_at"]) == ("active", 0, None)


def test_score_and_preview_with_a_date_choose_from_the_same_papers(mail_settings, sessions) -> None:
    """--date is the digest's date for both: yesterday's digest draws on the page's papers, today's
    on the API's as well; --listed is what a source listed on a date."""
    ingest_fixture(sessions, seen=NOW - timedelta(days=1, hours=3))
    ingest_fixture(sessions, HF_JSON, seen=NOW - timedelta(hours=2))
    add_subscriber(sessions, "ada@example.org", interests="model", max_papers=50, trending_section=False)
    ctx = context(mail_settings, sessions, lambda: NOW)
    for day in (NOW.date() - timedelta(days=1), NOW.date()):
        scored = digests.score(ctx, "ada@example.org", digest_date=day)
        shown = digests.preview(ctx, "ada@example.org", digest_date=day)
        assert {row["id"] for row in scored.rows} == {item.paper.id for item in shown.digest.items}
        assert scored.rows and str(day) in scored.chosen_from
    yesterday = digests.score(ctx, "ada@example.org", digest_date=NOW.date() - timedelta(days=1))
    today = digests.score(ctx, "ada@example.org")
    # no digest was sent yesterday, so today's (a first digest) reaches back over yesterday's papers
    assert {row["id"] for row in yesterday.rows} < {row["id"] for row in today.rows}
    listed = digests.score(ctx, "ada@example.org", listed=date(2024, 8, 1))
    assert {row["id"] for row in listed.rows} == {row["id"] for row in yesterday.rows}
