"""Where the templates, migrations, captured fixtures and the judged relevance set are: inside the
installed wheel, or in the checkout (templates/, migrations/, tests/data/fixtures/ and relevance/)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
IN_CHECKOUT = {
    "templates": "templates",
    "migrations": "migrations",
    "fixtures": "tests/data/fixtures",
    "relevance": "tests/data/relevance",
}


def resource_dir(name: str) -> Path:
    """The folder ``name`` (a key of IN_CHECKOUT) of this installation."""
    packaged = _PACKAGE / name
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent / IN_CHECKOUT[name]
