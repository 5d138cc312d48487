"""The web front in a real browser: Debian's Chromium, headless, driven by Playwright, against the app
served by uvicorn on loopback, with its mail going to a real SMTP server on loopback."""

from __future__ import annotations

import email
import email.policy
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from digest.deliver.sender import Sender
from digest.mail.transports import transport_for
from digest.store.engine import Database
from digest.store.models import Feedback, Subscriber
from digest.web import Web, create_app
from tests.support.smtp import ScriptedServer
from tests.support.store import add_subscriber, ingest_fixture, outbox, send
from tests.support.store import context as digest_context
from tests.support.web import free_base_url, running

CHROMIUM = Path("/usr/bin/chromium")
LIBRARY = Path(__file__).resolve().parents[1] / "data" / "library"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REQUIRED = os.environ.get("DIGEST_TEST_REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed: apt-get install chromium"
        pytest.fail(message) if REQUIRED else pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def site(mail_settings, sessions, sink: ScriptedServer) -> Iterator[tuple[str, object]]:
    """The app under uvicorn on a free port; yields its address and settings."""
    port, base_url = free_base_url()
    settings = mail_settings.model_copy(
        update={"base_url": base_url, "smtp_url": SecretStr(f"smtp://127.0.0.1:{sink.port}")}
    )
    with running(create_app(Web(digest_context(settings, sessions))), port):
        yield base_url, settings


def mail_to(sink: ScriptedServer, address: str, count: int = 1) -> list[email.message.EmailMessage]:
    """The messages the SMTP server got for ``address``, once there are ``count``."""
    deadline = time.monotonic() + 30
    while True:
        messages = [
            email.message_from_bytes(content, policy=email.policy.default)
            for content, (recipient, _) in zip(sink.contents, sink.received, strict=True)
            if recipient == address
        ]
        if len(messages) >= count:
            return messages
        assert time.monotonic() < deadline, f"no mail for {address}"
        time.sleep(0.05)


def titles(page) -> list[str]:
    """The paper titles of the page's preview, once the page that holds it has loaded."""
    page.locator("#preview h2").wait_for()
    return page.locator("#preview .papers .title").all_inner_texts()


def test_sign_up_confirm_change_interests_and_unsubscribe_in_a_browser(browser, site, sink, sessions) -> None:
    base, settings = site
    ingest_fixture(sessions, seen=datetime.now(UTC) - timedelta(hours=2))
    context = browser.new_context(timezone_id="Europe/Paris")
    page = context.new_page()
    page.goto(base + "/")
    assert page.locator("#timezone").input_value() == "Europe/Paris"  # from the browser, by script
    page.fill("#email", "lin@example.org")
    page.fill("#interests", '"language model"')
    page.select_option("#send_hour", "0")
    page.set_input_files("#library", str(LIBRARY / "zotero.bib"))
    page.click("text=Preview today's digest")
    before = titles(page)
    assert before and "language model" in page.locator("#preview h2").inner_text()
    note = "Starting from 2 of the 3 papers you like; one is not stored here, so left out."
    assert note in page.locator("#preview").inner_text()
    assert page.locator("#papers").input_value().split() == ["2407.21705", "2407.21783", "2499.00001"]
    page.click("button[value=subscribe]")
    assert page.locator("h1").inner_text() == "Check your inbox"

    [confirmation] = mail_to(sink, "lin@example.org")
    link = re.search(r"http://\S+/confirm/\S+", confirmation.get_body(("plain",)).get_content()).group(0)
    page.goto(link)
    page.click("text=Confirm my subscription")
    assert "You are subscribed" in page.locator(".notice").inner_text()
    assert page.locator("ul.rated li").count() == 2  # the file's two stored papers, liked

    page.fill("#interests", "diffusion video")
    page.click("text=Preview today's digest")
    after = titles(page)
    assert after and after != before and "diffusion video" in page.locator("#preview h2").inner_text()
    page.click("text=Save")
    assert page.locator(".notice").inner_text() == "Saved."
    with sessions() as session:
        lin = session.scalar(select(Subscriber).where(Subscriber.email == "lin@example.org"))
        assert (lin.status, lin.interests, lin.timezone) == ("active", "diffusion video", "Europe/Paris")

    with transport_for(settings) as transport:
        assert Sender(settings, Database(sessions.kw["bind"]), transport).run().sent == 1
    [_, digest] = mail_to(sink, "lin@example.org", 2)
    target = re.search(r"<(http://[^>]+)>", digest["List-Unsubscribe"]).group(1)
    one_click = httpx.post(
        target,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert one_click.status_code == 200
    with transport_for(settings) as transport:
        later = Sender(settings, Database(sessions.kw["bind"]), transport).run(
            datetime.now(UTC) + timedelta(days=1)
        )
    assert later.sent == 0 and len(mail_to(sink, "lin@example.org")) == 2
    context.close()


def test_more_like_this_clicked_in_a_mail_from_the_outbox_takes_one_press_and_link_scanners_record_nothing(
    browser, mail_settings, sessions, tmp_path
) -> None:
    now = datetime.now(UTC)
    port, base = free_base_url()
    settings = mail_settings.model_copy(update={"base_url": base})
    ingest_fixture(sessions, seen=now - timedelta(hours=2))
    add_subscriber(sessions, "ada@example.org", send_hour=0, created_at=now - timedelta(days=2))
    assert send(settings, sessions, now).sent == 1
    [mail] = outbox(settings)
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    found = re.findall(r'href="([^"]+)"', html) + re.findall(r"\S+://\S+", text) + [mail["List-Unsubscribe"]]
    ours = {unescape(link).strip("<>") for link in found if base in link}
    assert any("/feedback/" in link for link in ours) and any("/unsubscribe/" in link for link in ours)
    with running(create_app(Web(digest_context(settings, sessions))), port):
        with httpx.Client(follow_redirects=True, timeout=30) as scanner:  # a mail filter's link check
            assert {scanner.get(link).status_code for link in ours} == {200}
        assert feedback_of(sessions) == [] and status_of(sessions, "ada@example.org") == "active"

        opened = tmp_path / "digest.html"
        opened.write_text(html, encoding="utf-8")
        page = browser.new_page()
        page.goto(opened.as_uri())
        first = page.get_by_role("link", name="More like this").first
        paper = parse_qs(urlsplit(first.get_attribute("href")).query)["paper"][0]
        first.click()
        page.get_by_role("button", name="More like this").click()
        assert page.locator("h1").inner_text() == "Noted: more like this"
        page.close()
    assert feedback_of(sessions) == [(paper, 1, "mail")]
    assert status_of(sessions, "ada@example.org") == "active"


def feedback_of(sessions) -> list[tuple[str, int, str]]:
    with sessions() as session:
        return [
            tuple(row) for row in session.execute(select(Feedback.paper_id, Feedback.value, Feedback.origin))
        ]


def status_of(sessions, address: str) -> str:
    with sessions() as session:
        return session.scalar(select(Subscriber.status).where(Subscriber.email == address))


def test_the_pages_fit_a_phone_screen(browser, site, tmp_path) -> None:
    base, _settings = site
    context = browser.new_context(
        viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True
    )
    page = context.new_page()
    page.goto(base + "/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    box = page.locator("button[value=subscribe]").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375 and box["height"] >= 40  # a thumb can press it
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    page.fill("#interests", '"language model"')
    page.click("button[value=preview]")
    page.locator("#preview h2").wait_for()
    shown = page.locator("#preview h2").bounding_box()  # the preview comes into view, not below the fold
    assert 0 <= shown["y"] and shown["y"] + shown["height"] <= 812
    context.close()
