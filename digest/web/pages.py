"""The subscriber's pages: sign up (with a preview), confirm, preferences, past digests, feedback on
a paper, unsubscribe.

Pages work without scripts. Every form carries the CSRF token; the one-click unsubscribe POST of
RFC 8058 needs none. A sign-up answers the same whether the address is known or not, and its mail
is queued for the background sender (digest.usecases.notices), so neither the page nor its timing
tells who subscribed, and a slow mail server slows no page.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import available_timezones

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi import Path as FastPath
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from digest.errors import MessageError, UsageError
from digest.usecases import digests, feedback, library, subscribers
from digest.usecases.context import Context
from digest.usecases.digests import WebPreview
from digest.usecases.feedback import FeedbackOrigin, Verdict
from digest.usecases.preferences import Preferences, normalise_email
from digest.usecases.subscribers import Account, TokenError
from digest.web.guard import DIGEST_CSP, MAX_LIBRARY_BYTES, client_of

router = APIRouter()
MAX_ID = 2**31 - 1  # an INTEGER key on PostgreSQL
MAX_PAPER_ID = 300  # longer than any paper id we make (an arXiv id, a feed's id or URL)
SHOWN_RATED = 200  # the newest ratings the preferences page lists, each with its undo button
STATUS_TEXT = {
    "active": "subscribed",
    "paused": "paused: nothing is sent until you resume",
    "pending": "waiting for you to confirm the address",
    "unsubscribed": "unsubscribed: save below to subscribe again",
    "bounced": "suspended: mail to this address kept bouncing; save below to try again",
}


class PreferencesForm(BaseModel):
    """What the preference fields post. Values are checked by Preferences.validated."""

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
    # arXiv ids or links the reader likes, one a line (the page allows 20,000 characters; a browser
    # sends each line break as two)
    papers: str = Field("", max_length=40_000)
    website: str = Field("", max_length=200)  # the honeypot: people never see it, bots fill it in
    action: str = Field("subscribe", max_length=10)


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


def unavailable(request: Request) -> HTMLResponse:
    """The page for a database that failed (locked, gone): nothing the reader did."""
    return message(
        request,
        503,
        "Back in a moment",
        "The service cannot reach its records just now, so what you sent was not stored. Please "
        "try again in a few minutes.",
    )


TOO_MANY = "Too many sign-ups or previews came from your network in the last hour. Please try again later."


def now_of(request: Request) -> datetime:
    return request.app.state.web.now()


# -- sign up ---------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """The sign-up form."""
    return page(
        request,
        "index.html",
        wish=Preferences(email=""),
        email="",
        papers="",
        error=None,
        preview=None,
        csrf=True,
    )


@router.post("/", response_class=HTMLResponse)
def sign_up(
    request: Request,
    form: Annotated[SignUpForm, Form()],
    library_file: Annotated[UploadFile | None, File(alias="library")] = None,
) -> Response:
    """Preview (action=preview) or sign up: a confirmation mail to a new address, a manage mail to a
    known one, the same answer to both. Papers the form names (pasted, or in a library file) are
    liked on confirmation."""
    web = request.app.state.web
    if not web.csrf.valid(request, form.csrf):
        return forbidden(request)
    shown = form.wish(form.email)
    again = {"wish": shown, "email": form.email, "papers": form.papers, "csrf": True}
    client = client_of(request)
    try:
        given = library.papers_given(form.papers, _upload(library_file))
    except UsageError as exc:
        return page(request, "index.html", 400, error=str(exc), preview=None, **again)
    if library_file is not None and library_file.filename:
        # The form shows the file's papers as ids from here on, so whatever comes next (an error,
        # a preview, then Subscribe) keeps them: a file input cannot survive a round trip.
        again["papers"] = "\n".join(given.papers)
    try:
        if form.action == "preview":
            wish = replace(shown, email="preview@example.org").validated()
        else:
            wish = replace(shown, email=normalise_email(form.email)).validated()
            subscribers.deliverable(wish.email)
    except MessageError:
        error = "Please use an address whose part before the @ has only ASCII letters, digits and . _ + -."
        return page(request, "index.html", 400, error=error, preview=None, **again)
    except UsageError as exc:
        return page(request, "index.html", 400, error=str(exc), preview=None, **again)
    if not web.limits.allow("preview" if form.action == "preview" else "signup", client):
        return page(request, "index.html", 429, error=TOO_MANY, preview=None, **again)
    liked = given.papers
    if form.action == "preview":
        preview = digests.web_preview(web.context, wish, now_of(request), liked)
        known = len(library.stored_of(web.context, liked))
        note = {"given": len(liked), "known": known, "passed_over": given.passed_over}
        return page(request, "index.html", error=None, preview=preview, **note, **again)
    if not form.website:
        notice = subscribers.sign_up(web.context, wish, now_of(request), liked)
        if notice is not None:
            web.notices.put(notice)
    return RedirectResponse("/sent", status_code=303)


def _upload(upload: UploadFile | None) -> bytes | None:
    """The bytes of an uploaded library file, None when no file was chosen. Raises UsageError for
    one larger than MAX_LIBRARY_BYTES."""
    if upload is None or not upload.filename:
        return None
    content = upload.file.read(MAX_LIBRARY_BYTES + 1)
    if len(content) > MAX_LIBRARY_BYTES:
        raise UsageError(
            f"The file is larger than {MAX_LIBRARY_BYTES // 1_000_000} MB. Export only the papers that "
            "matter most, or paste their arXiv ids."
        )
    return content


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


# -- confirm ---------------------------------------------------------------------------------------


@router.get("/confirm/{token}", response_class=HTMLResponse)
def confirm_page(request: Request, token: str) -> HTMLResponse:
    """A button to confirm; a GET changes nothing (mail scanners follow links)."""
    subscribers.check_confirm(request.app.state.web.context, token, now_of(request))
    return page(request, "confirm.html", csrf=True)


@router.post("/confirm/{token}", response_class=HTMLResponse)
def confirm(request: Request, token: str, csrf: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Confirm: the subscription starts, and the reader lands on their preferences."""
    web = request.app.state.web
    if not web.csrf.valid(request, csrf):
        return forbidden(request)
    manage = subscribers.confirm(web.context, token, now_of(request))
    return RedirectResponse(f"/preferences/{manage}?welcome=1", status_code=303)


# -- preferences -----------------------------------------------------------------------------------


@router.get("/preferences/{token}", response_class=HTMLResponse)
def preferences_page(
    request: Request, token: str, welcome: str = "", saved: str = "", rated: str = ""
) -> HTMLResponse:
    """The subscriber's preferences and past digests."""
    account = subscribers.account(request.app.state.web.context, token, now_of(request))
    notice = "Saved." if saved else "Feedback noted (interests are changed only by Save)." if rated else None
    if welcome and account.status == "active":
        notice = "You are subscribed. Welcome!"
    return _preferences(request, token, account, account.wish, notice=notice)


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
    account = subscribers.account(web.context, token, now)
    shown = form.wish(account.email, account.status)
    try:
        wish = shown.validated()
    except UsageError as exc:
        return _preferences(request, token, account, shown, error=str(exc), status=400)
    if form.action == "preview":
        if not web.limits.allow("preview", client_of(request)):
            return _preferences(request, token, account, shown, error=TOO_MANY, status=429)
        preview = digests.web_preview(web.context, wish, now)
        return _preferences(request, token, account, shown, preview=preview)
    subscribers.save_preferences(web.context, token, wish, bool(paused), now)
    return RedirectResponse(f"/preferences/{token}?saved=1", status_code=303)


def _next_digest(context: Context, account: Account, now: datetime) -> str | None:
    """E.g. "Thursday 3 December at 07:00 (Europe/Paris)", or "due now"; None when none comes."""
    moment = subscribers.next_digest(context, account, now)
    if moment is None:
        return None
    if moment <= now:
        return "due now: it goes out within minutes"
    day = moment.strftime("%A %d %B").replace(" 0", " ")
    return f"{day} at {moment:%H:%M} ({account.wish.timezone})"


def _preferences(
    request: Request,
    token: str,
    account: Account,
    wish: Preferences,
    *,
    notice: str | None = None,
    error: str | None = None,
    preview: WebPreview | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = request.app.state.web.context
    past = subscribers.past_digests(context, account.subscriber_id)
    rated, rated_count = feedback.of_account(context, account.subscriber_id, SHOWN_RATED)
    return page(
        request,
        "preferences.html",
        status,
        token=token,
        email=account.email,
        status=account.status,
        status_text=STATUS_TEXT.get(account.status, account.status),
        next_digest=_next_digest(context, account, now_of(request)),
        wish=wish,
        past=past,
        rated=rated,
        rated_count=rated_count,
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
    html = digests.view_digest(request.app.state.web.context, token, now_of(request), delivery_id)
    if html is None:
        return message(
            request, 404, "No such digest", "This digest is not among yours.", f"/preferences/{token}", "Back"
        )
    return HTMLResponse(html, headers={"Content-Security-Policy": DIGEST_CSP})


@router.get("/d/{token}", response_class=HTMLResponse)
def view_in_browser(request: Request, token: str) -> Response:
    """The digest a mail's link was made for."""
    html = digests.view_digest(request.app.state.web.context, token, now_of(request))
    if html is None:
        return RedirectResponse(f"/preferences/{token}", status_code=303)
    return HTMLResponse(html, headers={"Content-Security-Policy": DIGEST_CSP})


# -- feedback --------------------------------------------------------------------------------------

VERDICTS = {"up": Verdict.UP, "down": Verdict.DOWN, "clear": None}
DONE = {
    "up": ("Noted: more like this", "Your next digests will lift the papers near this one."),
    "down": ("Noted: less like this", "Papers near this one will sink in your next digests."),
    None: ("Taken back", "This paper no longer moves what your digests choose."),
}


@router.get("/feedback/{token}", response_class=HTMLResponse)
def feedback_page(
    request: Request,
    token: str,
    paper: Annotated[str, Query(max_length=MAX_PAPER_ID)] = "",
    verdict: Annotated[str, Query(max_length=5)] = "up",
) -> HTMLResponse:
    """A digest's "more like this" or "less like this" link: one button that records it. A GET
    changes nothing (mail scanners follow links)."""
    web = request.app.state.web
    try:
        shown = feedback.about(web.context, token, paper, now_of(request))
    except UsageError:
        return _no_paper(request, token)
    verdict = "down" if verdict == "down" else "up"
    return page(request, "feedback.html", token=token, paper=shown, verdict=verdict, done=False, csrf=True)


@router.post("/feedback/{token}", response_class=HTMLResponse)
def give_feedback(
    request: Request,
    token: str,
    paper: Annotated[str, Form(max_length=MAX_PAPER_ID)] = "",
    verdict: Annotated[str, Form(max_length=5)] = "",
    origin: Annotated[str, Form(max_length=4)] = "mail",
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Record more or less like this (or take it back: verdict=clear) from the feedback page
    (origin=mail, the default) or the preferences page (origin=web, which it returns to)."""
    web = request.app.state.web
    if not web.csrf.valid(request, csrf):
        return forbidden(request)
    if verdict not in VERDICTS:
        return message(request, 400, "Nothing was recorded", "Choose more like this or less like this.")
    where = FeedbackOrigin.WEB if origin == "web" else FeedbackOrigin.MAIL
    try:
        given = feedback.give_by_link(web.context, token, paper, VERDICTS[verdict], where, now_of(request))
    except UsageError:
        return _no_paper(request, token)
    if where is FeedbackOrigin.WEB:
        return RedirectResponse(f"/preferences/{token}?rated=1#feedback", status_code=303)
    heading, text = DONE[given["feedback"]]
    if given["feedback"] is None and given["seed"]:
        text = (
            "A like: line of your interests names this paper, so it still counts as more like this. "
            "Remove that line on your preferences page to stop."
        )
    return page(
        request,
        "feedback.html",
        token=token,
        paper=given,
        verdict=given["feedback"] or "up",
        done=True,
        heading=heading,
        text=text,
        csrf=True,
    )


def _no_paper(request: Request, token: str) -> HTMLResponse:
    return message(
        request,
        404,
        "This paper is not known here",
        "Nothing was recorded. The link may have been cut short by your mail program: open it again "
        "from the mail, or copy all of it into the browser.",
        f"/preferences/{token}",
        "Open your preferences",
    )


# -- unsubscribe -----------------------------------------------------------------------------------


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    """A button to unsubscribe; a GET changes nothing."""
    account = subscribers.account(request.app.state.web.context, token, now_of(request))
    if account.status == "unsubscribed":
        return _unsubscribed(request, token)
    return page(request, "unsubscribe.html", email=account.email, token=token, csrf=True)


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
    subscribers.unsubscribe(web.context, token, now_of(request))
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
