"""The ranking kernel made ready before a command ranks: said when it is slow (Numba compiling it on
a new machine), silent when it comes from the cache."""

from __future__ import annotations

import time

from click.testing import CliRunner

from digest.cli import cli
from digest.config import Settings
from digest.usecases import context as context_module
from digest.usecases.context import Context


def compiling_slowly() -> None:
    time.sleep(0.5)  # as a first compile does, only shorter


def test_a_slow_first_ranking_is_announced_once(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(context_module, "warm_ranking", compiling_slowly)
    told: list[str] = []
    ctx = Context(Settings(database_url=f"sqlite:///{tmp_path}/unused.db"))
    ctx.warm_ranking(lambda: told.append("compiling"), after=0.05)
    ctx.warm_ranking(lambda: told.append("again"), after=0.05)  # once per process
    assert told == ["compiling"]


def test_a_ranking_kernel_ready_in_time_is_not_announced(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(context_module, "warm_ranking", lambda: None)
    told: list[str] = []
    Context(Settings(database_url=f"sqlite:///{tmp_path}/unused.db")).warm_ranking(
        lambda: told.append("compiling"), after=0.2
    )
    time.sleep(0.3)
    assert told == []


def test_preview_says_it_is_compiling_rather_than_look_hung(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(context_module, "warm_ranking", lambda: time.sleep(1.3))  # over the 1 s it waits
    result = CliRunner().invoke(
        cli, ["preview", "--interests", "x"], env={"DIGEST_DATABASE_URL": f"sqlite:///{tmp_path}/none.db"}
    )
    assert "compiling the ranking kernel; once per machine" in result.output
