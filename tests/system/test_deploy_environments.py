"""deploy/ as shipped: `digest` started with exactly the command and environment each compose
service, systemd unit and Kubernetes container gives it, read from the files themselves.

No Docker engine, systemd or cluster runs here, so only what names the deployment's own network
and disks changes: the database URL (or its secret file) points at this test's PostgreSQL schema,
the listening port is a free one, /var/lib/digest, /run/secrets and /tmp lie in the test's
folder, and Numba keeps its cache where it does on this machine. Every other setting, the mail
relay and the base URL included, is the file's."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.smtp import free_port
from tests.support.waiting import WAIT, wait_until

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DIGEST = [sys.executable, "-m", "digest"]
SHIPPED_BINARY = "/opt/digest/venv/bin/digest"
pytestmark = pytest.mark.postgres


def image_env() -> dict[str, str]:
    """The ENV of the Dockerfile's final stage."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    final = text[text.rindex("\nFROM ") :]
    env: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            env |= dict(item.split("=", 1) for item in shlex.split(line[4:]))
    return env


def env_file(path: Path) -> dict[str, str]:
    """A KEY=VALUE file as compose's env_file and systemd's EnvironmentFile read it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def compose_service(name: str) -> Shipped:
    """The command and environment of a compose service running the image."""
    service = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))["services"][name]
    env = image_env()
    if "env_file" in service:
        env |= env_file(DEPLOY / service["env_file"])
    env |= {key: str(value) for key, value in service.get("environment", {}).items()}
    return Shipped(list(service["command"]), env)


def systemd_unit(name: str) -> Shipped:
    """The arguments and environment of a unit; its EnvironmentFile is the example, as the README
    says to install it."""
    args: list[str] = []
    env: dict[str, str] = {}
    for line in (DEPLOY / "systemd" / name).read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key == "ExecStart":
            binary, *args = shlex.split(value)
            assert binary == SHIPPED_BINARY
        elif key == "EnvironmentFile":
            assert value == "/etc/digest/digest.env"
            env |= env_file(DEPLOY / "digest.env.example")
        elif key == "Environment":
            env |= dict(item.split("=", 1) for item in shlex.split(value))
    return Shipped(args, env)


def kubernetes_container(kind: str, name: str) -> Shipped:
    """A container's args and environment (its ConfigMap, then its own env), and the example
    Secret's keys, which the pods read as files."""
    documents = [
        document
        for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
    ]
    by_kind = {(document["kind"], document["metadata"]["name"]): document for document in documents}
    [container] = by_kind[kind, name]["spec"]["template"]["spec"]["containers"]
    env = image_env()
    for source in container.get("envFrom", []):
        env |= {
            key: str(value)
            for key, value in by_kind["ConfigMap", source["configMapRef"]["name"]]["data"].items()
        }
    env |= {item["name"]: str(item["value"]) for item in container.get("env", [])}
    return Shipped(list(container["args"]), env, dict(by_kind["Secret", "digest"]["stringData"]))


def here(
    env: dict[str, str], tmp_path: Path, database_url: str, secrets: dict[str, str] | None = None
) -> dict[str, str]:
    """``env`` on this machine: this test's database, a free port, folders under ``tmp_path``."""
    moved = {
        "/var/lib/digest": tmp_path / "state",
        "/run/secrets/digest": tmp_path / "secrets",
        "/tmp": tmp_path / "tmp",
    }
    for folder in moved.values():
        folder.mkdir(exist_ok=True)
    for key, value in (secrets or {}).items():
        (moved["/run/secrets/digest"] / key).write_text(database_url if key == "database_url" else value)
    local = {}
    for key, value in env.items():
        for shipped, folder in moved.items():
            if value == shipped or value.startswith(shipped + "/"):
                value = str(folder) + value[len(shipped) :]
                break
        local[key] = value
    # Numba's cache is this machine's own (warm), not a fresh folder per test: each would compile
    # the ranking kernel again, several seconds a process.
    local.pop("NUMBA_CACHE_DIR", None)
    if "DIGEST_DATABASE_URL_FILE" not in local:
        local["DIGEST_DATABASE_URL"] = database_url
    local["DIGEST_LISTEN_PORT"] = str(free_port())
    outside = {key: value for key, value in os.environ.items() if not key.startswith("DIGEST_")}
    return {**outside, **local}


@dataclass(frozen=True)
class Shipped:
    """A command and its environment as a deployment file gives them, with the Secret's keys (read
    as files) for a Kubernetes container."""

    args: list[str]
    env: dict[str, str]
    secrets: dict[str, str] | None = None

    def here(self, tmp_path: Path, database_url: str) -> tuple[list[str], dict[str, str]]:
        return self.args, here(self.env, tmp_path, database_url, self.secrets)


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DIGEST, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def migrated(shipped: Shipped, tmp_path: Path, database_url: str) -> None:
    """Run the deployment's own migration (`digest db upgrade`) as shipped."""
    args, env = shipped.here(tmp_path, database_url)
    assert args == ["db", "upgrade"]
    done = run(args, env, tmp_path / "state")
    assert done.returncode == 0, done.stdout + done.stderr


def assert_serves(shipped: Shipped, tmp_path: Path, database_url: str) -> None:
    """`digest serve` as shipped starts, is ready (by /readyz, or a scheduler-only one once its
    scheduler runs), passes its own health check, and stops cleanly on SIGTERM."""
    args, env = shipped.here(tmp_path, database_url)
    process = subprocess.Popen(
        [*DIGEST, *args], env=env, cwd=tmp_path / "state", stderr=subprocess.PIPE, text=True
    )
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(process.stderr or ()), daemon=True)
    reader.start()
    try:
        if "--no-web" in args:
            wait_until(
                lambda: process.poll() is not None or "scheduler started" in "".join(said), "the scheduler"
            )
            check = ["healthcheck", "--database"]
        else:
            ready = f"http://127.0.0.1:{env['DIGEST_LISTEN_PORT']}/readyz"
            wait_until(lambda: process.poll() is not None or _ready(ready), "the web front to be ready")
            check = ["healthcheck"]
        assert process.poll() is None, "".join(said)
        healthy = run(check, env, tmp_path / "state")
        assert healthy.returncode == 0 and "ready" in healthy.stdout, healthy.stdout + healthy.stderr
        assert process.poll() is None, "".join(said)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=WAIT)
        reader.join(WAIT)
    assert process.returncode == 0, "".join(said)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_the_compose_services_migrate_and_serve_as_shipped(postgres_url, tmp_path) -> None:
    migrated(compose_service("migrate"), tmp_path, postgres_url)
    service = compose_service("digest")
    assert service.env["DIGEST_SMTP_URL"] == "smtp://mail:1025"  # Mailpit, as shipped
    assert_serves(service, tmp_path, postgres_url)


@pytest.mark.parametrize("unit", ["digest.service", "digest-web.service"])
def test_the_systemd_service_units_migrate_and_serve_as_shipped(postgres_url, tmp_path, unit) -> None:
    migrated(systemd_unit("digest-migrate.service"), tmp_path, postgres_url)
    assert_serves(systemd_unit(unit), tmp_path, postgres_url)


# digest-scrape.service has the same environment; from here it could only show that the internet
# is out of reach (its fetches retry for about 10 s before saying so).
@pytest.mark.parametrize("unit", ["digest-send.service", "digest-clean-up.service"])
def test_the_systemd_timer_units_run_as_shipped(postgres_url, tmp_path, unit) -> None:
    migrated(systemd_unit("digest-migrate.service"), tmp_path, postgres_url)
    args, env = systemd_unit(unit).here(tmp_path, postgres_url)
    done = run(args, env, tmp_path / "state")
    assert done.returncode == 0 and "error:" not in done.stdout + done.stderr, done.stdout + done.stderr


@pytest.mark.parametrize("name", ["digest-web", "digest-scheduler"])
def test_the_kubernetes_pods_migrate_and_serve_as_shipped(postgres_url, tmp_path, name) -> None:
    migrated(kubernetes_container("Job", "digest-migrate"), tmp_path, postgres_url)
    pod = kubernetes_container("Deployment", name)
    assert pod.env.get("DIGEST_FORWARDED_ALLOW_IPS"), "rate limits would count every client as the ingress"
    assert_serves(pod, tmp_path, postgres_url)
