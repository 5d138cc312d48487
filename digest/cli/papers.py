"""``digest papers``: the stored papers."""

from __future__ import annotations

import click

from digest.cli.common import App, json_text, out, parse_date, pass_app, print_json_lines, shown, table


@click.group("papers")
def papers_group() -> None:
    """Look at the stored papers.

    \b
    Example:
      digest papers list --since 2026-11-20
    """


@papers_group.command("list")
@click.option("--since", help="Only papers listed on or after this date (YYYY-MM-DD).")
@click.option("--source", "source_name", help="Only papers listed by this source.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per paper per line.")
@pass_app
def papers_list(app: App, since: str | None, source_name: str | None, limit: int, as_json: bool) -> None:
    """List stored papers, newest first.

    \b
    Examples:
      digest papers list --limit 10
      digest papers list --source hf-daily --since 2026-11-20 --json
    """
    from digest.usecases import papers

    found = papers.list_papers(
        app.context, since=parse_date(since, "--since"), source=source_name, limit=limit
    )
    if as_json:
        print_json_lines(found)
        return
    rows = table("id", "upvotes", "first seen", "title")
    for paper in found:
        upvotes = paper["upvotes"]
        rows.add_row(
            shown(paper["id"]),
            "" if upvotes is None else str(upvotes),
            paper["first_seen_at"][:10],
            shown(paper["title"]),
        )
    out().print(rows)
    out().print(f"{len(found)} papers.")


@papers_group.command("show")
@click.argument("paper_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@pass_app
def papers_show(app: App, paper_id: str, as_json: bool) -> None:
    """Show one paper with its listings and upvote history. ID may be an arXiv id (with or without
    version) or an arXiv URL.

    \b
    Example:
      digest papers show 2407.21783
    """
    from digest.usecases import papers

    data = papers.show_paper(app.context, paper_id)
    if as_json:
        click.echo(json_text(data, indent=2))
        return
    console = out()
    console.print(f"[bold]{shown(data['title'])}[/]")
    version = f"v{data['version']}" if data["version"] else ""
    console.print(f"{shown(data['id'])}{version}  {shown(data['url'])}")
    console.print(shown(", ".join(data["authors"])))
    for label in ("published", "pdf_url", "hf_url", "github_repo", "project_page"):
        if data[label]:
            console.print(f"{label}: {shown(data[label])}")
    if data["categories"]:
        console.print("categories: " + shown(", ".join(data["categories"])))
    console.print()
    if data["ai_summary"]:
        console.print(f"summary: {shown(data['ai_summary'])}")
    console.print(shown(data["abstract"]))
    console.print()
    for listing in data["listings"]:
        console.print(
            f"listed by {shown(listing['source'])} on {listing['listed_on']}"
            + (f" at #{listing['rank']}" if listing["rank"] else "")
            + (f" ({shown(listing['announce_type'])})" if listing["announce_type"] else "")
        )
    for metric in data["metrics"]:
        labels = {"upvotes": "upvotes", "comments": "comments", "github_stars": "GitHub stars"}
        counts = [f"{metric[key]} {label}" for key, label in labels.items() if metric[key] is not None]
        console.print(f"{metric['taken_at']}: {', '.join(counts)}")
