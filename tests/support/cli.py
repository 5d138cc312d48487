"""Running the ``digest`` command line in the test's process."""

from __future__ import annotations

from click.testing import CliRunner, Result

from digest.cli import cli
from tests.support.data import FIXTURES


def digest(*args: str, url: str | None = None, env: dict[str, str] | None = None) -> Result:
    environment = {"DIGEST_HOST_MIN_INTERVAL": "0", **(env or {})}
    if url:
        environment["DIGEST_DATABASE_URL"] = url
    return CliRunner().invoke(cli, list(args), env=environment, catch_exceptions=False)


def add_fixture_page_source(url: str, name: str = "page") -> None:
    """Add the captured HF listing page as source ``name``."""
    page = str(FIXTURES / "hf_papers_page_2024-08-01.html")
    assert digest("sources", "add", name, "--kind", "hf-page", "--url", page, url=url).exit_code == 0
