"""The subscriber's pages: sign up (with a preview), confirm, preferences, past digests, unsubscribe.

Pages work without scripts. Every form carries the CSRF token; the one-click unsubscribe POST of
RFC 8058 needs none. A sign-up answers the same whether the address is known or not, and its mail
goes out after the response, so neither the page nor its timing tells who subscribed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import available_timezones

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi import Path as FastPath
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest import accounts, compose, composer, mailer, metrics
from digest.accounts import Notice, TokenError
from digest.errors import UsageError
from digest.models import Delivery, Subscriber
from digest.subscribers import Preferences, normalise_email
from digest.web.guard import DIGEST_CSP, client_of

log = logging.getLogger(__name__)
router = APIRouter()
PAST_DIGESTS = 30
MAX_ID = 2**31 - 1  # an INTEGER key on PostgreSQL
STATUS_TEXT = {
    "active": "subscribed",
    "paused": "paused: nothing is sent until you resume",
    "pending": "waiting for you to confirm the address",
    "unsubscribed": "unsubscribed: save below to subscribe again",
    "bounced": "suspended: mail to this address kept bouncing; save below to try again",
}


class PreferencesForm(BaseModel):
    """What the preference fields post. Values are checked by subscribers.Preferences."""

    interests: str = Field("", max_length=4000)
    timezone: str = Field("UTC", max_length=64)
    send_hour: str = Field("7", max_length=2)
    frequency: str = Field("daily", max_length=10)
    weekly_day: str = Field("", max_length=9)
    max_papers: str = Field("10", max_length=3)
    trending_section: str = Field("", max_length=3)
    action: str = Field("save", max_length=10)
    csrf: str = Field("", max_length=64)

    def wish(self, email: str, status: str = "pending") -> Preferences:
        """The preferences asked for, unchecked (for showing the form again)."""
        return Preferences(
            email=email,
            status=status,
            interests=self.interests,
            timezone=self.timezone,
            send_hour=_number(self.send_hour, 7),
            frequency=self.frequency,
            weekly_day=self.weekly_day if self.frequency == "weekly" else "",
            max_papers=_number(self.max_papers, 10),
            trending_section=bool(self.trending_section),
        )


def _number(text: str, default: int) -> int | str:
    """A form's number as an int; anything else as given, for the check to refuse by name."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else (text or default)


class SignUpForm(PreferencesForm):
    email: str = Field("", max_length=320)
    website: str = Field("", max_length=200)  # the honeypot: people never see it, bots fill it in
    action: str = Field("subscribe", max_length=10)


@dataclass(frozen=True)
class WebPreview:
    """Today's digest as a page shows it: ``items`` matched the interests; ``trending`` is the
    "trending today" part (or everything, for empty interests)."""

    subject: str
    items: tuple[compose.Item, ...]
    trending: tuple[compose.Item, ...]


@lru_cache(maxsize=1)
def zones() -> list[str]:
    return sorted(zone for zone in available_timezones() if "/" in zone or zone == "UTC")


def page(request: Request, name: str, code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``templates/web/name`` with the site's name, zones and this request's CSRF token."""
    web = request.app.state.web
    context = {"site_name": web.settings.mail_from_name, "zones": zones(), **context}
    if "csrf" in context:
        context["csrf"] = web.csrf.token(request)
    response = HTMLResponse(web.templates.get_template(f"web/{name}").render(context), status_code=code)
    web.csrf.issue(request, response)
    return response


def message(
    request: Request, status: int, heading: str, text: str, link: str = "", link_text: str = ""
) -> HTMLResponse:
    return page(request, "message.html", status, heading=heading, text=text, link=link, link_text=link_text)


def refused(request: Request, exc: TokenError) -> HTMLResponse:
    """The page for a link that does not work (every route's TokenError ends here)."""
    return message(request, 404, "This link does not work", str(exc), "/", "Sign up again")


def forbidden(request: Request) -> HTMLResponse:
    return message(
        request,
        403,
        "Please try again",
        "This form had expired or came from another site. Reload the page and send it again.",
    )


TOO_MANY = "Too many sign-ups or previews came from your network in the last hour. Please try again later."


def now_of(request: Request) -> datetime:
    return request.app.state.web.clock()


# -- sign up ---------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """The sign-up form."""
    return page(
        request, "index.html", wish=Preferences(email=""), email="", error=None, preview=None, csrf=True
    )


@router.post("/", response_class=HTMLResponse)
def sign_up(request: Request, form: Annotated[SignUpForm, Form()], background: BackgroundTasks) -> Response:
    """Preview (action=preview) or sign up: a confirmation mail to a new address, a manage mail to a
    known one, the same answer to both."""
    web = request.app.state.web
    if not web.csrf.valid(request, form.csrf):
        return forbidden(request)
    shown = form.wish(form.email)
    again = {"wish": shown, "email": form.email, "csrf": True}
    client = client_of(request)
    try:
        if form.action == "preview":
            wish = replace(shown, email="preview@example.org").validated()
        else:
            wish = replace(shown, email=normalise_email(form.email)).validated()
            mailer.checked_address(wish.email)
    except mailer.MessageError:
        error = "Please use an address whose part before the @ has only ASCII letters, digits and . _ + -."
        return page(request, "index.html", 400, error=error, preview=None, **again)
    except UsageError as exc:
        return page(request, "index.html", 400, error=str(exc), preview=None, **again)
    if not web.limits.allow("preview" if form.action == "preview" else "signup", client):
        return page(request, "index.html", 429, error=TOO_MANY, preview=None, **again)
    if form.action == "preview":
        with web.sessions() as session:
            preview = _preview(web, session, wish, now_of(request))
        return page(request, "index.html", error=None, preview=preview, **again)
    if not form.website:
        with web.sessions() as session:
            notice = accounts.sign_up(session, wish, now_of(request), web.settings)
        if notice is not None:
            background.add_task(send_notice, web, notice)
    return RedirectResponse("/sent", status_code=303)


@router.get("/sent", response_class=HTMLResponse)
def sent(request: Request) -> HTMLResponse:
    """After a sign-up, whatever it was."""
    return message(
        request,
        200,
        "Check your inbox",
        "We have sent a link to the address you gave. Follow it to confirm; it works for "
        f"{request.app.state.web.settings.confirm_hours:g} hours. Nothing came? Look in the spam folder, "
        "or sign up again in a few minutes.",
    )


def send_notice(web: Any, notice: Notice) -> None:
    """Mail a confirm or manage link (run after the response). A failure is logged: the reader can
    sign up again."""
    settings = web.settings
    path = "confirm" if notice.kind == "confirm" else "preferences"
    rendered = web.notices.render(
        notice.kind, f"{settings.base_url}/{path}/{notice.token}", settings.confirm_hours
    )
    now = datetime.now(UTC)
    message_id = mailer.new_message_id(settings.mail_domain, f"{notice.kind}.{now:%Y%m%d}")
    try:
        data = mailer.build_message(
            web.sender,
            mailer.Envelope(notice.email, message_id, now, None),
            rendered.subject,
            rendered.text,
            rendered.html,
        )
        to = mailer.checked_address(notice.email)
        outgoing = mailer.Outgoing(0, settings.mail_from, to, message_id, data)
        with mailer.transport_for(settings) as transport:
            outcome = transport.deliver_one(outgoing)
    except Exception:
        log.exception("cannot send the %s mail to %s", notice.kind, notice.email)
        metrics.mail(notice.kind, False)
        return
    metrics.mail(notice.kind, outcome.ok)
    if not outcome.ok:
        log.warning("the %s mail to %s was not sent: %s", notice.kind, notice.email, outcome.error)


def _preview(web: Any, session: Session, wish: Preferences, now: datetime) -> WebPreview:
    """Today's digest for ``wish``, as a page shows it. Reads only."""
    subscriber = Subscriber(email=wish.email, status="active", created_at=now, updated_at=now, min_score=0.0)
    for name in accounts.CHOSEN:
        setattr(subscriber, name, getattr(wish, name))
    result = composer.preview(web.settings, session, subscriber, now=now, composer=web.composer(session))
    digest = result.digest
    if not digest.has_interests:
        return WebPreview(result.subject, (), digest.items or digest.trending)
    return WebPreview(result.subject, digest.items, digest.trending)


# -- confirm ---------------------------------------------------------------------------------------


@router.get("/confirm/{token}", response_class=HTMLResponse)
def confirm_page(request: Request, token: str) -> HTMLResponse:
    """A button to confirm; a GET changes nothing (mail scanners follow links)."""
    web = request.app.state.web
    with web.sessions() as session:
        accounts.check_confirm(session, token, now_of(request), web.settings)
    return page(request, "confirm.html", csrf=True)


@router.post("/confirm/{token}", response_class=HTMLResponse)
def confirm(request: Request, token: str, csrf: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Confirm: the subscription starts, and the reader lands on their preferences."""
    web = request.app.state.web
    if not web.csrf.valid(request, csrf):
        return forbidden(request)
    with web.sessions() as session:
        _subscriber, manage = accounts.confirm(session, token, now_of(request), web.settings)
    return RedirectResponse(f"/preferences/{manage}?welcome=1", status_code=303)


# -- preferences -----------------------------------------------------------------------------------


@router.get("/preferences/{token}", response_class=HTMLResponse)
def preferences_page(request: Request, token: str, welcome: str = "", saved: str = "") -> HTMLResponse:
    """The subscriber's preferences and past digests."""
    web = request.app.state.web
    with web.sessions() as session:
        _row, subscriber = accounts.manage(session, token, now_of(request), web.settings)
        notice = "Saved." if saved else None
        if welcome and subscriber.status == "active":
            notice = "You are subscribed. Welcome!"
        return _preferences(request, session, token, subscriber, accounts.wish_of(subscriber), notice=notice)


@router.post("/preferences/{token}", response_class=HTMLResponse)
def save_preferences(
    request: Request,
    token: str,
    form: Annotated[PreferencesForm, Form()],
    paused: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    """Preview (action=preview) or save the preferences, pausing or resuming."""
    web = request.app.state.web
    if not web.csrf.valid(request, form.csrf):
        return forbidden(request)
    now = now_of(request)
    with web.sessions() as session:
        _row, subscriber = accounts.manage(session, token, now, web.settings)
        shown = form.wish(subscriber.email, subscriber.status)
        try:
            wish = shown.validated()
        except UsageError as exc:
            return _preferences(request, session, token, subscriber, shown, error=str(exc), status=400)
        if form.action == "preview":
            if not web.limits.allow("preview", client_of(request)):
                return _preferences(request, session, token, subscriber, shown, error=TOO_MANY, status=429)
            return _preferences(
                request, session, token, subscriber, shown, preview=_preview(web, session, wish, now)
            )
        accounts.update_preferences(session, subscriber, wish, bool(paused), now)
    return RedirectResponse(f"/preferences/{token}?saved=1", status_code=303)


def _preferences(
    request: Request,
    session: Session,
    token: str,
    subscriber: Subscriber,
    wish: Preferences,
    *,
    notice: str | None = None,
    error: str | None = None,
    preview: WebPreview | None = None,
    status: int = 200,
) -> HTMLResponse:
    past = session.scalars(
        select(Delivery)
        .where(Delivery.subscriber_id == subscriber.id, Delivery.status == "sent")
        .order_by(Delivery.digest_date.desc())
        .limit(PAST_DIGESTS)
    ).all()
    return page(
        request,
        "preferences.html",
        status,
        token=token,
        email=subscriber.email,
        status=subscriber.status,
        status_text=STATUS_TEXT.get(subscriber.status, subscriber.status),
        wish=wish,
        past=past,
        notice=notice,
        error=error,
        preview=preview,
        csrf=True,
    )


@router.get("/preferences/{token}/digests/{delivery_id}", response_class=HTMLResponse)
def past_digest(
    request: Request, token: str, delivery_id: Annotated[int, FastPath(ge=1, le=MAX_ID)]
) -> HTMLResponse:
    """One of the subscriber's sent digests, as it was mailed."""
    web = request.app.state.web
    with web.sessions() as session:
        _row, subscriber = accounts.manage(session, token, now_of(request), web.settings)
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.subscriber_id != subscriber.id or delivery.status != "sent":
            return message(
                request,
                404,
                "No such digest",
                "This digest is not among yours.",
                f"/preferences/{token}",
                "Back",
            )
        return _digest(web, session, delivery, subscriber, token)


@router.get("/d/{token}", response_class=HTMLResponse)
def view_in_browser(request: Request, token: str) -> Response:
    """The digest a mail's link was made for."""
    web = request.app.state.web
    with web.sessions() as session:
        row, subscriber = accounts.manage(session, token, now_of(request), web.settings)
        delivery = session.get(Delivery, row.delivery_id) if row.delivery_id is not None else None
        if delivery is None:
            return RedirectResponse(f"/preferences/{token}", status_code=303)
        return _digest(web, session, delivery, subscriber, token)


def _digest(
    web: Any, session: Session, delivery: Delivery, subscriber: Subscriber, token: str
) -> HTMLResponse:
    job = composer.Job(subscriber, delivery.digest_date, None, delivery.id)
    composed = web.composer(session).recompose(job, delivery.papers)
    rendered = web.renderer.render(composer.digest_of(composed, web.settings, token))
    return HTMLResponse(rendered.html, headers={"Content-Security-Policy": DIGEST_CSP})


# -- unsubscribe -----------------------------------------------------------------------------------


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    """A button to unsubscribe; a GET changes nothing."""
    web = request.app.state.web
    with web.sessions() as session:
        _row, subscriber = accounts.manage(session, token, now_of(request), web.settings)
        if subscriber.status == "unsubscribed":
            return _unsubscribed(request, token)
        return page(request, "unsubscribe.html", email=subscriber.email, token=token, csrf=True)


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe(
    request: Request,
    token: str,
    one_click: Annotated[str, Form(alias="List-Unsubscribe", max_length=20)] = "",
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Unsubscribe: from the page's button (CSRF-checked), or by a mail client's RFC 8058 one-click
    POST (body ``List-Unsubscribe=One-Click``, no cookie)."""
    web = request.app.state.web
    clicked = one_click == "One-Click"
    if not clicked and not web.csrf.valid(request, csrf):
        return forbidden(request)
    with web.sessions() as session:
        _row, subscriber = accounts.manage(session, token, now_of(request), web.settings)
        accounts.unsubscribe(session, subscriber, now_of(request))
    if clicked:
        return PlainTextResponse("Unsubscribed.")
    return _unsubscribed(request, token)


def _unsubscribed(request: Request, token: str) -> HTMLResponse:
    return message(
        request,
        200,
        "You are unsubscribed",
        "No more digests will come to this address.",
        f"/preferences/{token}",
        "Changed your mind? Subscribe again",
    )
