"""The FastAPI app: pages, health and readiness, metrics, static files, and the guards around them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment
from starlette.exceptions import HTTPException

from digest import __version__, metrics
from digest.config import Settings
from digest.usecases import maintenance, sources
from digest.usecases.context import Context
from digest.usecases.faults import database_fault
from digest.usecases.notices import NoticeQueue
from digest.usecases.pages import page_templates, static_dir
from digest.usecases.subscribers import TokenError
from digest.web import pages
from digest.web.guard import MAX_BODY, Csrf, RateLimits, SecurityHeaders, body_limit, security_headers

log = logging.getLogger(__name__)
EXPLAINED = ("late", "stale")  # source states /readyz explains (their reasons hold no error text)


def _said(row: dict[str, Any]) -> str:
    """A source's state as /readyz gives it; a failing one's error stays in the log."""
    return f"{row['state']}: {row['state_why']}" if row["state"] in EXPLAINED else row["state"]


class Service(Protocol):
    """What the app starts and stops with it (the scheduler), and asks whether it runs."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def running(self) -> bool: ...


@dataclass
class Web:
    """What the routes share; built once per app. The context's clock is the pages' "now"."""

    context: Context
    service: Service | None = None

    def __post_init__(self) -> None:
        self.notices = NoticeQueue(self.context)
        self.templates: Environment = page_templates()
        self.csrf = Csrf(self.settings.base_url)
        self.limits = RateLimits(self.settings.signup_per_client, self.settings.preview_per_client)

    @property
    def settings(self) -> Settings:
        return self.context.settings

    def now(self) -> datetime:
        return self.context.now()


def create_app(web: Web) -> FastAPI:
    """The app; it starts the notice sender and ``web.service`` (if any) on start-up and stops them
    on shutdown."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        web.notices.start()
        try:
            if web.service is not None:
                web.service.start()
            try:
                yield
            finally:
                if web.service is not None:
                    web.service.stop()
        finally:
            web.notices.stop()

    app = FastAPI(title="digest", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.web = web
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Any]) -> Response:
        if request.method == "POST":
            length = request.headers.get("content-length")
            if length is None or not length.isdigit():
                return PlainTextResponse("Send a Content-Length.", status_code=411)
            limit = body_limit(request.url.path, request.headers.get("content-type", ""))
            if int(length) > limit:
                hint = (
                    " A library file may be at most 2 MB: export only the papers that matter most, or "
                    "paste their arXiv ids."
                    if limit > MAX_BODY
                    else ""
                )
                return PlainTextResponse("The form is too large." + hint, status_code=413)
        try:
            return await call_next(request)
        except Exception as exc:
            fault = database_fault(exc, web.settings)
            if fault is None:
                raise
            log.error("a page could not be served: %s", fault)  # not its path: paths carry tokens
            return pages.unavailable(request)

    app.add_middleware(SecurityHeaders, https=web.csrf.https)  # outside the one above: on its refusals too

    @app.exception_handler(TokenError)
    async def token_error(request: Request, exc: TokenError) -> Response:
        return pages.refused(request, exc)

    @app.exception_handler(RequestValidationError)
    async def form_error(request: Request, _exc: RequestValidationError) -> Response:
        return pages.message(
            request,
            422,
            "Something in the form was too long or missing",
            "Go back, shorten what you wrote (interests at most 4,000 characters, an address at most "
            "320, papers you like at most 20,000) and send it again.",
        )

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, _exc: Exception) -> Response:
        # Made outside every middleware (by Starlette's ServerErrorMiddleware), so the headers go on here.
        response = PlainTextResponse("Something went wrong on our side; try again later.", status_code=500)
        security_headers(response.headers, web.csrf.https)
        return response

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return pages.message(
                request, 404, "Not found", "There is no page here.", "/", "Go to the start page"
            )
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=exc.headers)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        """The icon, for clients that ask for it here rather than where the pages say."""
        return RedirectResponse("/static/favicon.svg", status_code=301)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "Not ready; the body says why."}})
    def readyz() -> JSONResponse:
        """Ready: the database answers with the current schema, and the scheduler (if this process
        runs one) is running."""
        checks = {"database": maintenance.readiness(web.context)}
        if web.service is not None:
            checks["scheduler"] = "ok" if web.service.running() else "not running"
        ready = all(value == "ok" for value in checks.values())
        body: dict[str, Any] = {"status": "ok" if ready else "unavailable", **checks}
        if checks["database"] == "ok":  # a late source is news, not unreadiness: the mail goes out
            try:
                found = sources.list_sources(web.context)
            except Exception:
                log.warning("readiness: cannot read the sources' states", exc_info=True)
            else:
                body["sources"] = {row["name"]: _said(row) for row in found if row["enabled"]}
        return JSONResponse(body, status_code=200 if ready else 503)

    if web.settings.metrics_enabled:

        @app.get("/metrics", response_class=PlainTextResponse)
        def metrics_page() -> Response:
            """Prometheus metrics."""

            def states() -> tuple[list[dict[str, Any]], datetime]:
                now = web.context.now()
                return [row for row in sources.list_sources(web.context, now) if row["enabled"]], now

            return Response(
                metrics.exposition(lambda: maintenance.backlog(web.context), states),
                media_type="text/plain; version=0.0.4",
            )

    return app
