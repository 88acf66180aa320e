"""IMAP mailboxes, read incrementally: new mail, flag changes and expunges, one folder a stream.

A folder's cursor is ``(uidvalidity, uidnext, highestmodseq)``. UIDs below ``uidnext`` are
stored; each run fetches UIDs from ``uidnext`` up, re-fetches messages whose flags changed since
``highestmodseq`` (CONDSTORE) and turns expunges into ``Page.deleted``: from ``VANISHED
(EARLIER)`` when the server has QRESYNC, else by diffing ``UID SEARCH ALL`` against the UID set
the cursor keeps (as compact ranges) for exactly that purpose. A first sync is the same loop
from ``uidnext = 1``, so a crash anywhere resumes after the last stored page.

A source id is ``folder:uidvalidity:uid``: it names the copy in this folder, so an expunge
deletes exactly that copy. The activity the mapping makes is keyed by the Message-ID, so the
same mail in INBOX, in Sent or in Gmail is still one activity. When UIDVALIDITY changes, the
folder is restarted inside the stream: the first page retires every id of the old UIDVALIDITY
(in the same transaction as the new cursor) and the folder is read again from UID 1.

Errors: ``BYE``, a dropped or timed-out connection and ``[UNAVAILABLE]``/``[LIMIT]`` are
``TransientError``; refused credentials are ``AuthError`` naming the account, never the
password.
"""

from __future__ import annotations

import imaplib
import logging
import re
import ssl
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic import SecretStr

from connectors.mail.imap_wire import (
    capabilities,
    check_ok,
    close_quietly,
    fetch_items,
    first_int,
    flags_of,
    format_uid_set,
    imap_date,
    parse_uid_set,
    quote_folder,
    response_text,
    uid_of,
)
from connectors.page import Cursor, Page, RawBad
from kizuna.errors import AuthError, ConfigError, FatalError, TransientError

log = logging.getLogger(__name__)

PAGE_SIZE = 200
Security = Literal["ssl", "starttls", "none"]
Connect = Callable[[], imaplib.IMAP4]


class ImapCursor(Cursor):
    """Where one folder stands. ``uids`` (compact ranges) is kept only without QRESYNC."""

    uidvalidity: int
    uidnext: int = 1
    highestmodseq: int = 0
    uids: str | None = None


@dataclass(frozen=True)
class ImapAccount:
    """How to reach and log in to one mailbox; ``password`` never leaves this object."""

    host: str
    username: str
    password: SecretStr
    port: int | None = None
    security: Security = "ssl"
    ssl_context: ssl.SSLContext | None = None
    timeout: float = 60.0

    @property
    def label(self) -> str:
        return f"{self.username}@{self.host}"


def open_client(account: ImapAccount) -> imaplib.IMAP4:
    """A logged-in connection (IMAPS, STARTTLS or plain), errors classified."""
    ctx = account.ssl_context or ssl.create_default_context()
    try:
        if account.security == "ssl":
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                account.host, account.port or 993, ssl_context=ctx, timeout=account.timeout
            )
        else:
            conn = imaplib.IMAP4(account.host, account.port or 143, timeout=account.timeout)
            if account.security == "starttls":
                conn.starttls(ctx)
    except ssl.SSLError as exc:
        raise FatalError(f"IMAP {account.label}: TLS failed ({exc.reason})") from None
    except (OSError, imaplib.IMAP4.abort) as exc:
        raise TransientError(f"IMAP {account.label}: cannot connect ({exc})") from None
    except imaplib.IMAP4.error as exc:
        raise FatalError(f"IMAP {account.label}: {response_text(exc)}") from None
    try:
        conn.login(account.username, account.password.get_secret_value())
    except imaplib.IMAP4.abort as exc:
        close_quietly(conn)
        raise TransientError(f"IMAP {account.label}: connection lost at login ({exc})") from None
    except imaplib.IMAP4.error as exc:
        close_quietly(conn)
        text = response_text(exc)
        if "UNAVAILABLE" in text:
            raise TransientError(f"IMAP {account.label}: server unavailable ({text})") from None
        raise AuthError(
            f"IMAP {account.label}: login refused ({text}); check the username and the "
            "password in the configured environment variable"
        ) from None
    except OSError as exc:
        close_quietly(conn)
        raise TransientError(f"IMAP {account.label}: connection lost at login ({exc})") from None
    return conn


def read_folder(
    connect: Connect,
    folder: str,
    cursor: ImapCursor | None,
    *,
    page_size: int = PAGE_SIZE,
    headers_only: bool = False,
    use_extensions: bool = True,
    since: date | None = None,
    label: str = "",
) -> Iterator[Page[ImapCursor]]:
    """Pages of raw messages of one folder since ``cursor``.

    ``use_extensions=False`` ignores CONDSTORE/QRESYNC even if advertised (a server whose
    implementation is broken, and the tests of the UID-diff path). ``since`` skips new mail
    the server dates before that day (a retention window), so its bodies are never fetched.
    """
    conn = connect()
    folder_reader = _Folder(conn, folder, page_size, headers_only, use_extensions, label)
    folder_reader.since = since
    try:
        yield from folder_reader.pages(cursor)
    except imaplib.IMAP4.abort as exc:
        raise TransientError(
            f"IMAP {label or folder}: connection lost ({response_text(exc)})"
        ) from None
    except (OSError, EOFError) as exc:
        raise TransientError(f"IMAP {label or folder}: connection lost ({exc})") from None
    except imaplib.IMAP4.error as exc:
        text = response_text(exc)
        if "UNAVAILABLE" in text or "LIMIT" in text or "INUSE" in text:
            raise TransientError(f"IMAP {label or folder}: {text}") from None
        raise FatalError(f"IMAP {label or folder}: {text}") from None
    finally:
        close_quietly(conn)


class _Folder:
    def __init__(
        self,
        conn: imaplib.IMAP4,
        folder: str,
        page_size: int,
        headers_only: bool,
        use_extensions: bool,
        label: str,
    ) -> None:
        self.conn = conn
        self.folder = folder
        self.page_size = page_size
        self.section = "BODY.PEEK[HEADER]" if headers_only else "BODY.PEEK[]"
        self.headers_only = headers_only
        caps = capabilities(conn)
        self.condstore = use_extensions and "CONDSTORE" in caps
        self.can_enable = "ENABLE" in caps
        self.qresync = use_extensions and "QRESYNC" in caps and self.can_enable
        self.label = label or folder
        self.since: date | None = None

    def pages(self, cursor: ImapCursor | None) -> Iterator[Page[ImapCursor]]:
        # ENABLE through xatom: imaplib's enable() checks the pre-login capability list.
        if self.qresync:
            check_ok(self.conn.xatom("ENABLE", "QRESYNC"))
        elif self.condstore and self.can_enable:
            check_ok(self.conn.xatom("ENABLE", "CONDSTORE"))
        validity, modseq = self._select()
        if cursor is not None and cursor.uidvalidity != validity:
            log.warning(
                "IMAP %s/%s: UIDVALIDITY changed %s -> %s; re-reading the folder",
                self.label,
                self.folder,
                cursor.uidvalidity,
                validity,
            )
            old = cursor
            cursor = ImapCursor(uidvalidity=validity, uids=None if self.qresync else "")
            yield Page(records=[], cursor=cursor, deleted=self._all_ids(old))
        if cursor is None:
            cursor = ImapCursor(uidvalidity=validity, uids=None if self.qresync else "")
        yield from self._changes(cursor, modseq)

    # -- steps ---------------------------------------------------------------------------
    def _select(self) -> tuple[int, int]:
        self.conn.untagged_responses.clear()
        typ, data = self.conn.select(quote_folder(self.folder), readonly=True)
        if typ != "OK":
            raise ConfigError(
                f"IMAP {self.label}: cannot open folder {self.folder!r} ({response_text(data)})",
                field="folders",
                fix="list existing folders in the mail client and use their names",
            )
        validity = first_int(self.conn.untagged_responses.get("UIDVALIDITY"))
        if validity is None:
            raise FatalError(f"IMAP {self.label}: server sent no UIDVALIDITY for {self.folder}")
        modseq = 0
        if self.condstore:
            ok = self.conn.untagged_responses.get("OK", [])
            for item in ok:
                if not isinstance(item, bytes):
                    continue
                m = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", item)
                if m:
                    modseq = int(m.group(1))
            if not modseq:
                self.condstore = self.qresync = False  # NOMODSEQ mailbox
        return validity, modseq

    def _changes(self, cursor: ImapCursor, modseq: int) -> Iterator[Page[ImapCursor]]:
        n = cursor.uidnext
        deleted: list[int] = []
        changed: list[int] = []
        known = None if cursor.uids is None else parse_uid_set(cursor.uids)
        if n > 1:
            if self.condstore and cursor.highestmodseq:
                changed, vanished = self._changed_since(n, cursor.highestmodseq)
                deleted.extend(vanished)
            # VANISHED covers only what changed since a modseq we stored; a cursor without one
            # (written before the server offered QRESYNC) is diffed once instead.
            if not (self.qresync and cursor.highestmodseq):
                present = {u for u in self._search("ALL") if u < n}
                before = known if known is not None else set(range(1, n))
                deleted = sorted(before - present)
                known = present
        elif not self.qresync:
            known = set()
        new_modseq = modseq if self.condstore else 0
        # Changes below uidnext first: the cursor may claim modseq only once they are stored.
        base = cursor.model_copy(
            update={"uids": None if self.qresync else format_uid_set(known or set())}
        )
        pending_deletes = [self._sid(cursor.uidvalidity, u) for u in deleted]
        gone = set(deleted)
        changed = [u for u in changed if u not in gone]
        for i in range(0, len(changed), self.page_size):
            part = changed[i : i + self.page_size]
            records, bad = self._fetch(part, cursor.uidvalidity)
            yield Page(records=records, bad=bad, cursor=base, deleted=pending_deletes)
            pending_deletes = []
        state = base.model_copy(update={"highestmodseq": new_modseq})
        criteria = f"UID {n}:*"
        if self.since is not None:
            criteria += f" SINCE {imap_date(self.since)}"
        new = [u for u in self._search(criteria) if u >= n]
        if not new:
            if pending_deletes or state != cursor:
                yield Page(records=[], cursor=state, deleted=pending_deletes)
            return
        have = None if self.qresync else known
        for i in range(0, len(new), self.page_size):
            part = new[i : i + self.page_size]
            records, bad = self._fetch(part, cursor.uidvalidity)
            if have is not None:
                have = have | set(part)
            state = state.model_copy(
                update={
                    "uidnext": part[-1] + 1,
                    "uids": None if have is None else format_uid_set(have),
                }
            )
            yield Page(records=records, bad=bad, cursor=state, deleted=pending_deletes)
            pending_deletes = []

    def _all_ids(self, old: ImapCursor) -> list[str]:
        uids: Iterable[int] = (
            parse_uid_set(old.uids) if old.uids is not None else range(1, old.uidnext)
        )
        return [self._sid(old.uidvalidity, u) for u in sorted(uids)]

    def _sid(self, validity: int, uid: int) -> str:
        return source_id(self.folder, validity, uid)

    def _search(self, criteria: str) -> list[int]:
        typ, data = self.conn.uid("SEARCH", criteria)
        check_ok((typ, data))
        out: list[int] = []
        for chunk in data:
            if isinstance(chunk, bytes):
                out.extend(int(x) for x in chunk.split() if x.isdigit())
        return sorted(set(out))

    def _changed_since(self, uidnext: int, modseq: int) -> tuple[list[int], list[int]]:
        mods = f"(CHANGEDSINCE {modseq}{' VANISHED' if self.qresync else ''})"
        self.conn.untagged_responses.pop("VANISHED", None)
        typ, data = self.conn.uid("FETCH", f"1:{uidnext - 1}", f"(UID FLAGS) {mods}")
        check_ok((typ, data))
        changed = sorted(
            {
                u
                for item in data
                if isinstance(item, bytes) and (u := uid_of(item)) is not None and u < uidnext
            }
        )
        vanished: set[int] = set()
        for v in self.conn.untagged_responses.pop("VANISHED", []) or []:
            text = v.decode() if isinstance(v, bytes) else str(v)
            text = text.replace("(EARLIER)", "").strip()
            vanished |= {u for u in parse_uid_set(text) if u < uidnext}
        return changed, sorted(vanished)

    def _fetch(self, uids: list[int], validity: int) -> tuple[list[dict[str, Any]], list[RawBad]]:
        items = "(UID FLAGS INTERNALDATE RFC822.SIZE " + self.section + ")"
        typ, data = self.conn.uid("FETCH", format_uid_set(set(uids)), items)
        check_ok((typ, data))
        wanted = set(uids)
        records: list[dict[str, Any]] = []
        got: set[int] = set()
        for head, body in fetch_items(data):
            uid = uid_of(head)
            if uid is None or uid not in wanted or body is None or uid in got:
                continue
            got.add(uid)
            m_date = re.search(rb'INTERNALDATE "([^"]+)"', head)
            records.append(
                {
                    "folder": self.folder,
                    "uidvalidity": validity,
                    "uid": uid,
                    "flags": flags_of(head),
                    "internaldate": m_date.group(1).decode() if m_date else None,
                    "headers_only": self.headers_only,
                    "message": body,
                }
            )
        bad = [
            RawBad(self._sid(validity, u), "the server returned no message for this UID")
            for u in sorted(wanted - got)
        ]
        # Expunged between SEARCH and FETCH: not bad, just gone. Ask again to tell them apart.
        if bad:
            still = set(self._search(f"UID {format_uid_set(wanted - got)}"))
            bad = [b for b in bad if int(str(b.source_id).rsplit(":", 1)[1]) in still]
        return records, bad


def source_id(folder: str, uidvalidity: int, uid: int) -> str:
    return f"{folder}:{uidvalidity}:{uid}"


def raw_source_id(raw: dict[str, Any]) -> str:
    return source_id(str(raw["folder"]), int(raw["uidvalidity"]), int(raw["uid"]))
