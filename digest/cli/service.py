"""``digest serve``, ``digest healthcheck`` and ``digest clean-up``: running as a service."""

from __future__ import annotations

import logging
import signal
import socket
from typing import TYPE_CHECKING

import click

from digest.cli.common import App, err, now_of, now_option, out, pass_app, ranking_ready
from digest.errors import ConfigError, DigestError, UsageError

if TYPE_CHECKING:
    from digest.scheduler import Scheduler


@click.command("serve")
@click.option("--host", help="Address to listen on (default: listen_host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (default: listen_port, 8000).")
@click.option("--no-web", is_flag=True, help="Run only the scheduler (fetch, send, clean up).")
@click.option("--no-scheduler", is_flag=True, help="Run only the web front.")
@pass_app
def serve_command(app: App, host: str | None, port: int | None, no_web: bool, no_scheduler: bool) -> None:
    """The service: the web front (sign-up, preferences, unsubscribe) and the scheduler, which
    fetches each enabled source every fetch_interval, sends what is due every send_interval and
    cleans up daily. SIGTERM or Ctrl-C finishes the message in flight and exits.

    On SQLite one scheduler may run (start others with --no-scheduler); on PostgreSQL any number.
    Without base_url set, the links in mail lead to where it listens; it says where at start-up.
    It logs at INFO unless log_level is set: a line per fetch and per send run.

    \b
    Examples:
      digest serve
      digest serve --host 0.0.0.0 --port 8080 --no-scheduler
      digest serve --no-web
    """
    from digest.scheduler import Scheduler
    from digest.usecases import maintenance

    if no_web and no_scheduler:
        raise UsageError("--no-web and --no-scheduler together leave nothing to run; drop one of them.")
    settings = app.settings
    host, port = host or settings.listen_host, port or settings.listen_port
    unset = {"log_level", "base_url"} - settings.model_fields_set
    derived = "base_url" in unset
    if unset:  # a service says what it does (INFO), and mails links to where it listens
        defaults = {"log_level": "INFO", "base_url": listening_url(host, port)}
        settings = app.settings = settings.model_copy(update={name: defaults[name] for name in unset})
        logging.getLogger().setLevel(settings.log_level)
        if "log_level" in unset:  # INFO by our choice: Alembic's "Context impl SQLiteImpl" lines at
            logging.getLogger("alembic").setLevel(logging.WARNING)  # each schema check are noise
    context = app.context
    maintenance.check_database(context)
    maintenance.check_mail_settings(context)  # a mail setting at fault stops us now, not at the first send
    ranking_ready(app)  # before the first send or web preview needs it
    service = None if no_scheduler else Scheduler(context)
    if service is not None:
        service.claim()  # on SQLite, refuse a second scheduler before anything starts
    listener = None
    if settings.inbound_listen:
        from digest.cli.inbound import start_listener

        listener = start_listener(app, settings.inbound_listen, settings.inbound_protocol == "lmtp")
    try:
        _serve(app, service, host, port, no_web, derived)
    finally:
        if listener is not None:
            listener.stop()


def _serve(app: App, service: Scheduler | None, host: str, port: int, no_web: bool, derived: bool) -> None:
    """Run the scheduler alone, or the web front (with ``service`` when given), until signalled."""
    from digest.scheduler import exit_leaving_fetches, run_until_signalled

    settings, context = app.settings, app.context
    if no_web:
        assert service is not None
        err().print("digest: scheduler running (no web front); Ctrl-C or SIGTERM stops it.")
        run_until_signalled(service)
        return
    import uvicorn

    from digest.web import Web, create_app

    _check_listen(host, port)
    web_app = create_app(Web(context, service))
    what = "web front and scheduler" if service is not None else "web front only"
    err().print(f"digest: serving http://{_netloc(host, port)}/ ({what}); Ctrl-C or SIGTERM stops it.")
    how = " (from where it listens; set DIGEST_BASE_URL to change it)" if derived else ""
    err().print(f"digest: links in mail start with {settings.base_url}{how}.")
    # uvicorn stops gracefully on SIGTERM/SIGINT, then raises the signal again with the handlers it
    # found in place: these make that a normal exit (status 0), as with --no-web.
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_args: None)
    uvicorn.run(
        web_app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level=settings.log_level.lower(),
        log_config=None,
        server_header=False,
        access_log=False,
    )
    if service is not None:  # the app's shutdown stopped it; a fetch still waiting is not awaited
        exit_leaving_fetches(service)


def listening_url(host: str, port: int) -> str:
    """The base URL of a web front listening on ``host:port`` (every interface: localhost)."""
    if host in ("0.0.0.0", "::", ""):
        host = "localhost"
    return f"http://{_netloc(host, port)}"


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_listen(host: str, port: int) -> None:
    """Raise ConfigError, saying what to change, when ``host:port`` cannot be listened on."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(
            f"Cannot listen on {host!r}: {exc.strerror}. Give an address of this machine with --host "
            "or DIGEST_LISTEN_HOST (127.0.0.1, or 0.0.0.0 for every interface)."
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(
                f"Cannot listen on {host}:{port}: {exc.strerror}. Stop what uses the port, or choose "
                "another with --port or DIGEST_LISTEN_PORT."
            ) from None


@click.command("healthcheck")
@click.option("--url", help="The readiness address to ask (default: http://127.0.0.1:listen_port/readyz).")
@click.option("--database", "database_only", is_flag=True, help="Check the database only (for --no-web).")
@pass_app
def healthcheck_command(app: App, url: str | None, database_only: bool) -> None:
    """Exit 0 when the service is ready, 1 when not (3 when the database is at fault), with one
    line saying why: for container health checks. Asks the web front's /readyz, or with --database
    checks that the database answers with the current schema (for a `digest serve --no-web`
    container).

    \b
    Examples:
      digest healthcheck
      digest healthcheck --database
    """
    if database_only:
        from digest.usecases import maintenance

        maintenance.check_database(app.context)  # raises DatabaseError or SchemaOutOfDate, saying what to do
        click.echo("ready: the database answers with the current schema")
        return
    import httpx

    target = url or f"http://127.0.0.1:{app.settings.listen_port}/readyz"
    try:
        answer = httpx.get(target, timeout=5.0)
        body = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise DigestError(f"not ready: {target} did not answer ({exc}); is `digest serve` running?") from None
    if answer.status_code != 200:
        reasons = ", ".join(f"{key}: {value}" for key, value in body.items() if key != "status")
        raise DigestError(f"not ready: {reasons}")
    click.echo(f"ready: {target}")


@click.command("clean-up")
@now_option
@pass_app
def clean_up_command(app: App, now_text: str | None) -> None:
    """Delete sign-ups never confirmed, expired link tokens and fetch log entries older than
    fetch_log_days (what `digest serve` does daily; for running without it, from cron or a timer).
    What has expired is judged at the current time, or at --now.

    \b
    Examples:
      digest clean-up
      digest clean-up --now 2027-01-01T00:00:00+00:00
    """
    from digest.usecases import maintenance

    counts = maintenance.clean_up(app.context, now_of(app, now_text))
    out().print(
        f"Deleted {counts['unconfirmed']} sign-ups never confirmed, {counts['tokens']} expired tokens "
        f"and {counts['fetch_log']} old fetch log entries."
    )
