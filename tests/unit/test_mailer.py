"""Messages: headers that outside text cannot break, HTML that outside text cannot script, DKIM."""

from __future__ import annotations

import base64
import email
import email.policy
import subprocess
import textwrap
from datetime import UTC, date, datetime
from pathlib import Path

import dkim
import pytest
from bs4 import BeautifulSoup
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from digest.compose.digest import Digest, Item, Links, PaperView
from digest.config import Settings
from digest.errors import ConfigError, MessageError
from digest.mail.headers import encode_header, header_text
from digest.mail.message import Envelope, Identity, build_message
from digest.mail.transports import OutboxTransport, Outgoing, transport_for
from digest.model.address import checked_address
from digest.render.mails import Renderer
from digest.render.templates import wrap
from digest.score.explain import Snippet

LINKS = Links(
    "https://digest.example.org/d/T0K",
    "https://digest.example.org/preferences/T0K",
    "https://digest.example.org/unsubscribe/T0K",
    "https://digest.example.org/feedback/T0K",
)
SENDER = Identity("digest@example.org", "Paper digest", "example.org")
EXPECTED_HEADERS = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
]
# Characters that end or split a header line somewhere: CR, LF, NUL, the other C0 and C1 controls,
# NEL, the Unicode line and paragraph separators, and bidi and zero-width format characters.
NASTY = st.sampled_from(
    [
        "\r",
        "\n",
        "\r\n",
        "\x00",
        "\x0b",
        "\x0c",
        "\x1c",
        "\x1d",
        "\x1e",
        "\x85",
        "\u2028",
        "\u2029",
        "\u202e",
        "\u200b",
        "\ufeff",
        "Bcc: eve@evil.example",
        "To: eve@evil.example",
        ":",
        ";",
        ",",
        "<",
        ">",
        "=?utf-8?q?x?=",
        '"',
        "é",
        "论文",
        "😀",
    ]
)
OUTSIDE_TEXT = st.lists(st.one_of(NASTY, st.text(max_size=8)), max_size=12).map("".join)


def item(title: str = "A paper", authors: tuple[str, ...] = ("Ada Lovelace",), abstract: str = "") -> Item:
    paper = PaperView("2407.21783", title, "https://arxiv.org/abs/2407.21783", authors, 5, 1)
    snippet = Snippet(((abstract, False),)) if abstract else Snippet()
    return Item(paper, 1.0, 1.0, 0.5, 0, "diffusion", ("diffusion",), ("title",), snippet)


def digest(*items: Item, line: str | None = None) -> Digest:
    if line is not None:
        items = tuple(
            Item(
                i.paper,
                i.score,
                i.relevance,
                i.trending,
                0,
                line,
                i.matched,
                i.where,
                i.snippet,
            )
            for i in items
        )
    return Digest("ada@example.org", date(2026, 11, 24), "daily", items, (), LINKS)


def message(d: Digest, sender: Identity = SENDER) -> email.message.EmailMessage:
    rendered = RENDERER.render(d)
    envelope = Envelope(
        "ada@example.org",
        "<20261124.1.abc@example.org>",
        datetime(2026, 11, 24, 8, tzinfo=UTC),
        LINKS.unsubscribe,
    )
    data = build_message(sender, envelope, rendered.subject, rendered.text, rendered.html)
    return email.message_from_bytes(data, policy=email.policy.default)


RENDERER = Renderer()


@settings(max_examples=300, deadline=None)
@given(topic=OUTSIDE_TEXT, title=OUTSIDE_TEXT, author=OUTSIDE_TEXT, name=OUTSIDE_TEXT)
def test_outside_text_never_adds_a_header_or_a_recipient(
    topic: str, title: str, author: str, name: str
) -> None:
    sender = Identity("digest@example.org", name or "x", "example.org")
    parsed = message(digest(item(title, (author,)), line=topic or "diffusion"), sender)
    assert list(parsed.keys()) == EXPECTED_HEADERS
    assert parsed["To"] == "ada@example.org" and parsed.get_all("To") == ["ada@example.org"]
    assert parsed["From"].addresses[0].addr_spec == "digest@example.org"
    assert [address.addr_spec for address in parsed["To"].addresses] == ["ada@example.org"]
    subject = parsed["Subject"]
    assert subject == header_text(subject) and "\n" not in subject
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]


@given(value=OUTSIDE_TEXT)
def test_header_text_is_one_line_of_visible_characters(value: str) -> None:
    cleaned = header_text(value)
    assert cleaned == cleaned.strip() and len(cleaned.splitlines()) <= 1
    assert not any(char in cleaned for char in "\r\n\x00\x85\u2028\u2029\u202e\u200b\ufeff")
    encoded = encode_header("Subject", value)
    assert all(line.startswith(" ") for line in encoded.split("\r\n")[1:])
    assert email.message_from_string(encoded + "\r\n\r\n", policy=email.policy.default)["Subject"] == cleaned


@pytest.mark.parametrize(
    "address",
    ["eve@evil.example\r\nBcc: x@y.example", "a@b.example, c@d.example", "<a@b.example>", "ü@b.example"],
)
def test_an_address_that_is_not_one_plain_address_is_refused(address: str) -> None:
    with pytest.raises(MessageError):
        checked_address(address)


def test_an_international_domain_is_sent_in_its_ascii_form() -> None:
    assert checked_address("ada@bücher.example") == "ada@xn--bcher-kva.example"


XSS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    '<a href="javascript:alert(1)">x</a>',
    "</p><iframe src=//evil.example>",
    "<svg onload=alert(1)>",
]


@pytest.mark.parametrize("payload", XSS)
def test_html_in_titles_authors_and_abstracts_is_shown_as_text(payload: str) -> None:
    html = RENDERER.render(digest(item(payload, (payload,), abstract=payload))).html
    page = BeautifulSoup(html, "lxml")
    assert not page.find_all(["script", "img", "iframe", "svg"])
    for element in page.find_all(True):
        assert not [name for name in element.attrs if name.startswith("on")], element
        assert not str(element.get("href", "")).startswith("javascript"), element
    assert payload in page.get_text()


def test_the_html_part_carries_its_styles_inline_and_keeps_dark_mode() -> None:
    html = RENDERER.render(digest(item())).html
    assert 'style="' in html and "prefers-color-scheme: dark" in html and "max-width: 620px" in html
    assert '<a href="https://arxiv.org/abs/2407.21783" style=' in html
    assert "https://digest.example.org/unsubscribe/T0K" in html and "View in browser" in html


def test_every_paper_sits_inside_the_mail_in_order() -> None:
    papers = [item(f"Paper number {number}") for number in range(4)]
    page = BeautifulSoup(RENDERER.render(digest(*papers)).html, "lxml")
    [sheet] = page.select("table.sheet")
    assert [title.get_text() for title in sheet.select("p.title")] == [f"Paper number {n}" for n in range(4)]
    assert len(sheet.select("div.rule")) == 3  # a rule between papers, none before the first
    assert not [text for text in page.find_all(string=True) if "{%" in text or "{{" in text]


def test_the_text_part_is_wrapped_at_78_columns_with_links_listed() -> None:
    long_title = "Scaling " + "very " * 30 + "large language models"
    text = RENDERER.render(digest(item(long_title, abstract="word " * 80))).text
    assert max(len(line) for line in text.splitlines() if "://" not in line) <= 78
    assert "   Abstract: https://arxiv.org/abs/2407.21783" in text
    assert "Unsubscribe:     https://digest.example.org/unsubscribe/T0K" in text


def test_dkim_signature_verifies_and_covers_the_unsubscribe_headers() -> None:
    private = subprocess.run(["openssl", "genrsa", "2048"], capture_output=True, check=True).stdout
    public = subprocess.run(
        ["openssl", "rsa", "-pubout", "-outform", "DER"], input=private, capture_output=True, check=True
    ).stdout
    sender = Identity(
        "digest@example.org",
        "Paper digest",
        "example.org",
        dkim_selector="s1",
        dkim_key=private,
    )
    rendered = RENDERER.render(digest(item()))
    envelope = Envelope("ada@example.org", "<1.a@example.org>", datetime.now(UTC), LINKS.unsubscribe)
    data = build_message(sender, envelope, rendered.subject, rendered.text, rendered.html)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"s1._domainkey.example.org."
        return record

    assert dkim.verify(data, dnsfunc=dns)
    signed = email.message_from_bytes(data)["DKIM-Signature"].replace("\r\n", "").replace(" ", "").lower()
    assert "list-unsubscribe:list-unsubscribe-post" in signed
    tampered = data.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_the_outbox_replaces_a_message_sent_again_instead_of_adding_one(tmp_path: Path) -> None:
    transport = OutboxTransport(tmp_path / "outbox")
    outgoing = Outgoing(1, "digest@example.org", "ada@example.org", "<20261124.1.abc@example.org>", b"one")
    assert transport.deliver_one(outgoing).ok
    again = Outgoing(1, "digest@example.org", "ada@example.org", "<20261124.1.abc@example.org>", b"two")
    assert transport.deliver_one(again).ok
    [written] = (tmp_path / "outbox").iterdir()
    assert written.name == "20261124.1.abc_example.org.eml" and written.read_bytes() == b"two"


WRAP_PIECES = ["a", "bb", " ", "\t", "é", "x" * 90, "https://e.org/" + "y" * 70]


@given(st.lists(st.sampled_from(WRAP_PIECES)).map("".join))
def test_wrapping_matches_textwrap_without_breaking_words(text: str) -> None:
    normal = " ".join(text.split())
    for indent, first in (("", None), ("   ", None), ("", "12. ")):
        expected = textwrap.fill(
            normal,
            width=78,
            initial_indent=first or indent,
            subsequent_indent=" " * len(first) if first else indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
        assert wrap(text, indent, first) == expected


@pytest.mark.parametrize(
    ("smtp_url", "base_url", "allowed"),
    [
        ("smtp://relay.example.org:587", "https://digest.example.org", True),
        ("smtp://relay.example.org:587", "http://digest.example.org", False),  # tokens in clear text
        ("smtp://mail:1025", "http://localhost:8000", True),  # deploy/compose.yaml: links to this machine
        ("smtp://mail:1025", "http://127.0.0.1:8000", True),
        ("smtp://127.0.0.1:1025", "http://digest.example.org", True),  # a relay on this machine
    ],
)
def test_smtp_mail_carries_https_links_unless_they_lead_to_this_machine(
    smtp_url: str, base_url: str, allowed: bool
) -> None:
    settings = Settings(
        database_url="sqlite:///unused.db",
        smtp_url=SecretStr(smtp_url),
        base_url=base_url,
        mail_from="d@example.org",
    )
    if allowed:
        transport_for(settings).close()
    else:
        with pytest.raises(ConfigError, match="must carry https links"):
            transport_for(settings)
