"""The ``digest`` command line: a click group per module, each command a thin adapter over one use
case (digest.usecases), with examples in its help."""

from __future__ import annotations

import click

from digest import __version__
from digest.cli.bench import bench_group
from digest.cli.common import App, DigestGroup
from digest.cli.config import check_config
from digest.cli.db import db_group
from digest.cli.deliveries import deliveries_group
from digest.cli.digests import preview_command, run_command, score_command, send_command
from digest.cli.feedback import feedback_command
from digest.cli.inbound import inbound_group
from digest.cli.papers import papers_group
from digest.cli.service import clean_up_command, healthcheck_command, serve_command
from digest.cli.sources import parse_command, scrape_command, sources_group
from digest.cli.subscribers import subscribers_group


@click.group(cls=DigestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="DIGEST_CONFIG",
    help="TOML settings file (DIGEST_* environment variables override it).",
)
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """digest: new research papers from Hugging Face, arXiv and any feed, ranked for each subscriber's
    interests and mailed once a day (to ./outbox until DIGEST_SMTP_URL is set). Settings come from
    DIGEST_* variables and --config; the database and outbox are in the current folder by default.

    \b
    First run:
      digest db upgrade && digest run
    """
    ctx.obj = App(config_path)


for command in (
    check_config,
    db_group,
    parse_command,
    sources_group,
    scrape_command,
    papers_group,
    subscribers_group,
    score_command,
    feedback_command,
    preview_command,
    send_command,
    run_command,
    deliveries_group,
    inbound_group,
    serve_command,
    healthcheck_command,
    clean_up_command,
    bench_group,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="digest")
