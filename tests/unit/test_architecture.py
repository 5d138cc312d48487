"""The architecture rules (import-linter contracts in pyproject.toml) hold, and break when broken."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(tree: Path) -> tuple[int, str]:
    """lint-imports' exit status on ``tree``, and its report with white space folded."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    result = subprocess.run(
        [str(LINT), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=120
    )
    return result.returncode, " ".join((result.stdout + result.stderr).split())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package and its contracts, to break on purpose."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "digest", tmp_path / "digest", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_package_keeps_every_contract() -> None:
    status, report = lint(ROOT)
    assert status == 0, report
    assert "Contracts: 4 kept, 0 broken." in report


def test_sql_outside_store_breaks_two_contracts(tree: Path) -> None:
    index = tree / "digest" / "score" / "index.py"
    index.write_text(index.read_text(encoding="utf-8") + "\nimport sqlalchemy  # noqa\n", encoding="utf-8")
    status, report = lint(tree)
    assert status == 1
    assert "Only store imports SQLAlchemy or Alembic BROKEN" in report
    assert "do no I/O: no database, network or mail BROKEN" in report
    assert "digest.score.index -> sqlalchemy" in report


def test_a_stage_importing_one_above_it_breaks_the_flow(tree: Path) -> None:
    composing = tree / "digest" / "compose" / "digest.py"
    text = composing.read_text(encoding="utf-8") + "\nfrom digest.deliver import planner  # noqa\n"
    composing.write_text(text, encoding="utf-8")
    status, report = lint(tree)
    assert status == 1
    assert "(the flow, top to bottom) BROKEN" in report
    assert "digest.compose.digest -> digest.deliver.planner" in report


def test_an_entry_point_reaching_past_the_use_cases_breaks_its_contract(tree: Path) -> None:
    pages = tree / "digest" / "web" / "pages.py"
    pages.write_text(
        pages.read_text(encoding="utf-8") + "\nfrom digest.store import ledger  # noqa\n", encoding="utf-8"
    )
    status, report = lint(tree)
    assert status == 1
    assert "use only the use cases and config BROKEN" in report
