"""Where the templates, migrations and captured fixtures are: inside the installed wheel, or in the
checkout (templates/, migrations/, tests/data/fixtures/)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
IN_CHECKOUT = {"templates": "templates", "migrations": "migrations", "fixtures": "tests/data/fixtures"}


def resource_dir(name: str) -> Path:
    """The folder ``name`` (``templates``, ``migrations`` or ``fixtures``) of this installation."""
    packaged = _PACKAGE / name
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent / IN_CHECKOUT[name]
