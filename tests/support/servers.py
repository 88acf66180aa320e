"""Real servers for connector tests: a private Dovecot (IMAP) and a Radicale (CalDAV).

Both run on random 127.0.0.1 ports from a temp dir and stop at the end of the session. They
are skipped only when the binary is missing and ``KIZUNA_REQUIRE_SERVERS`` is not set (CI sets
it, so a missing server fails there instead of silently passing).
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

REQUIRE = os.environ.get("KIZUNA_REQUIRE_SERVERS") == "1"
PASSWORD = "s3cret-Pw-7f1c"
"""Every test user's password: distinctive, so leak tests can grep for it."""

NO_QRESYNC = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT LITERAL+ UIDPLUS MOVE NAMESPACE"
"""Post-login capabilities of a server without CONDSTORE/QRESYNC (the UID-diff path)."""
USERS = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _need(binary: str) -> str:
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if os.path.exists(p)), None
    )
    if path is None:
        msg = f"{binary} not installed (apt-get install -y --no-install-recommends dovecot-imapd)"
        if REQUIRE:
            pytest.fail(msg + " and KIZUNA_REQUIRE_SERVERS=1")
        pytest.skip(msg)
    return path


@dataclass
class Dovecot:
    """One running Dovecot; ``new_user()`` gives each test its own empty account."""

    root: Path
    conf: Path
    port: int
    tls_port: int
    ca_pem: Path
    proc: subprocess.Popen[bytes]
    uid: int
    gid: int
    free_users: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"

    def new_user(self) -> str:
        """An account nobody used yet (passwd-file is re-read at most once a second, so the
        accounts are written up front)."""
        return self.free_users.pop()

    def login(self, user: str, password: str = PASSWORD) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        conn.login(user, password)
        return conn

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_pem))

    def doveadm(self, *args: str) -> str:
        out = subprocess.run(
            [_need("doveadm"), "-c", str(self.conf), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return out.stdout

    def append(
        self,
        user: str,
        folder: str,
        message: bytes,
        flags: str = "",
        internaldate: datetime | None = None,
    ) -> None:
        """APPEND as a mail client would (``internaldate``: when the server got it)."""
        conn = self.login(user)
        try:
            conn.append(folder, f"({flags})" if flags else None, internaldate, message)
        finally:
            conn.logout()

    def kick(self, user: str) -> None:
        """End the user's sessions (the server sends BYE) and wait until they are gone."""
        self.doveadm("kick", user)
        deadline = time.monotonic() + 10
        while f"\n{user} " in self.doveadm("who") and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            # Sessions outlive the master process; end them first.
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self.doveadm("kick", "*")
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _dovecot_config(root: Path, port: int, tls_port: int, capability: str | None) -> str:
    is_root = os.geteuid() == 0
    user = "nobody" if is_root else pwd.getpwuid(os.geteuid()).pw_name
    cap = f"imap_capability = {capability}\n" if capability else ""
    return f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
default_internal_user = {user}
default_login_user = {user}
{"default_internal_group = nogroup" if is_root else ""}
first_valid_uid = 0
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_failure_delay = 0
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
{cap}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
# No auth penalty: tests log in with wrong passwords on purpose, and the penalty (up to
# 15 s per login from 127.0.0.1) would then stall every later test's login.
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
passdb {{
  driver = passwd-file
  args = {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
"""


def start_dovecot(capability: str | None = None) -> Dovecot:
    """Start a private Dovecot; ``capability`` trims what it advertises after login."""
    binary = _need("dovecot")
    import trustme

    root = Path(tempfile.mkdtemp(prefix="kizuna-dovecot-"))
    os.chmod(root, 0o755)
    for d in ("run", "state", "mail"):
        (root / d).mkdir()
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(str(root / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(root / "cert.pem"))
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    users = [f"u{i:04d}" for i in range(USERS)]
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        uid, gid = nobody.pw_uid, nobody.pw_gid
        os.chown(root / "mail", uid, gid)
    else:
        uid, gid = os.geteuid(), os.getegid()
    port, tls_port = free_port(), free_port()
    conf = root / "dovecot.conf"
    conf.write_text(_dovecot_config(root, port, tls_port, capability))
    (root / "passwd").write_text(
        "".join(f"{u}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{root}/mail/{u}::\n" for u in users)
    )
    proc = subprocess.Popen(
        [binary, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    server = Dovecot(root, conf, port, tls_port, root / "ca.pem", proc, uid, gid, users)
    probe = server.new_user()
    deadline = time.monotonic() + 20
    while True:
        try:
            server.login(probe).logout()
            return server
        except (OSError, imaplib.IMAP4.error):
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                server.stop()
                raise RuntimeError(f"dovecot did not start: {err}\n{log[-2000:]}") from None
            time.sleep(0.05)


@contextlib.contextmanager
def dovecot(capability: str | None = None) -> Iterator[Dovecot]:
    server = start_dovecot(capability)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@dataclass
class Radicale:
    """A running Radicale (auth none); ``new_calendar()`` makes an empty calendar."""

    root: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def new_calendar(self, name: str = "work") -> tuple[str, str]:
        """An empty calendar of a fresh user: ``(calendar_url, user)``.

        Plain HTTP, not the caldav client: its discovery costs ~1 s a calendar here."""
        user = f"u{uuid.uuid4().hex[:10]}"
        # An authenticated request makes Radicale create the user's principal collection.
        self._request(f"{self.url}{user}/", user, "PROPFIND", "", depth="0")
        url = f"{self.url}{user}/{name}/"
        assert self._request(url, user, "MKCALENDAR") in (200, 201)
        return url, user

    def _request(
        self, url: str, user: str, method: str, body: str | None = None, depth: str = ""
    ) -> int:
        import base64

        token = base64.b64encode(f"{user}:x".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
        if depth:
            headers["Depth"] = depth
        if body is not None:
            headers["Content-Type"] = "text/calendar; charset=utf-8"
        req = urllib.request.Request(
            url, data=body.encode() if body is not None else None, method=method, headers=headers
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)

    def put(self, calendar_url: str, user: str, name: str, ics: str) -> None:
        assert self._request(calendar_url + name, user, "PUT", ics) in (200, 201, 204)

    def delete(self, calendar_url: str, user: str, name: str) -> None:
        assert self._request(calendar_url + name, user, "DELETE") in (200, 204)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@contextlib.contextmanager
def radicale(users: dict[str, str] | None = None) -> Iterator[Radicale]:
    """A Radicale; with ``users`` (name → password) it asks for Basic auth (htpasswd)."""
    root = Path(tempfile.mkdtemp(prefix="kizuna-radicale-"))
    port = free_port()
    auth = ["--auth-type", "none"]
    if users:
        (root / "htpasswd").write_text("".join(f"{u}:{p}\n" for u, p in users.items()))
        auth = [
            "--auth-type",
            "htpasswd",
            "--auth-htpasswd-filename",
            str(root / "htpasswd"),
            "--auth-htpasswd-encryption",
            "plain",
            "--auth-delay",
            "0",
        ]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "radicale",
            "--server-hosts",
            f"127.0.0.1:{port}",
            "--storage-filesystem-folder",
            str(root / "collections"),
            *auth,
            "--web-type",
            "none",
            "--logging-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = Radicale(root, port, proc)
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                with urllib.request.urlopen(server.url, timeout=2):
                    break
            except urllib.error.HTTPError:
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"radicale did not start: {err}") from None
                time.sleep(0.05)
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def message(
    subject: str,
    *,
    sender: str = "tanaka@customer.co.jp",
    to: str = "sato@kizuna.example",
    msgid: str | None = None,
    date: str = "Mon, 16 Nov 2026 10:00:00 +0900",
    body: str = "お世話になっております。",
) -> bytes:
    """A small real-shaped RFC 5322 message (UTF-8 body, MIME-encoded subject)."""
    from email.header import Header

    mid = msgid or f"<{uuid.uuid4().hex}@customer.co.jp>"
    subj = Header(subject, "utf-8").encode()
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subj}\r\nDate: {date}\r\n"
        f"Message-ID: {mid}\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{body}\r\n"
    ).encode()


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[Dovecot]:
    """A Dovecot with CONDSTORE and QRESYNC (the default build)."""
    with dovecot() as server:
        yield server


@pytest.fixture(scope="session")
def dovecot_plain() -> Iterator[Dovecot]:
    """A Dovecot advertising neither CONDSTORE nor QRESYNC after login."""
    with dovecot(NO_QRESYNC) as server:
        yield server


@pytest.fixture(scope="session")
def radicale_server() -> Iterator[Radicale]:
    with radicale() as server:
        yield server
