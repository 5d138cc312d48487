"""A real IMAP server on loopback: Debian's Dovecot with a throwaway configuration, one mailbox
user (any name, password ``secret``) whose mail lives in a temporary Maildir."""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.smtp import free_port
from tests.support.waiting import wait_until

PASSWORD = "secret"
REQUIRED = os.environ.get("DIGEST_TEST_REQUIRE_DOVECOT") == "1"
CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{root}/mail/%u
first_valid_uid = 0
{users}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass(frozen=True, slots=True)
class Dovecot:
    port: int
    root: Path

    def url(self, user: str = "inbox", folder: str = "INBOX") -> str:
        return f"imap://{user}:{PASSWORD}@127.0.0.1:{self.port}/{folder}"

    def client(self, user: str = "inbox") -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(user, PASSWORD)
        return client

    def deliver(self, *messages: bytes, user: str = "inbox") -> None:
        """Put ``messages`` in the user's INBOX, as a delivering MTA does."""
        client = self.client(user)
        try:
            for message in messages:
                client.append("INBOX", None, None, message)
        finally:
            client.logout()

    def count(self, folder: str, user: str = "inbox") -> int:
        """Messages in ``folder`` (0 when it does not exist)."""
        client = self.client(user)
        try:
            status, data = client.select(f'"{folder}"', readonly=True)
            return int(data[0]) if status == "OK" else 0
        finally:
            client.logout()


@contextmanager
def dovecot() -> Iterator[Dovecot]:
    """Dovecot running on a free port until the block ends; skips (fails where required) without it."""
    binary = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
    if binary is None:
        if REQUIRED:
            pytest.fail("dovecot is not installed (apt-get install dovecot-imapd): the IMAP tests need it")
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    root = Path(tempfile.mkdtemp(prefix="digest-dovecot-"))
    root.chmod(0o755)
    (root / "mail").mkdir()
    if os.geteuid() == 0:  # Dovecot keeps mail as an unprivileged user
        account = pwd.getpwnam("dovecot")
        uid, gid, users = account.pw_uid, account.pw_gid, ""
        os.chown(root / "mail", uid, gid)
    else:
        name = pwd.getpwuid(os.getuid()).pw_name
        uid, gid = os.getuid(), os.getgid()
        users = f"default_internal_user = {name}\ndefault_login_user = {name}\n"
    port = free_port()
    config = root / "dovecot.conf"
    config.write_text(CONFIG.format(root=root, users=users, password=PASSWORD, uid=uid, gid=gid, port=port))
    process = subprocess.Popen(
        [binary, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_until(lambda: _answers(port) or process.poll() is not None, "Dovecot to listen")
        if process.poll() is not None:
            log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
            raise RuntimeError(f"dovecot did not start: {process.stderr.read().decode()} {log}")
        yield Dovecot(port, root)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _answers(port: int) -> bool:
    try:
        imaplib.IMAP4("127.0.0.1", port, timeout=1).logout()
    except OSError:
        return False
    return True
