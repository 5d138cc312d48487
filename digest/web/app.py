"""The FastAPI app: pages, health and readiness, metrics, static files, and the guards around them."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException

from digest import __version__, db, mailer, metrics, queries, scoring
from digest.accounts import TokenError
from digest.composer import Composer
from digest.config import Settings
from digest.errors import SchemaOutOfDate
from digest.render import NoticeRenderer, Renderer, environment
from digest.resources import resource_dir
from digest.web import pages
from digest.web.guard import MAX_BODY, Csrf, RateLimits, security_headers

log = logging.getLogger(__name__)
CORPUS_SECONDS = 600.0


class Service(Protocol):
    """What the app starts and stops with it (the scheduler), and asks whether it runs."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def running(self) -> bool: ...


@dataclass
class Web:
    """What the routes share; built once per app."""

    settings: Settings
    sessions: sessionmaker[Session]
    service: Service | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        self.templates: Environment = environment(FileSystemLoader(str(resource_dir("templates"))))
        self.renderer = Renderer(self.settings.mail_from_name)
        self.notices = NoticeRenderer(self.settings.mail_from_name)
        self.sender = mailer.sender_for(self.settings)
        self.csrf = Csrf(self.settings.base_url)
        self.limits = RateLimits(self.settings.signup_per_client, self.settings.preview_per_client)
        self._corpus: tuple[float, scoring.Corpus] | None = None

    def composer(self, session: Session) -> Composer:
        """A composer for one request, sharing a word-frequency corpus of every stored paper that is
        read again at most every CORPUS_SECONDS (reading it is the costly part of a preview)."""
        now = time.monotonic()
        if self._corpus is None or now - self._corpus[0] > CORPUS_SECONDS:
            self._corpus = (now, scoring.corpus_from(queries.paper_texts(session)))
        return Composer(self.settings, session, self._corpus[1])


def create_app(web: Web) -> FastAPI:
    """The app; it starts ``web.service`` (if any) on start-up and stops it on shutdown."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if web.service is not None:
            web.service.start()
        try:
            yield
        finally:
            if web.service is not None:
                web.service.stop()

    app = FastAPI(title="digest", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.web = web
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=resource_dir("templates") / "web" / "static"), name="static")

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Any]) -> Response:
        if request.method == "POST":
            length = request.headers.get("content-length")
            if length is None or not length.isdigit():
                return PlainTextResponse("Send a Content-Length.", status_code=411)
            if int(length) > MAX_BODY:
                return PlainTextResponse("The form is too large.", status_code=413)
        response = await call_next(request)
        security_headers(response, web.csrf.https)
        return response

    @app.exception_handler(TokenError)
    async def token_error(request: Request, exc: TokenError) -> Response:
        return pages.refused(request, exc)

    @app.exception_handler(RequestValidationError)
    async def form_error(request: Request, _exc: RequestValidationError) -> Response:
        return pages.message(
            request,
            422,
            "Something in the form was too long or missing",
            "Go back, shorten what you wrote (interests at most 4,000 characters, an address at most 320) "
            "and send it again.",
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return pages.message(
                request, 404, "Not found", "There is no page here.", "/", "Go to the start page"
            )
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=exc.headers)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "Not ready; the body says why."}})
    def readyz() -> JSONResponse:
        """Ready: the database answers with the current schema, and the scheduler (if this process
        runs one) is running."""
        checks: dict[str, str] = {}
        try:
            db.require_current_schema(web.sessions.kw["bind"])
            checks["database"] = "ok"
        except SchemaOutOfDate:
            checks["database"] = "schema out of date: run `digest db upgrade`"
        except Exception:
            log.warning("readiness: the database is not usable", exc_info=True)
            checks["database"] = "unreachable (the service's log says why)"
        if web.service is not None:
            checks["scheduler"] = "ok" if web.service.running() else "not running"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", **checks}, status_code=200 if ready else 503
        )

    if web.settings.metrics_enabled:

        @app.get("/metrics", response_class=PlainTextResponse)
        def metrics_page() -> Response:
            """Prometheus metrics."""
            return Response(metrics.exposition(web.sessions), media_type="text/plain; version=0.0.4")

    return app
