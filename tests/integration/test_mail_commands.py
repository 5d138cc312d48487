"""What people write to digest: commands to ``commands_address`` (arXiv style, double opt-in) and
an unsubscribe to ``unsubscribe_mailto``, handled as `digest inbound handle` hands them over, with
the answers landing in the file outbox."""

from __future__ import annotations

import email.message
import itertools
import json
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.store.models import Subscriber
from digest.usecases import inbound
from digest.usecases.inbound import Handled
from tests.support.cli import digest
from tests.support.data import NOW
from tests.support.store import add_subscriber, context, migrated_sessions, outbox

COMMANDS = "commands@digest.example.org"
UNSUBSCRIBE = "unsubscribe@digest.example.org"
_ids = itertools.count(1)


@pytest.fixture
def writable(mail_settings: Settings) -> Settings:
    """Mail to the test's outbox, commands and unsubscribes by mail on."""
    return mail_settings.model_copy(
        update={
            "commands_address": COMMANDS,
            "unsubscribe_mailto": UNSUBSCRIBE,
            "mail_from": "digest@digest.example.org",
        }
    )


def letter(sender: str, body: str, subject: str = "", headers: str = "") -> bytes:
    """A message a person (or a program) writes, with a Message-ID of its own."""
    return (
        f"From: Someone <{sender}>\nTo: {COMMANDS}\nSubject: {subject}\n"
        f"Message-ID: <{next(_ids)}.letter@mail.example>\n{headers}\n{body}"
    ).encode()


def handle(settings: Settings, sessions: sessionmaker[Session], raw: bytes, to: str = COMMANDS) -> Handled:
    return inbound.handle(context(settings, sessions), raw, [to], NOW, envelope_sender="someone@mail.example")


def answers(settings: Settings) -> list[email.message.EmailMessage]:
    """The answers in the outbox since the last call (taken out of it: file names sort at random)."""
    found = outbox(settings)
    for path in Path(settings.outbox_dir).glob("*.eml"):
        path.unlink()
    return found


def text_of(message: email.message.EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content().replace("\r\n", "\n")


def subscriber(sessions: sessionmaker[Session], address: str) -> Subscriber | None:
    with sessions() as session:
        return session.scalars(select(Subscriber).where(Subscriber.email == address)).one_or_none()


def test_subscribing_by_mail_waits_for_the_reply_then_the_interests_are_the_letters_lines(
    writable: Settings, sessions: sessionmaker[Session]
) -> None:
    asked = letter("new@example.org", "subscribe Ada Lovelace\ndiffusion models\ncat:cs.LG\n")
    assert handle(writable, sessions, asked).answered
    [confirmation] = answers(writable)
    assert confirmation["To"] == "new@example.org" and confirmation["From"].addresses[0].addr_spec == COMMANDS
    assert confirmation["Auto-Submitted"] == "auto-replied"
    assert confirmation["In-Reply-To"].startswith("<") and confirmation["In-Reply-To"].endswith(
        ".letter@mail.example>"
    )
    code = confirmation["Subject"].removeprefix("confirm ")
    assert code != confirmation["Subject"] and f"/confirm/{code}" in text_of(confirmation)
    assert subscriber(sessions, "new@example.org").status == "pending"

    reply = letter(
        "new@example.org",
        f"Yes please.\n\nOn Tue, 24 Nov 2026, Paper digest wrote:\n> Reply to confirm\n> confirm {code}\n",
        subject=f"Re: confirm {code}",
    )
    handled = handle(writable, sessions, reply)
    assert handled.outcome == "commands" and "confirmed" in handled.detail
    joined = subscriber(sessions, "new@example.org")
    assert (joined.status, joined.interests) == ("active", "diffusion models\ncat:cs.LG")
    [welcome] = answers(writable)
    assert "diffusion models" in text_of(welcome) and "confirmed" in text_of(welcome)


def test_help_and_list_are_answered_at_once_and_list_shows_the_interests(
    writable: Settings, sessions: sessionmaker[Session]
) -> None:
    add_subscriber(sessions, "ada@example.org", interests="graph neural networks\nauthor:Hinton")
    assert handle(writable, sessions, letter("ada@example.org", "", subject="help")).outcome == "help"
    [helped] = (text_of(message) for message in answers(writable))
    assert handle(writable, sessions, letter("ada@example.org", "list\n")).outcome == "commands"
    [listed] = (text_of(message) for message in answers(writable))
    assert handle(writable, sessions, letter("stranger@example.org", "list\n")).answered
    [refused] = (text_of(message) for message in answers(writable))
    assert "add LINE, del LINE, list, pause, resume, cancel, help" in " ".join(helped.split())
    assert "  graph neural networks\n  author:Hinton" in listed
    assert "stranger@example.org is not subscribed" in refused and "Hinton" not in refused


def test_a_forged_from_changes_nothing_and_only_the_owners_reply_carries_it_out(
    writable: Settings, sessions: sessionmaker[Session]
) -> None:
    add_subscriber(sessions, "ada@example.org", interests="graph neural networks\nrobotics")
    forged = letter("ada@example.org", "del robotics\npause\nadd quantum chemistry\n")
    assert handle(writable, sessions, forged).answered
    [asked] = answers(writable)
    assert asked["To"] == "ada@example.org"  # the owner's mailbox: a forger never sees the code
    code = asked["Subject"].removeprefix("confirm ")
    assert (
        subscriber(sessions, "ada@example.org").interests,
        subscriber(sessions, "ada@example.org").status,
    ) == (
        "graph neural networks\nrobotics",
        "active",
    )

    assert (
        "does not work" in handle(writable, sessions, letter("mallory@example.org", f"confirm {code}")).detail
    )
    assert (
        "does not work"
        in handle(writable, sessions, letter("ada@example.org", "confirm not-the-code")).detail
    )
    assert subscriber(sessions, "ada@example.org").status == "active"

    handle(writable, sessions, letter("ada@example.org", "", subject=f"Re: confirm {code}"))
    changed = subscriber(sessions, "ada@example.org")
    assert (changed.interests, changed.status) == ("graph neural networks\nquantum chemistry", "paused")
    assert "does not work" in handle(writable, sessions, letter("ada@example.org", f"confirm {code}")).detail


def test_a_line_that_is_no_interest_is_refused_saying_why(
    writable: Settings, sessions: sessionmaker[Session]
) -> None:
    add_subscriber(sessions, "ada@example.org", interests="robotics")
    handled = handle(
        writable, sessions, letter("ada@example.org", 'add "unclosed phrase\nfly me to the moon\n')
    )
    assert 'add "unclosed phrase: not added' in handled.detail
    assert "not a command: fly me to the moon" in handled.detail
    [answer] = answers(writable)
    assert not answer["Subject"].startswith("confirm")  # nothing to confirm: nothing would change


def test_an_unsubscribe_by_mail_stops_the_digest_and_answers_the_subscribed_address_once(
    writable: Settings, sessions: sessionmaker[Session]
) -> None:
    add_subscriber(sessions, "ada@example.org")
    # What a mail client's unsubscribe button sends to the List-Unsubscribe mailto: of a digest.
    raw = letter(
        "ada.lovelace@work.example", "This message was sent to unsubscribe.", "unsubscribe ada@example.org"
    )
    handled = handle(writable, sessions, raw, to=UNSUBSCRIBE)
    assert (handled.outcome, handled.subscriber, handled.answered) == (
        "unsubscribed",
        "ada@example.org",
        True,
    )
    assert subscriber(sessions, "ada@example.org").status == "unsubscribed"
    assert handle(writable, sessions, raw, to=UNSUBSCRIBE).outcome == "repeated"
    [answer] = answers(writable)
    assert answer["To"] == "ada@example.org" and "/preferences/" in text_of(answer)
    assert answer["From"].addresses[0].addr_spec == UNSUBSCRIBE


@pytest.mark.parametrize(
    "headers",
    ["Auto-Submitted: auto-replied\n", "Precedence: bulk\n", "List-Id: <papers.lists.example>\n"],
)
def test_a_message_a_program_sent_is_not_acted_on_nor_answered(
    writable: Settings, sessions: sessionmaker[Session], headers: str
) -> None:
    handled = handle(
        writable, sessions, letter("robot@example.org", "subscribe\nrobotics\n", headers=headers)
    )
    assert (handled.outcome, handled.answered) == ("ignored", False)
    assert subscriber(sessions, "robot@example.org") is None and answers(writable) == []


def test_two_instances_exchange_one_message_and_no_more(
    writable: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    other_sessions = migrated_sessions(other_url)
    other = writable.model_copy(
        update={
            "database_url": SecretStr(other_url),
            "commands_address": "commands@other.example",
            "mail_from": "digest@other.example",
            "unsubscribe_mailto": None,
            "outbox_dir": tmp_path / "other-outbox",
        }
    )
    # Someone writes to this instance from the other's commands address; this one answers there.
    assert handle(writable, sessions, letter("commands@other.example", "help")).answered
    [answer] = answers(writable)
    onward = handle(other, other_sessions, answer.as_bytes(), to="commands@other.example")
    assert (onward.outcome, onward.answered) == ("ignored", False)
    itself = handle(writable, sessions, answer.as_bytes())
    assert (itself.outcome, itself.answered) == ("ignored", False)
    assert answers(writable) == [] and answers(other) == []


def test_one_address_gets_a_limited_number_of_answers_a_day(
    writable: Settings, sessions: sessionmaker[Session]
) -> None:
    limited = writable.model_copy(update={"inbound_answers_per_day": 2})
    said = [handle(limited, sessions, letter("chatty@example.org", "help")).answered for _ in range(4)]
    assert said == [True, True, False, False] and len(answers(limited)) == 2


def test_the_command_line_hands_a_message_to_the_commands_address(
    writable: Settings, migrated_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "letter.eml"
    path.write_bytes(letter("ada@example.org", "help"))
    env = {
        "DIGEST_COMMANDS_ADDRESS": COMMANDS,
        "DIGEST_MAIL_TRANSPORT": "outbox",
        "DIGEST_OUTBOX_DIR": str(writable.outbox_dir),
        "DIGEST_BASE_URL": "https://digest.example.org",
    }
    result = digest(
        "inbound",
        "handle",
        str(path),
        "--to",
        COMMANDS,
        "--from",
        "ada@example.org",
        "--json",
        url=migrated_url,
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["outcome"] == "help" and len(answers(writable)) == 1
