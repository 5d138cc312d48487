"""`digest bench pipeline`: the daily send end to end, in worker processes, to a loopback sink."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from digest.cli import cli

KEYS = {"total_s", "digests_per_s", "peak_rss_mb", "stage_s", "stage_digests_per_s", "digests", "workers"}


@pytest.mark.parametrize("where", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_pipeline_benchmark_sends_every_digest_once_and_reports_its_stages(where, request) -> None:
    args = ["bench", "pipeline", "--subscribers", "80", "--papers", "150", "--workers", "2", "--json"]
    if where == "postgresql":
        args += ["--database-url", request.getfixturevalue("postgres_url")]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    figures = json.loads(result.output.splitlines()[-1])
    assert result.exit_code == 0 and KEYS <= figures.keys()
    assert figures["digests"] + figures["skipped"] == 80 and figures["digests"] > 0 and figures["failed"] == 0
    assert figures["database"] == where and len(figures["peak_rss_mb_per_process"]) == 2
    assert set(figures["stage_s"]) == {"plan", "claim", "compose", "render", "send", "ledger"}


def test_the_pipeline_benchmark_never_mails_through_the_operators_smtp_server(tmp_path) -> None:
    env = {"DIGEST_SMTP_URL": "smtp://127.0.0.1:9", "DIGEST_MAIL_TRANSPORT": "smtp"}  # nothing listens there
    args = ["bench", "pipeline", "--subscribers", "5", "--papers", "40", "--json"]
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0 and json.loads(result.output.splitlines()[-1])["digests"] == 5


def test_the_pipeline_benchmark_refuses_a_database_that_is_not_postgresql(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'real.db'}"
    result = CliRunner().invoke(cli, ["bench", "pipeline", "--subscribers", "5", "--database-url", url])
    assert result.exit_code == 2 and "must be a PostgreSQL URL" in result.output
    assert not (tmp_path / "real.db").exists()
