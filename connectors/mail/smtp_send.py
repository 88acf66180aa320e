"""Sending over SMTP with an injected ``smtplib`` client.

One connection is kept for a batch and reopened once if the server drops it before DATA (after
DATA the message may have been queued: ``SendInDoubt``, never a silent resend). SMTP replies
are classified by what the caller does next: 4xx → ``TransientError`` (leave the send pending,
retry later), 5xx on a recipient → ``BadRecord`` (this address cannot receive; mark it
failed). SMTP itself cannot say whether a message went out before a crash, so ``was_sent``
asks an optional hook (e.g. a search of the Sent folder over IMAP by Message-ID) and answers
None ("cannot tell") without one.
"""

from __future__ import annotations

import contextlib
import imaplib
import smtplib
import ssl
from collections.abc import Callable
from email.utils import getaddresses, parseaddr

from pydantic import BaseModel, ConfigDict, SecretStr

from connectors.channel import Outgoing
from kizuna.errors import AuthError, BadRecord, SendInDoubt, TransientError

SentCheck = Callable[[str], bool | None]


class SmtpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = 587
    security: str = "starttls"  # starttls | ssl | none
    username: str | None = None
    password: SecretStr | None = None
    timeout: float = 30.0

    def connect(self) -> smtplib.SMTP:
        """A logged-in client; the factory the channel calls (tests pass their own)."""
        try:
            if self.security == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
            if self.username and self.password is not None:
                client.login(self.username, self.password.get_secret_value())
        except smtplib.SMTPAuthenticationError:
            raise AuthError(f"SMTP login refused for {self.username} at {self.host}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientError(
                f"cannot reach SMTP server {self.host}:{self.port}: {exc}"
            ) from None
        return client


class SmtpChannel:
    def __init__(
        self,
        connect: Callable[[], smtplib.SMTP],
        *,
        name: str = "smtp",
        sent_check: SentCheck | None = None,
    ) -> None:
        self._connect = connect
        self._client: smtplib.SMTP | None = None
        self._sent_check = sent_check
        self.name = name

    def _session(self) -> smtplib.SMTP:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def send(self, item: Outgoing) -> None:
        """Hand one message to the server; retried only while nothing can have been delivered.

        A dropped connection during the envelope (MAIL FROM, RCPT TO) is retried once on a
        new connection: the server has no message yet. Once DATA has started, a dropped
        connection or a lost reply leaves the message in doubt (the server may have queued
        it and lost only its "250"), so ``SendInDoubt`` is raised and nothing is resent here.
        """
        sender = item.sender or _from_address(item.data)
        for attempt in (1, 2):
            client = self._session()
            try:
                self._envelope(client, sender, item)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self._client = None
                if attempt == 2:
                    raise TransientError(f"SMTP connection failed before DATA: {exc}") from None
                continue
            break
        try:
            code, msg = client.data(item.data)
        except smtplib.SMTPResponseException as exc:  # a definite refusal: nothing was queued
            self._reset(client)
            raise _classify(exc.smtp_code, exc.smtp_error, item.to_address) from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._client = None
            raise SendInDoubt(
                f"SMTP connection to {item.to_address}'s server broke after DATA ({exc}); the "
                "message may have been delivered"
            ) from None
        if code != 250:  # pragma: no cover - smtplib raises SMTPDataError for these
            raise _classify(code, msg, item.to_address)

    @staticmethod
    def _envelope(client: smtplib.SMTP, sender: str, item: Outgoing) -> None:
        """MAIL FROM and RCPT TO, as ``sendmail`` would, raising on a refusal."""
        client.ehlo_or_helo_if_needed()
        options = (
            [f"size={len(item.data)}"] if client.does_esmtp and client.has_extn("size") else []
        )
        code, msg = client.mail(sender, options)
        if code != 250:
            SmtpChannel._reset(client)
            if code == 421:
                client.close()
                raise smtplib.SMTPServerDisconnected(f"{code} {msg!r}")
            raise _classify(code, msg, item.to_address)
        code, msg = client.rcpt(item.to_address)
        if code not in (250, 251):
            SmtpChannel._reset(client)
            if code == 421:
                client.close()
                raise smtplib.SMTPServerDisconnected(f"{code} {msg!r}")
            raise _classify(code, msg, item.to_address)

    @staticmethod
    def _reset(client: smtplib.SMTP) -> None:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.rset()

    def was_sent(self, message_id: str) -> bool | None:
        return self._sent_check(message_id) if self._sent_check else None

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._client.quit()
            self._client = None


def imap_sent_check(connect: Callable[[], imaplib.IMAP4], mailbox: str = "Sent") -> SentCheck:
    """Ask an IMAP Sent folder for a Message-ID: the in-doubt question SMTP cannot answer.

    Works where the provider files what was submitted (Gmail, Microsoft 365) or a copy was
    appended there. Any failure to ask is "cannot tell" (None), never "not sent".
    """

    def check(message_id: str) -> bool | None:
        try:
            conn = connect()
        except (OSError, imaplib.IMAP4.error):
            return None
        try:
            typ, _ = conn.select(_quoted(mailbox), readonly=True)
            if typ != "OK":
                return None
            typ, data = conn.uid("SEARCH", "HEADER", "Message-ID", _quoted(message_id))
            if typ != "OK":
                return None
            return bool(data and data[0] and data[0].split())
        except (OSError, imaplib.IMAP4.error):
            return None
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                conn.logout()

    return check


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _classify(code: int, msg: bytes | str, rcpt: str) -> Exception:
    text = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else msg
    if 400 <= code < 500:
        return TransientError(f"SMTP {code} for {rcpt}: {text}")
    return BadRecord(f"SMTP {code} for {rcpt}: {text}")


def _from_address(data: bytes) -> str:
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("ascii", "replace")
    for line in head.replace("\r\n", "\n").replace("\n ", " ").split("\n"):
        if line.lower().startswith("from:"):
            found = getaddresses([line[5:]])
            if found and found[0][1]:
                return found[0][1]
    return parseaddr("")[1]
