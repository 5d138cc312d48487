"""`digest bench`: the mail benchmarks, and the daily send end to end in worker processes, to a loopback
sink."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from digest.bench.relevance import bench_relevance
from digest.cli import cli

KEYS = {"total_s", "digests_per_s", "peak_rss_mb", "stage_s", "stage_digests_per_s", "digests", "workers"}
SINK = {"sink_messages", "sink_distinct_message_ids", "duplicates_at_sink", "possible_duplicates_logged"}


@pytest.mark.parametrize("where", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_pipeline_benchmark_sends_every_digest_once_and_reports_its_stages(where, request) -> None:
    args = ["bench", "pipeline", "--subscribers", "80", "--papers", "150", "--workers", "2", "--json"]
    if where == "postgresql":
        args += ["--database-url", request.getfixturevalue("postgres_url")]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    figures = json.loads(result.output.splitlines()[-1])
    assert result.exit_code == 0 and KEYS | SINK <= figures.keys()
    assert figures["digests"] + figures["skipped"] == 80 and figures["digests"] > 0 and figures["failed"] == 0
    assert figures["sink_distinct_message_ids"] == figures["sink_messages"] == figures["digests"]
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


def test_the_pipeline_benchmark_runs_again_with_more_workers_and_gives_the_ratio() -> None:
    args = ["bench", "pipeline", "--subscribers", "40", "--papers", "100", "--workers", "1", "--workers", "2"]
    result = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    runs = json.loads(result.output.splitlines()[-1])["runs"]
    assert [run["workers"] for run in runs] == [1, 2]
    assert runs[0]["ratio_to_first"] == 1.0
    assert runs[1]["ratio_to_first"] == round(runs[1]["digests_per_s"] / runs[0]["digests_per_s"], 2)


@pytest.mark.postgres
def test_a_worker_killed_midway_loses_no_digest_the_survivors_take_over(postgres_url) -> None:
    """One of three workers gets SIGKILL once half the digests reached the sink; the run still ends
    with every digest at the sink, and any second copy is one a survivor logged as possible. On
    PostgreSQL, where several senders are the way to scale (SQLite's kills: tests/system/test_crash.py)."""
    args = [
        "bench",
        "pipeline",
        "--subscribers",
        "300",
        "--papers",
        "60",
        "--workers",
        "3",
        "--kill",
        "--json",
    ]
    args += ["--database-url", postgres_url]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.splitlines()[-1])
    assert figures["killed_workers"] == 1 and len(figures["peak_rss_mb_per_process"]) == 2
    assert figures["digests"] + figures["skipped"] == 300 and figures["failed"] == 0
    assert figures["sink_distinct_message_ids"] == figures["digests"]
    assert figures["duplicates_at_sink"] <= figures["possible_duplicates_logged"]


def test_killing_needs_a_second_worker_to_take_over() -> None:
    result = CliRunner().invoke(cli, ["bench", "pipeline", "--subscribers", "5", "--kill"])
    assert result.exit_code == 2 and "--kill needs --workers 2 or more" in result.output


@pytest.mark.parametrize("kind", ["render", "send"])
def test_the_mail_benchmarks_report_rate_baseline_and_ratio(kind: str) -> None:
    result = CliRunner().invoke(
        cli, ["bench", kind, "--messages", "40", "--baseline-sample", "10", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["messages"] >= 10 and figures["baseline_messages"] == 10
    assert figures["messages_per_s"] > 0 and figures["baseline_messages_per_s"] > 0
    rate, baseline = figures["messages_per_s"], figures["baseline_messages_per_s"]
    ratio = rate / baseline
    # The ratio is rounded to 0.1 and each rate to 0.1, so they agree within those roundings.
    slack = 0.05 + ratio * (0.05 / rate + 0.05 / baseline) + 1e-9
    assert figures["ratio"] == pytest.approx(ratio, abs=slack)


def test_the_relevance_benchmark_reports_each_ranking_and_feedback_helps_the_next_ten() -> None:
    figures = bench_relevance()
    for name in ("bm25", "keywords", "matching", "no_feedback", "feedback"):
        assert 0.0 <= figures[f"{name}_ndcg10"] <= 1.0 and 0.0 <= figures[f"{name}_p10"] <= 1.0
    assert figures["feedback_lift_ndcg10"] > 0


def test_the_history_benchmark_measures_each_operation_beside_the_small_database() -> None:
    from digest.bench.history import OPERATIONS, bench_history

    figures = bench_history(stored=2_600, subscribers=4, small=2_300, progress=lambda _: None)
    assert (figures["stored"], figures["small_stored"], figures["subscribers"]) == (2_600, 2_300, 4)
    for operation in OPERATIONS:
        measured = figures[operation]
        assert measured["s"] > 0 and measured["small_s"] > 0 and measured["peak_rss_mb"] > 50
        assert measured["ratio_to_small"] == round(measured["s"] / measured["small_s"], 2)
    assert figures["worst_ratio_to_small"] == max(
        figures[operation]["ratio_to_small"] for operation in OPERATIONS
    )


def test_the_history_benchmark_is_refused_a_history_smaller_than_its_baseline() -> None:
    result = CliRunner().invoke(cli, ["bench", "history", "--stored", "5000"])
    assert result.exit_code == 2 and "10000" in result.output
