"""Reading what people write to digest: the commands in a message, what they would change, whom
RFC 3834 says never to answer, and the answer's mail built from outside text."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.errors import MessageError
from digest.inbound.commands import VERBS, Command, apply_changes, read_commands
from digest.inbound.letters import base_address, read_letter
from digest.mail.message import QUOTED_ID, Envelope, Identity, build_message
from digest.render.mails import Answer, NoticeRenderer
from tests.support.data import GOLDEN

OURS = frozenset({"digest@digest.example.org", "commands@digest.example.org"})
UPDATE_GOLDEN = os.environ.get("DIGEST_UPDATE_GOLDEN") == "1"


def test_the_subject_counts_as_a_command_and_the_lines_after_subscribe_are_interests() -> None:
    script = read_commands("Re: Fwd: subscribe Ada", "diffusion models\n\ncat:cs.LG\nlist\nend\nadd ignored")
    assert script.commands == (
        Command("subscribe", "Ada", ("diffusion models", "cat:cs.LG")),
        Command("list"),
    )


def test_reading_stops_at_the_signature_and_the_quoted_reply() -> None:
    body = "pause\n> del robotics\nOn Tue, 24 Nov 2026, Paper digest wrote:\nresume\n"
    assert read_commands("", body).commands == (Command("pause"),)
    assert read_commands("", "help\n-- \nAda\nadd spam\n").commands == (Command("help"),)


def test_a_letter_instead_of_commands_stops_after_a_few_lines() -> None:
    script = read_commands("Hello", "\n".join(f"line {n} of a letter" for n in range(20)) + "\nhelp")
    assert script.commands == () and len(script.unknown) == 5


def test_changes_add_delete_and_move_the_status_saying_what_each_did() -> None:
    commands = (
        Command("add", "quantum chemistry"),
        Command("add", "Robotics"),
        Command("del", "robotics"),
        Command("del", "knitting"),
        Command("pause"),
        Command("resume"),
    )
    applied = apply_changes("robotics\ngraph neural networks", "active", commands)
    assert applied.interests == "graph neural networks\nquantum chemistry"
    assert applied.status == "active" and applied.changed
    assert applied.done == (
        "added: quantum chemistry",
        "add Robotics: in your interests already",
        "deleted: robotics",
        "del knitting: not in your interests (send list to see them)",
        "paused: no digest until you send resume",
        "resumed: the digest comes again",
    )


def test_a_change_that_changes_nothing_is_no_change() -> None:
    applied = apply_changes("robotics", "paused", (Command("pause"), Command("add", "robotics")))
    assert not applied.changed and applied.done[0] == "pause: nothing to do (the subscription is paused)"


@pytest.mark.parametrize(
    ("headers", "envelope", "reason"),
    [
        ("Auto-Submitted: auto-replied\n", None, "Auto-Submitted: auto-replied"),
        ("Precedence: bulk\n", None, "Precedence: bulk"),
        ("List-Id: <papers.lists.example>\n", None, "a List-Id header"),
        ("", "<>", "a null envelope sender (a delivery report)"),
        ("", "", "a null envelope sender (a delivery report)"),
    ],
)
def test_rfc_3834_says_which_messages_are_never_answered(
    headers: str, envelope: str | None, reason: str
) -> None:
    raw = f"From: ada@example.org\nSubject: help\n{headers}\nhelp\n".encode()
    assert read_letter(raw, envelope, OURS).automatic == reason


@pytest.mark.parametrize(
    "sender", ["MAILER-DAEMON@relay.example", "owner-papers@lists.example", "papers-request@lists.example"]
)
def test_mail_systems_and_list_managers_are_never_answered(sender: str) -> None:
    assert read_letter(f"From: {sender}\n\nhelp\n".encode()).automatic is not None


def test_digest_itself_is_never_answered_whatever_tag_its_address_carries() -> None:
    raw = b"From: commands+x1@Digest.Example.org\nSubject: help\n\nhelp\n"
    assert read_letter(raw, None, OURS).automatic == "sent by digest itself"
    assert base_address("<Bounces+20261124.7.ab@Digest.Example.org>") == "bounces@digest.example.org"


def test_a_person_is_read_with_their_address_and_text() -> None:
    raw = (
        b"From: Ada Lovelace <Ada@Example.org>\nSubject: =?utf-8?q?list?=\nMessage-ID: <x1@mail.example>\n"
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
        b"list =E2=9C=93\n"
    )
    letter = read_letter(raw)
    assert (letter.sender, letter.subject, letter.message_id, letter.automatic) == (
        "ada@example.org",
        "list",
        "<x1@mail.example>",
        None,
    )
    assert letter.text.strip() == "list \u2713"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_are_read_without_raising(raw: bytes) -> None:
    letter = read_letter(raw)
    assert letter.sender is None or "@" in letter.sender


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.text(max_size=2000))
def test_any_text_gives_known_commands_only(subject: str, text: str) -> None:
    script = read_commands(subject, text)
    assert all(command.verb in VERBS for command in script.commands)
    assert len(script.unknown) <= 5 and len(script.commands) <= 50


SENDER = Identity("commands@digest.example.org", "Paper digest", "digest.example.org")


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=120), st.from_regex(QUOTED_ID, fullmatch=True)))
def test_an_answer_carries_the_message_id_it_answers_only_when_it_is_safe_in_a_header(quoted: str) -> None:
    envelope = Envelope(
        "ada@example.org",
        "<answer.1.ab@digest.example.org>",
        datetime(2026, 11, 24, tzinfo=UTC),
        None,
        quoted,
        True,
    )
    try:
        message = build_message(SENDER, envelope, "Your commands", "text", "<p>html</p>")
    except MessageError:
        return
    head = message.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert f"In-Reply-To: {quoted}\r\n" in head and "\n" not in quoted and "\r" not in quoted
    assert all(re.match(r"[A-Za-z-]+: |[ \t]", line) for line in head.split("\r\n"))


def test_an_answer_renders_as_its_golden_file() -> None:
    answer = Answer(
        subject="confirm abc123",
        heading="Reply to confirm",
        lead="Nothing has changed yet. <b>Reply</b> to this message keeping its subject.",
        quoted="del robotics\nadd quantum chemistry",
        done=("deleted: robotics", "added: quantum chemistry"),
        interests=("graph neural networks", "quantum chemistry"),
        footer="Send help to commands@digest.example.org for the commands.",
    )
    rendered = NoticeRenderer("Paper digest").answer(answer)
    assert "&lt;b&gt;Reply&lt;/b&gt;" in rendered.html  # outside text is escaped
    for name, got in (("answer.txt", rendered.text), ("answer.html", rendered.html)):
        path = GOLDEN / name
        if UPDATE_GOLDEN:
            path.write_text(got)
        assert got == path.read_text(), f"{name} changed; if on purpose, DIGEST_UPDATE_GOLDEN=1"
