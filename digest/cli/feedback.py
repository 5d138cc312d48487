"""``digest feedback``: "more like this" and "less like this" from the command line."""

from __future__ import annotations

import click

from digest.cli.common import App, out, pass_app, print_json_lines, shown, table
from digest.errors import UsageError

SAID = {"up": "more like this", "down": "less like this", None: "no feedback"}


@click.command("feedback")
@click.argument("email")
@click.argument("paper_id", required=False)
@click.option("--up", "verdict", flag_value="up", help="More like this paper.")
@click.option("--down", "verdict", flag_value="down", help="Less like this paper.")
@click.option("--clear", "verdict", flag_value="clear", help="Take back what was said of this paper.")
@click.option("--list", "listing", is_flag=True, help="Show what this subscriber said of which papers.")
@click.option("--json", "as_json", is_flag=True, help="With --list: one JSON object per paper per line.")
@pass_app
def feedback_command(
    app: App, email: str, paper_id: str | None, verdict: str | None, listing: bool, as_json: bool
) -> None:
    """Record a subscriber's feedback on a paper: liked papers bring their neighbours into later
    digests (as "related"), disliked ones sink theirs. PAPER_ID
    is the id `digest score --json` prints (an arXiv id, or the paper's URL); an arXiv id with a
    version or an arXiv URL works too.

    \b
    Examples:
      digest feedback ada@example.org 2407.21705 --up
      digest feedback ada@example.org 2407.21783 --down
      digest feedback ada@example.org 2407.21783 --clear
      digest feedback ada@example.org --list
    """
    from digest.usecases import feedback

    if listing:
        if paper_id is not None or verdict is not None:
            raise UsageError("--list shows all of a subscriber's feedback: give it with EMAIL alone.")
        rows = feedback.listing(app.context, email)
        if as_json:
            print_json_lines(rows)
            return
        if not rows:
            out().print(f"{shown(email)} has given no feedback yet.", soft_wrap=True)
            return
        shown_rows = table("paper", "feedback", "where", "when", "title")
        for row in rows:
            shown_rows.add_row(
                shown(row["id"]), SAID[row["feedback"]], row["origin"], row["updated_at"], shown(row["title"])
            )
        out().print(shown_rows)
        return
    if paper_id is None or verdict is None:
        raise UsageError("Give PAPER_ID and one of --up, --down or --clear (or --list alone).")
    chosen = {"up": feedback.Verdict.UP, "down": feedback.Verdict.DOWN, "clear": None}[verdict]
    result = feedback.give(app.context, email, paper_id, chosen)
    who, paper = shown(result["email"]), f"{shown(result['id'])} ({shown(result['title'])})"
    if chosen is None:
        said = f"Took back {who}'s feedback on" if result["changed"] else f"{who} had given no feedback on"
    elif result["changed"]:
        said = f"Recorded {SAID[result['feedback']]} for {who}:"
    else:
        said = f"{who} already said {SAID[result['feedback']]} of"
    out().print(f"{said} {paper}.", soft_wrap=True)
    if chosen is None and result["seed"]:
        out().print(
            f"A like: line of {who}'s interests names it, so it still counts as more like this; "
            f"remove the line with `digest subscribers edit {shown(result['email'])} --interests …`.",
            soft_wrap=True,
        )
