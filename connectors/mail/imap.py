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

import contextlib
import imaplib
import logging
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic import SecretStr

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
        raise FatalError(f"IMAP {account.label}: {_text(exc)}") from None
    try:
        conn.login(account.username, account.password.get_secret_value())
    except imaplib.IMAP4.abort as exc:
        _close(conn)
        raise TransientError(f"IMAP {account.label}: connection lost at login ({exc})") from None
    except imaplib.IMAP4.error as exc:
        _close(conn)
        text = _text(exc)
        if "UNAVAILABLE" in text:
            raise TransientError(f"IMAP {account.label}: server unavailable ({text})") from None
        raise AuthError(
            f"IMAP {account.label}: login refused ({text}); check the username and the "
            "password in the configured environment variable"
        ) from None
    except OSError as exc:
        _close(conn)
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
        raise TransientError(f"IMAP {label or folder}: connection lost ({_text(exc)})") from None
    except (OSError, EOFError) as exc:
        raise TransientError(f"IMAP {label or folder}: connection lost ({exc})") from None
    except imaplib.IMAP4.error as exc:
        text = _text(exc)
        if "UNAVAILABLE" in text or "LIMIT" in text or "INUSE" in text:
            raise TransientError(f"IMAP {label or folder}: {text}") from None
        raise FatalError(f"IMAP {label or folder}: {text}") from None
    finally:
        _close(conn)


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
        caps = _capabilities(conn)
        self.condstore = use_extensions and "CONDSTORE" in caps
        self.can_enable = "ENABLE" in caps
        self.qresync = use_extensions and "QRESYNC" in caps and self.can_enable
        self.label = label or folder
        self.since: date | None = None

    def pages(self, cursor: ImapCursor | None) -> Iterator[Page[ImapCursor]]:
        # ENABLE through xatom: imaplib's enable() checks the pre-login capability list.
        if self.qresync:
            _check(self.conn.xatom("ENABLE", "QRESYNC"))
        elif self.condstore and self.can_enable:
            _check(self.conn.xatom("ENABLE", "CONDSTORE"))
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
        typ, data = self.conn.select(_quote(self.folder), readonly=True)
        if typ != "OK":
            raise ConfigError(
                f"IMAP {self.label}: cannot open folder {self.folder!r} ({_text(data)})",
                field="folders",
                fix="list existing folders in the mail client and use their names",
            )
        validity = _first_int(self.conn.untagged_responses.get("UIDVALIDITY"))
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
            criteria += f" SINCE {_imap_date(self.since)}"
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
        _check((typ, data))
        out: list[int] = []
        for chunk in data:
            if isinstance(chunk, bytes):
                out.extend(int(x) for x in chunk.split() if x.isdigit())
        return sorted(set(out))

    def _changed_since(self, uidnext: int, modseq: int) -> tuple[list[int], list[int]]:
        mods = f"(CHANGEDSINCE {modseq}{' VANISHED' if self.qresync else ''})"
        self.conn.untagged_responses.pop("VANISHED", None)
        typ, data = self.conn.uid("FETCH", f"1:{uidnext - 1}", f"(UID FLAGS) {mods}")
        _check((typ, data))
        changed = sorted(
            {
                u
                for item in data
                if isinstance(item, bytes) and (u := _uid_of(item)) is not None and u < uidnext
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
        _check((typ, data))
        wanted = set(uids)
        records: list[dict[str, Any]] = []
        got: set[int] = set()
        for head, body in _fetch_items(data):
            uid = _uid_of(head)
            if uid is None or uid not in wanted or body is None or uid in got:
                continue
            got.add(uid)
            m_date = re.search(rb'INTERNALDATE "([^"]+)"', head)
            records.append(
                {
                    "folder": self.folder,
                    "uidvalidity": validity,
                    "uid": uid,
                    "flags": _flags(head),
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


# -- protocol helpers --------------------------------------------------------------------
def _capabilities(conn: imaplib.IMAP4) -> set[str]:
    """Post-login capabilities: CONDSTORE/QRESYNC are often announced only after LOGIN."""
    typ, data = conn.capability()
    caps: set[str] = set()
    if typ == "OK":
        for chunk in data:
            if isinstance(chunk, bytes):
                caps |= {c.upper() for c in chunk.decode(errors="replace").split()}
    return caps


def _check(result: tuple[str, Any]) -> None:
    typ, data = result
    if typ != "OK":
        raise imaplib.IMAP4.error(_text(data))


def _text(obj: Any) -> str:
    if isinstance(obj, BaseException):
        obj = obj.args[0] if obj.args else str(obj)
    if isinstance(obj, list):
        obj = b" ".join(x for x in obj if isinstance(x, bytes))
    if isinstance(obj, bytes):
        return obj.decode(errors="replace")
    return str(obj)


def _close(conn: imaplib.IMAP4) -> None:
    with contextlib.suppress(imaplib.IMAP4.error, OSError, EOFError, socket.timeout):
        conn.logout()


def _imap_date(d: date) -> str:
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    return f"{d.day}-{months[d.month - 1]}-{d.year}"


def _first_int(values: list[Any] | None) -> int | None:
    for v in values or []:
        if isinstance(v, bytes) and v.strip().isdigit():
            return int(v)
    return None


def _uid_of(head: bytes) -> int | None:
    m = re.search(rb"\bUID (\d+)", head)
    return int(m.group(1)) if m else None


def _flags(head: bytes) -> list[str]:
    m = re.search(rb"FLAGS \(([^)]*)\)", head)
    # \Recent belongs to the session, not the message: it would make every fetch look new.
    flags = m.group(1).decode(errors="replace").split() if m else []
    return sorted(f for f in flags if f.lower() != "\\recent")


def _fetch_items(data: list[Any]) -> Iterator[tuple[bytes, bytes | None]]:
    """(metadata, literal) per FETCH response; items after the literal join the metadata."""
    head: bytes | None = None
    body: bytes | None = None
    for item in data:
        if isinstance(item, tuple):
            if head is not None:
                yield head, body
            head, body = item[0], item[1]
        elif isinstance(item, bytes):
            if re.match(rb"\d+ \(", item):
                if head is not None:
                    yield head, body
                head, body = item, None
            elif head is not None:
                head += b" " + item
    if head is not None:
        yield head, body


def parse_uid_set(text: str) -> set[int]:
    out: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if ":" in part:
            a, b = part.split(":", 1)
            lo, hi = sorted((int(a), int(b)))
            out.update(range(lo, hi + 1))
        else:
            out.add(int(part))
    return out


def format_uid_set(uids: set[int]) -> str:
    """``1:3,7,9:12`` — compact and valid as an IMAP sequence set."""
    parts: list[str] = []
    run: list[int] = []
    for u in sorted(uids):
        if run and u == run[-1] + 1:
            run.append(u)
            continue
        if run:
            parts.append(f"{run[0]}:{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [u]
    if run:
        parts.append(f"{run[0]}:{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


def _quote(folder: str) -> str:
    """A folder name as an IMAP quoted string, non-ASCII in modified UTF-7 (RFC 3501 5.1.3)."""
    name = encode_mutf7(folder)
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_mutf7(text: str) -> str:
    import base64

    out: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            b64 = base64.b64encode("".join(buf).encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + b64.replace("/", ",") + "-")
            buf.clear()

    for ch in text:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)
