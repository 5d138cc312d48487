"""What people write to digest: an unsubscribe (to ``unsubscribe_mailto``) and commands (to
``commands_address``), each acted on in the caller's session and answered once.

A forged From must not change anybody's subscription: a sign-up by mail stays pending until the
address confirms it (a reply carrying the code, or the link), and any other change waits, stored
with a code mailed to the subscriber's address, until a reply from that address carries it. Only
``list`` and ``help`` answer at once, and an answer goes only to the subscriber's own address.
An unsubscribe is the exception RFC 2369's mailto form asks for: done at once, and the answer (to
the subscribed address, never to a stranger) carries a link to take it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.inbound.commands import CHANGES, Command, apply_changes, read_commands
from digest.inbound.letters import Letter
from digest.model.link_tokens import new_token
from digest.model.subscriber import SubscriberStatus
from digest.render.mails import Answer
from digest.store import subscribers as stored
from digest.store import tokens as stored_tokens
from digest.store.engine import Session
from digest.store.models import Subscriber
from digest.usecases import subscribers
from digest.usecases.context import Context
from digest.usecases.preferences import Preferences

COMMANDS = "mail-commands"  # the purpose of a token holding changes asked for by mail
CURRENT = (SubscriberStatus.ACTIVE.value, SubscriberStatus.PAUSED.value)
HELP = (
    "Write one command per line: subscribe (the lines after it are your interests, one per line), "
    "add LINE, del LINE, list, pause, resume, cancel, help. A change is made once you reply to "
    'the confirmation that comes back. An interest line is words, "quoted phrases", -excluded '
    "words, author:Name or cat:cs.LG."
)


@dataclass(frozen=True, slots=True)
class Reply:
    """What a message came to: ``outcome`` and ``detail`` for the log, and the ``answer`` to
    mail to ``to`` (None: no answer)."""

    outcome: str
    detail: str
    to: str | None = None
    answer: Answer | None = None


def unsubscribe(ctx: Context, session: Session, letter: Letter, now: datetime) -> Reply:
    """Unsubscribe the address the message names (in its subject or text, else its From)."""
    subscriber = _named(session, letter)
    if subscriber is None:
        return Reply("unattributed", "names no subscriber")
    if not subscribers.stop_mailing(subscriber, now):
        return Reply("unchanged", f"{subscriber.email} was not subscribed")
    manage = subscribers.manage_token(session, subscriber.id, now, ctx.settings.link_days)
    site = ctx.settings.mail_from_name
    answer = Answer(
        subject=f"You are unsubscribed from {site}",
        heading="You are unsubscribed",
        lead=f"No more digests will come to {subscriber.email}, as a message to "
        f"{ctx.settings.unsubscribe_mailto} asked. Changed your mind, or was it not you? Resume on "
        "your preferences page.",
        link=f"{ctx.settings.base_url}/preferences/{manage}",
        action="Open my preferences",
        footer=f"You get this once, because {subscriber.email} was subscribed to {site}.",
    )
    return Reply("unsubscribed", subscriber.email, subscriber.email, answer)


def commands(ctx: Context, session: Session, letter: Letter, now: datetime) -> Reply:
    """Carry out (or ask to confirm) the commands of a message from ``letter.sender``."""
    assert letter.sender is not None
    script = read_commands(letter.subject, letter.text)
    subscriber = stored.subscriber_by_email(session, letter.sender)
    done = [f"not a command: {line}" for line in script.unknown]
    link = code = None
    changes = tuple(command for command in script.commands if command.verb in CHANGES)
    confirming = next((command for command in script.commands if command.verb == "confirm"), None)
    if confirming is not None:
        done.extend(_confirm(ctx, session, letter.sender, confirming.argument, now))
        subscriber = stored.subscriber_by_email(session, letter.sender)
    elif changes and (subscriber is None or subscriber.status not in CURRENT):
        said, code, link = _sign_up(ctx, session, letter.sender, subscriber, changes, now)
        done.append(said)
    elif changes:
        assert subscriber is not None
        preview = apply_changes(subscriber.interests, subscriber.status, changes)
        done.extend(preview.done)
        if preview.changed:
            code = _hold(ctx, session, subscriber, changes, now)
    verbs = {command.verb for command in script.commands}
    shown = (
        subscriber is not None
        and subscriber.status in CURRENT
        and bool(verbs & {"list", "confirm", *CHANGES})
    )
    if "list" in verbs and not shown:
        done.append(f"list: {letter.sender} is not subscribed; send subscribe with your interests")
    site = ctx.settings.mail_from_name
    outcome = "commands" if verbs - {"help"} else "help"
    answer = Answer(
        subject=f"confirm {code}" if code else f"Your commands to {site}",
        heading="Reply to confirm" if code else f"{site} by mail",
        lead=_lead(code, site) if code or script.commands else HELP,
        quoted="\n".join(command.text for command in script.commands)[:4000],
        done=tuple(done),
        interests=tuple(subscriber.interests.splitlines()) if shown and subscriber is not None else None,
        link=link,
        action="Confirm my subscription",
        footer=HELP
        if "help" in verbs or not script.commands
        else f"Send help to {ctx.settings.commands_address} for the commands.",
    )
    return Reply(outcome, "; ".join(done)[:2000], letter.sender, answer)


def _lead(code: str | None, site: str) -> str:
    if code:
        return (
            f"Nothing has changed yet. To carry out what you asked of {site}, reply to this message "
            "keeping its subject (the code in it says it is you). If you did not write to us, ignore "
            "this mail: nothing will change."
        )
    return f"Here is what {site} made of your message."


def _named(session: Session, letter: Letter) -> Subscriber | None:
    """The subscriber whose address the subject or text names (RFC 2369's mailto form puts it in
    the subject), else the sender."""
    for word in f"{letter.subject} {letter.text[:2000]}".split():
        word = word.strip("<>()[],;:\"'").lower()
        if "@" in word:
            found = stored.subscriber_by_email(session, word)
            if found is not None:
                return found
    return stored.subscriber_by_email(session, letter.sender) if letter.sender else None


def _sign_up(
    ctx: Context,
    session: Session,
    email: str,
    subscriber: Subscriber | None,
    changes: tuple[Command, ...],
    now: datetime,
) -> tuple[str, str | None, str | None]:
    """A confirmation request for ``email`` to subscribe with the interests ``changes`` give:
    what the answer says, its code and its link (None, None when refused)."""
    if not any(command.verb == "subscribe" for command in changes):
        return f"{email} is not subscribed: send subscribe, then your interests one per line", None, None
    applied = apply_changes("", SubscriberStatus.ACTIVE.value, changes)
    wish = Preferences(email=email, interests=applied.interests)
    if subscriber is None:
        subscriber = stored.add_pending(session, email, {"interests": "", "min_score": 0.0}, now)
    notice = subscribers.ask_confirmation(ctx, session, subscriber, wish, now)
    said = "subscribe: asked; it starts once you reply to this message or open the link below"
    if applied.done:
        said += " (" + "; ".join(applied.done) + ")"
    return said, notice.token, f"{ctx.settings.base_url}/confirm/{notice.token}"


def _hold(
    ctx: Context, session: Session, subscriber: Subscriber, changes: tuple[Command, ...], now: datetime
) -> str:
    """Store ``changes`` until a reply carries the code returned."""
    token, hashed = new_token()
    payload = {"commands": [[command.verb, command.argument, list(command.lines)] for command in changes]}
    expires = now + timedelta(hours=ctx.settings.confirm_hours)
    stored_tokens.add(session, hashed, COMMANDS, subscriber.id, now, expires, payload)
    return token


def _confirm(ctx: Context, session: Session, email: str, code: str, now: datetime) -> list[str]:
    """Carry out what the code ``code`` holds, when it is a live one of ``email``'s."""
    try:
        row = subscribers.lookup(
            session, code.split(" ", 1)[0], ("confirm", COMMANDS), now, ctx.settings.link_days
        )
    except subscribers.TokenError:
        row = None
    owner = stored.subscriber_by_id(session, row.subscriber_id) if row is not None else None
    if (
        row is None
        or owner is None
        or owner.email != email
        or row.used_at is not None
        or not stored_tokens.use(session, row.id, now)
    ):
        return ["confirm: this code does not work (used, expired or not yours); send your commands again"]
    if row.purpose == "confirm":
        subscribers.confirmed(session, row, now)
        return ["confirmed: your subscription is active; the first digest comes at its hour"]
    commands = tuple(
        Command(verb, argument, tuple(lines)) for verb, argument, lines in row.payload["commands"]
    )
    applied = apply_changes(owner.interests, owner.status, commands)
    subscribers.change(owner, {"interests": applied.interests, "status": applied.status}, now)
    return ["confirmed", *applied.done]
