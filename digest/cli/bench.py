"""``digest bench``: speed, each figure beside a baseline measured in the same run."""

from __future__ import annotations

import json

import click

from digest.cli.common import err, print_figures
from digest.errors import UsageError


@click.group("bench")
def bench_group() -> None:
    """Measure speed; each prints a table, or one JSON object with --json.

    \b
    Example:
      digest bench parse --json
    """


@bench_group.command("parse")
@click.option("--json", "as_json", is_flag=True, help="One JSON object of the figures.")
@click.option(
    "--papers", type=click.IntRange(min=100), default=10_000, show_default=True, help="Papers to ingest."
)
def bench_parse(as_json: bool, papers: int) -> None:
    """Parsing and bulk-ingest speed, beside a one-row-per-transaction baseline measured in the same run.

    Uses a temporary SQLite database; touches nothing of yours.

    \b
    Example:
      digest bench parse --json
    """
    from digest.bench.parse import bench_parse as run

    figures = run(ingest_papers=papers, progress=lambda message: err().print(message))
    print_figures(figures, as_json)


@bench_group.command("relevance")
@click.option("--json", "as_json", is_flag=True, help="One JSON object of the figures.")
def bench_relevance(as_json: bool) -> None:
    """Ranking quality on the judged set (35 interest lines x 123 fixture papers, judged 0/1/2 by
    reading them; tests/data/relevance): mean NDCG@10 and P@10 of plain BM25 (rank_bm25), digest's
    keyword matching as it was (no learned acronyms, phrases by themselves) and as it is, and of the
    next 10 after a simulated reader judged the top 10, with feedback and without. Relevance only,
    no trending.

    \b
    Example:
      digest bench relevance --json
    """
    from digest.bench.relevance import bench_relevance as run

    print_figures(run(), as_json)


@bench_group.command("score")
@click.option("--subscribers", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--papers", type=click.IntRange(min=10), default=2_000, show_default=True)
@click.option(
    "--baseline-sample",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Subscribers the naive loop scores.",
)
@click.option(
    "--feedback",
    type=click.IntRange(min=0, max=1000),
    default=0,
    show_default=True,
    help="Then again with N feedback items per subscriber (their figures are feedback_*).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object of the figures.")
def bench_score(subscribers: int, papers: int, baseline_sample: int, feedback: int, as_json: bool) -> None:
    """Scoring speed: subscribers per second for the compiled scorer beside a naive Python loop.

    Papers mix real fixture sentences with fixture words; each subscriber has 5 interest lines
    drawn from fixture keywords and abstracts. Touches no database.

    \b
    Example:
      digest bench score --subscribers 100000 --papers 2000 --json
      digest bench score --subscribers 100000 --papers 2000 --feedback 20
    """
    from digest.bench.score import bench_score as run

    figures = run(
        subscribers=subscribers,
        papers=papers,
        baseline_sample=baseline_sample,
        progress=lambda m: err().print(m),
        feedback=feedback,
    )
    print_figures(figures, as_json)


@bench_group.command("render")
@click.option("--messages", type=click.IntRange(min=10), default=5_000, show_default=True)
@click.option(
    "--baseline-sample",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Messages the naive renderer makes.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object of the figures.")
def bench_render(messages: int, baseline_sample: int, as_json: bool) -> None:
    """Rendering speed: whole messages (HTML, text, MIME) per second beside a naive renderer.

    Digests of up to 10 papers and 3 trending ones are composed from synthetic papers and
    subscribers (as `bench score` makes them). The naive renderer uses the same templates but inlines
    the stylesheet and wraps text anew for every message and builds each with EmailMessage.

    \b
    Example:
      digest bench render --json
    """
    from digest.bench.mail import bench_render as run

    print_figures(run(messages=messages, baseline_sample=baseline_sample, progress=err().print), as_json)


@bench_group.command("send")
@click.option("--messages", type=click.IntRange(min=10), default=10_000, show_default=True)
@click.option(
    "--connections",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="SMTP connections at once.",
)
@click.option(
    "--baseline-sample",
    type=click.IntRange(min=1),
    default=1_000,
    show_default=True,
    help="Messages sent with a new connection each.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object of the figures.")
def bench_send(messages: int, connections: int, baseline_sample: int, as_json: bool) -> None:
    """Sending speed: messages of about 30 KB per second over loopback to a fast SMTP sink that the
    benchmark starts in a process of its own, beside one new connection per message.

    \b
    Example:
      digest bench send --connections 2 --json
    """
    from digest.bench.mail import bench_send as run

    figures = run(
        messages=messages, connections=connections, baseline_sample=baseline_sample, progress=err().print
    )
    print_figures(figures, as_json)


@bench_group.command("pipeline")
@click.option(
    "--subscribers",
    type=click.IntRange(1),
    default=10_000,
    show_default=True,
    help="Synthetic subscribers, all due.",
)
@click.option(
    "--papers", type=click.IntRange(1), default=2_000, show_default=True, help="Synthetic papers of the day."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    multiple=True,
    help="Sender processes started at once (default 1). Give it again to run again with as many, "
    "from a fresh database, and get each run's speed as a ratio to the first.",
)
@click.option(
    "--database-url",
    help="A PostgreSQL to run on (in a schema of its own, dropped after); default: a SQLite file.",
)
@click.option(
    "--kill",
    is_flag=True,
    help="SIGKILL one worker once half the digests reached the sink; the others take over its claims "
    "(10 s lease). Needs --workers 2 or more.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='One JSON object of the figures ({"runs": [...]} for several --workers).',
)
def bench_pipeline(
    subscribers: int,
    papers: int,
    workers: tuple[int, ...],
    database_url: str | None,
    kill: bool,
    as_json: bool,
) -> None:
    """The daily send end to end: plan, claim, score and compose, render, send to a fast SMTP sink
    on loopback, record; with --workers processes at once. Reports total_s, digests_per_s,
    peak_rss_mb and each stage's seconds, and fails unless every digest reached the sink (the
    sink records each Message-ID) and any copy is one a sender logged as a possible duplicate.

    \b
    Examples:
      digest bench pipeline --subscribers 100000 --papers 2000 --json
      digest bench pipeline --workers 1 --workers 2 --database-url postgresql+psycopg://postgres@127.0.0.1/test
      digest bench pipeline --subscribers 100000 --workers 4 --kill --database-url postgresql://...
    """
    from digest.bench.pipeline import bench_pipeline as run

    counts = workers or (1,)
    if kill and min(counts) < 2:
        raise UsageError("--kill needs --workers 2 or more: the survivors take over the killed one's claims.")
    runs = [
        run(
            subscribers=subscribers,
            papers=papers,
            workers=count,
            database_url=database_url,
            kill=kill,
            progress=err().print,
        )
        for count in counts
    ]
    first = runs[0]["digests_per_s"]
    for figures in runs:
        figures["ratio_to_first"] = round(figures["digests_per_s"] / first, 2) if first else None
    if as_json:
        click.echo(json.dumps(runs[0] if len(runs) == 1 else {"runs": runs}))
        return
    for figures in runs:
        flat = {key: value for key, value in figures.items() if not isinstance(value, dict | list)}
        flat.update({f"{stage} s": seconds for stage, seconds in figures["stage_s"].items()})
        print_figures(flat, False)


@bench_group.command("history")
@click.option(
    "--stored",
    type=click.IntRange(10_000),
    default=250_000,
    show_default=True,
    help="Stored papers of the large database (a year of listing days; the day's 2,000 among them).",
)
@click.option(
    "--subscribers", type=click.IntRange(1), default=1_000, show_default=True, help="Subscribers, all due."
)
@click.option(
    "--database-url",
    help="A PostgreSQL to run on (in schemas of their own, dropped after); default: SQLite files.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object of the figures.")
def bench_history(stored: int, subscribers: int, database_url: str | None, as_json: bool) -> None:
    """What the stored history costs the daily work: `score` and `preview` of one subscriber, the
    web front's preview, a send of every digest to an SMTP sink on loopback, and storing a new
    2,000-paper listing, each in a database of --stored papers and beside the same in one of
    10,000 (ratio_to_small), with each one's peak memory (peak_rss_mb). Building a database of a
    million papers takes several minutes.

    \b
    Examples:
      digest bench history --stored 1000000 --subscribers 10000 --json
      digest bench history --stored 250000 --database-url postgresql+psycopg://postgres@127.0.0.1/test
    """
    from digest.bench.history import OPERATIONS
    from digest.bench.history import bench_history as run

    figures = run(stored=stored, subscribers=subscribers, database_url=database_url, progress=err().print)
    if as_json:
        click.echo(json.dumps(figures))
        return
    flat = {key: value for key, value in figures.items() if not isinstance(value, dict)}
    for operation in OPERATIONS:
        for key, value in figures[operation].items():
            flat[f"{operation} {key}"] = value
    print_figures(flat, False)
