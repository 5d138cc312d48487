"""Mail benchmarks behind ``digest bench render`` and ``digest bench send``.

Digests are composed as the sender composes them, from synthetic papers made of the captured
fixture text and subscribers with fixture-drawn interests (see digest.bench.data). Each figure is
measured beside a naive baseline in the same run.
"""

from __future__ import annotations

import random
import secrets
import smtplib
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import css_inline
from jinja2 import FileSystemLoader

from digest.bench.data import fixture_papers, interest_vocabulary, synthetic_docs, synthetic_interests
from digest.bench.sink import Sink
from digest.compose.digest import Digest, PaperView, items, links, select
from digest.mail.message import Envelope, Identity, build_message
from digest.mail.transports import Outgoing, SmtpTarget, SmtpTransport
from digest.render import templates
from digest.render.mails import Renderer, add_fragments
from digest.render.templates import TEXT_WIDTH
from digest.resources import resource_dir
from digest.score.index import Doc, Weights, build_index, corpus_from
from digest.score.interests import parse_interests
from digest.score.rank import Profile, ProfileSet, rank

SENDER = Identity("digest@example.org", "Paper digest", "example.org")
BASE = "https://digest.example.org"
SEND_PAPERS = 6  # with 3 trending ones: messages of about 30 KB, as the send goal names


def sample_digests(count: int, *, papers: int = 1_000, limit: int = 10, seed: int = 11) -> list[Digest]:
    """``count`` digests of up to ``limit`` papers and 3 trending ones, each with its explanations."""
    rng = random.Random(seed)
    docs = synthetic_docs(papers, rng)
    vocabulary = interest_vocabulary(fixture_papers())
    profiles = [
        Profile(parse_interests(synthetic_interests(vocabulary, rng)), limit=limit) for _ in range(count)
    ]
    corpus = corpus_from((doc.title, doc.abstract) for doc in docs)
    profile_set = ProfileSet.build(profiles)
    index = build_index(docs, corpus, Weights(), profile_set.atoms)
    ranking = rank(index, profile_set)
    views = {doc.id: _view(doc, rng) for doc in docs}
    digests = []
    for number, profile in enumerate(profiles):
        chosen = select(index, ranking[number], profile, set(), 3)
        token = secrets.token_urlsafe(24)
        digests.append(
            Digest(
                email=f"reader{number}@example.org",
                digest_date=date(2026, 11, 24),
                frequency="daily",
                items=items(index, chosen.main, profile, views),
                trending=items(index, chosen.trending, profile, views),
                links=links(BASE, token),
            )
        )
    return [digest for digest in digests if not digest.empty]


def _view(doc: Doc, rng: random.Random) -> PaperView:
    return PaperView(
        id=doc.id,
        title=doc.title,
        url=f"https://arxiv.org/abs/{doc.id}",
        authors=doc.authors + tuple(f"Author {n}" for n in range(rng.randrange(8))),
        upvotes=doc.upvotes,
        comments=doc.comments,
        pdf_url=f"https://arxiv.org/pdf/{doc.id}",
        code_url=f"https://github.com/example/{doc.id}" if rng.random() < 0.3 else None,
        hf_url=f"https://huggingface.co/papers/{doc.id}",
    )


def _envelope(digest: Digest, number: int) -> Envelope:
    return Envelope(
        digest.email, f"<20261124.{number}.bench@example.org>", datetime.now(UTC), digest.links.unsubscribe
    )


def fast_message(renderer: Renderer, digest: Digest, number: int) -> bytes:
    rendered = renderer.render(digest)
    return build_message(SENDER, _envelope(digest, number), rendered.subject, rendered.text, rendered.html)


class NaiveRenderer:
    """The straightforward way: the same templates, the stylesheet inlined into every message by
    css-inline, text wrapped by textwrap on every call (as Jinja's wordwrap filter does), and a fresh
    EmailMessage serialised per message."""

    def __init__(self) -> None:
        folder = resource_dir("templates")
        env = templates.environment(FileSystemLoader(str(folder)))
        env.filters["wrap"] = _naive_wrap
        add_fragments(env, size=0)
        self.html = env.get_template("email/digest.html")
        self.text = env.get_template("email/digest.txt")
        self.context = Renderer().context
        self.inliner = css_inline.CSSInliner(
            keep_at_rules=True,
            load_remote_stylesheets=False,
            extra_css=(folder / "email" / "digest.css").read_text(encoding="utf-8"),
        )

    def message(self, digest: Digest, number: int) -> bytes:
        context = self.context(digest)
        html = self.inliner.inline(self.html.render(context))
        text = self.text.render(context)
        message = EmailMessage()
        message["From"] = "Paper digest <digest@example.org>"
        message["To"] = digest.email
        message["Subject"] = context["subject"]
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = f"<20261124.{number}.bench@example.org>"
        message["List-Id"] = "Paper digest <digest.example.org>"
        message["List-Unsubscribe"] = f"<{digest.links.unsubscribe}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return message.as_bytes()


def _naive_wrap(text: str, indent: str = "", first: str | None = None, width: int = TEXT_WIDTH) -> str:
    lead = indent if first is None else first
    rest = indent if first is None else " " * len(first)
    return textwrap.fill(
        " ".join(str(text).split()),
        width=width,
        initial_indent=lead,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


def bench_render(
    *, messages: int = 5_000, baseline_sample: int = 500, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    """Messages per second rendered (HTML, text, MIME) beside the naive renderer."""
    progress(f"composing {messages:,} digests from synthetic papers")
    digests = sample_digests(messages)
    renderer = Renderer()
    naive = NaiveRenderer()
    for number, digest in enumerate(digests[:20]):  # warm both paths' template caches
        fast_message(renderer, digest, number)
        naive.message(digest, number)
    renderer = Renderer()  # fresh caches: no message of the run was rendered before
    templates._fill.cache_clear()
    progress(f"rendering {len(digests):,} messages")
    start = time.perf_counter()
    sizes = [len(fast_message(renderer, digest, number)) for number, digest in enumerate(digests)]
    fast_s = time.perf_counter() - start
    sample = digests[:baseline_sample]
    progress(f"rendering {len(sample):,} messages the naive way")
    start = time.perf_counter()
    for number, digest in enumerate(sample):
        naive.message(digest, number)
    naive_s = time.perf_counter() - start
    rate, baseline = len(digests) / fast_s, len(sample) / naive_s
    return {
        "messages": len(digests),
        "papers_per_message": round(sum(len(d.items) + len(d.trending) for d in digests) / len(digests), 1),
        "average_message_kb": round(sum(sizes) / len(sizes) / 1024, 1),
        "messages_per_s": round(rate, 1),
        "baseline_messages": len(sample),
        "baseline_messages_per_s": round(baseline, 1),
        "ratio": round(rate / baseline, 1),
    }


def bench_send(
    *,
    messages: int = 10_000,
    connections: int = 2,
    baseline_sample: int = 1_000,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Messages per second sent over loopback to a fast sink: persistent pooled connections beside
    one new connection per message."""
    progress("rendering the messages to send")
    digests = sample_digests(min(messages, 1_000), limit=SEND_PAPERS)
    renderer = Renderer()
    bodies = [fast_message(renderer, digest, number) for number, digest in enumerate(digests)]
    outgoing = [
        Outgoing(
            number, SENDER.address, digests[number % len(digests)].email, "", bodies[number % len(bodies)]
        )
        for number in range(messages)
    ]
    size = sum(len(message.data) for message in outgoing) / len(outgoing)
    with Sink() as sink:
        target = SmtpTarget("127.0.0.1", sink.port, False, None, None)
        progress(f"sending {messages:,} messages over {connections} connections")
        with SmtpTransport(target, timeout=30, connections=connections, helo="bench") as transport:
            start = time.perf_counter()
            failed = sum(not outcome.ok for outcome in transport.deliver(outgoing))
            fast_s = time.perf_counter() - start
        accepted = sink.received
        sample = outgoing[:baseline_sample]
        progress(f"sending {len(sample):,} messages with a new connection each")
        start = time.perf_counter()
        for message in sample:
            client = smtplib.SMTP("127.0.0.1", sink.port, local_hostname="bench", timeout=30)
            client.sendmail(message.sender, [message.recipient], message.data)
            client.quit()
        naive_s = time.perf_counter() - start
        baseline_accepted = sink.received - accepted
    if failed or accepted != messages or baseline_accepted != len(sample):
        raise RuntimeError(f"the sink accepted {accepted} of {messages} messages ({failed} failed)")
    rate, baseline = messages / fast_s, len(sample) / naive_s
    return {
        "messages": messages,
        "average_message_kb": round(size / 1024, 1),
        "connections": connections,
        "messages_per_s": round(rate, 1),
        "megabytes_per_s": round(rate * size / 1e6, 1),
        "baseline_messages": len(sample),
        "baseline_messages_per_s": round(baseline, 1),
        "ratio": round(rate / baseline, 1),
    }
