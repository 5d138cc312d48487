"""deploy/: the files parse and say what the README says. No Docker engine or Kubernetes runs
here: the manifests are checked as YAML, the compose file with `docker compose config` (or
Debian's docker-compose) and the systemd units with systemd-analyze where they are installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from digest.config import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_the_kubernetes_manifests_are_the_expected_kinds() -> None:
    kinds = sorted(
        (document["kind"], document["metadata"]["name"])
        for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
    )
    assert kinds == [
        ("ConfigMap", "digest"),
        ("Deployment", "digest-scheduler"),
        ("Deployment", "digest-web"),
        ("Job", "digest-migrate"),
        ("Secret", "digest"),
        ("Service", "digest"),
    ]


def test_the_kubernetes_settings_are_real_settings() -> None:
    names = set()
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(r"\bDIGEST_([A-Z_]+?)(?:_FILE)?\b(?=[:,}\s])", text))
    unknown = {name for name in names if name.lower() not in Settings.model_fields}
    assert names and unknown == set()


def test_compose_runs_postgresql_healthy_then_migrations_then_the_service() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["digest"]["command"] == ["serve"]
    assert services["digest"]["depends_on"]["db"] == {"condition": "service_healthy"}
    assert services["digest"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["digest"]["environment"]["DIGEST_SMTP_URL"] == "smtp://mail:1025"
    assert "mailpit" in services["mail"]["image"]


def _compose_command() -> list[str] | None:
    """`docker compose` (the plugin) if it answers, else the older `docker-compose`, else None."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.mark.skipif(
    _compose_command() is None, reason="neither docker compose nor docker-compose is installed"
)
def test_docker_compose_validates_the_compose_file() -> None:
    command = [*(_compose_command() or []), "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_env_example_names_only_real_settings() -> None:
    lines = (DEPLOY / "digest.env.example").read_text(encoding="utf-8").splitlines()
    names = {line.lstrip("# ").split("=", 1)[0] for line in lines if re.match(r"#? ?DIGEST_[A-Z_]+=", line)}
    assert names and {name.removeprefix("DIGEST_").lower() for name in names} <= set(Settings.model_fields)


def test_the_image_runs_as_a_user_with_a_health_check_and_migrates_only_when_asked() -> None:
    instructions = [
        line.split(None, 1)
        for line in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith(("#", " "))
    ]
    final = instructions[max(i for i, (word, _) in enumerate(instructions) if word == "FROM") :]
    words = {word: rest for word, rest in final}
    assert words["USER"] == "digest"
    assert words["HEALTHCHECK"].endswith('CMD ["digest", "healthcheck"]')
    assert words["CMD"] == '["serve"]' and "upgrade" not in words["ENTRYPOINT"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_units_verify(tmp_path: Path) -> None:
    stub = tmp_path / "digest"  # verify wants ExecStart's program to exist
    stub.write_text("#!/bin/sh\n", encoding="utf-8")
    stub.chmod(0o755)
    units = []
    for unit in sorted((DEPLOY / "systemd").iterdir()):
        text = unit.read_text(encoding="utf-8").replace("/opt/digest/venv/bin/digest", str(stub))
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
        units.append(str(tmp_path / unit.name))
    assert len(units) == 9
    services = [Path(unit).read_text(encoding="utf-8") for unit in units if unit.endswith(".service")]
    assert all("User=digest" in text for text in services)  # one dynamic user: they share /var/lib/digest
    run = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)
    problems = [line for line in run.stderr.splitlines() if "digest" in line]
    assert run.returncode == 0 and problems == [], run.stderr
