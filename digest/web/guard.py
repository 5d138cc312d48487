"""What keeps the web front safe: CSRF tokens, rate limits, security headers, request size. No I/O
beyond the request.

CSRF is a double submit: a random value in a SameSite=Strict, HttpOnly cookie, repeated in a hidden
field of every form; a POST whose field does not match the cookie, or whose Origin is another site,
is refused. The RFC 8058 one-click unsubscribe is the one POST without it (its token is the secret).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from urllib.parse import urlsplit

from limits import RateLimitItemPerHour
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 64 * 1024
MAX_LIBRARY_BYTES = 2_000_000  # a library file the sign-up form may carry, besides its fields


def body_limit(path: str, content_type: str) -> int:
    """The largest POST body taken at ``path``: the sign-up form, sent as multipart, may carry a
    library file."""
    if path == "/" and content_type.lower().startswith("multipart/form-data"):
        return MAX_BODY + MAX_LIBRARY_BYTES
    return MAX_BODY


FIELD = "csrf"
TOKEN_CHARS = 43  # secrets.token_urlsafe(32)

PAGE_CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# A digest shown in the browser is the mail itself: inline styles, remote images, no scripts, no forms.
DIGEST_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


def security_headers(headers: MutableHeaders, https: bool) -> None:
    """Add the headers every response carries, leaving any a route set itself."""
    headers.setdefault("Content-Security-Policy", PAGE_CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # Links carry tokens: never pass them to another site. (With no-referrer, browsers would send
    # "Origin: null" on our own forms, which the CSRF check refuses.)
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Cache-Control", "no-store")
    if https:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")


class SecurityHeaders:
    """ASGI middleware that puts the security headers on every response that passes it, whoever
    made it: a route, an error handler, or a refusal before any route ran (411, 413)."""

    def __init__(self, app: ASGIApp, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                security_headers(MutableHeaders(scope=message), self.https)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Csrf:
    """Issues and checks the double-submit token."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.https = parts.scheme == "https"
        self.origin = f"{parts.scheme}://{parts.netloc}"
        # A __Host- cookie cannot be set by a sibling subdomain; browsers allow the prefix on https only.
        self.cookie = "__Host-digest_csrf" if self.https else "digest_csrf"

    def token(self, request: Request) -> str:
        """The request's token: the cookie's, or a new one (set on the response by ``issue``)."""
        current = request.cookies.get(self.cookie, "")
        if len(current) == TOKEN_CHARS and current.replace("-", "").replace("_", "").isalnum():
            return current
        if not getattr(request.state, "csrf", None):
            request.state.csrf = secrets.token_urlsafe(32)
        return request.state.csrf

    def issue(self, request: Request, response: Response) -> None:
        """Set the cookie if ``token`` made a new one for this request."""
        fresh = getattr(request.state, "csrf", None)
        if fresh:
            response.set_cookie(
                self.cookie, fresh, httponly=True, samesite="strict", secure=self.https, path="/"
            )

    def valid(self, request: Request, submitted: str | None) -> bool:
        """True when the form's token matches the cookie and the request comes from this site."""
        origin = request.headers.get("origin")
        if origin is not None and origin not in (self.origin, _own_origin(request)):
            return False
        cookie = request.cookies.get(self.cookie)
        return bool(cookie and submitted) and hmac.compare_digest(cookie, str(submitted))


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


class RateLimits:
    """Per-client budgets, in memory (each web process counts its own): sign-ups and previews per
    hour. The per-address limit on mails lives in the database (accounts.mails_in_last_day)."""

    def __init__(self, signups_per_hour: int, previews_per_hour: int) -> None:
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.items = {
            "signup": RateLimitItemPerHour(signups_per_hour),
            "preview": RateLimitItemPerHour(previews_per_hour),
        }

    def allow(self, what: str, client: str) -> bool:
        """Count one ``what`` (signup, preview) by ``client``; False once over the budget."""
        return self.limiter.hit(self.items[what], what, client)


def client_of(request: Request) -> str:
    """Who a rate limit counts: the client's address (behind a trusted proxy, uvicorn has put
    X-Forwarded-For here); for IPv6 its /64, which one household or server usually holds whole."""
    host = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
