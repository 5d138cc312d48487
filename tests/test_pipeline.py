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
