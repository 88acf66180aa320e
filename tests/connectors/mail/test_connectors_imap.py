"""The IMAP connector against a real Dovecot: new mail, flags, expunges, UIDVALIDITY resets.

Each test gets its own fresh account on a session-wide server. The same scenarios run on a
server with CONDSTORE/QRESYNC and on one without (UID-set diff), because the two paths compute
changes and deletions differently.
"""

from __future__ import annotations

import imaplib
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.mail.imap import (
    ImapAccount,
    ImapCursor,
    open_client,
    raw_source_id,
    read_folder,
)
from connectors.mail.imap_wire import encode_mutf7, format_uid_set, parse_uid_set
from connectors.page import Page
from kizuna.errors import AuthError, TransientError
from tests.support.servers import NO_QRESYNC, PASSWORD, Dovecot, dovecot, message


def _connect(server: Dovecot, user: str) -> Callable[[], imaplib.IMAP4]:
    account = ImapAccount(
        host=server.host,
        port=server.port,
        username=user,
        password=SecretStr(PASSWORD),
        security="none",
    )
    return lambda: open_client(account)


@pytest.fixture(params=["qresync", "diff"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def box(mode: str, dovecot_server: Dovecot, dovecot_plain: Dovecot) -> tuple[Dovecot, str, bool]:
    """(server, user, use_extensions): the diff path runs on the server without them."""
    server = dovecot_server if mode == "qresync" else dovecot_plain
    return server, server.new_user(), True


def _sync(
    server: Dovecot, user: str, cursor: ImapCursor | None, folder: str = "INBOX", **kw: object
) -> tuple[list[Page[ImapCursor]], ImapCursor | None]:
    pages = list(read_folder(_connect(server, user), folder, cursor, **kw))  # type: ignore[arg-type]
    return pages, (pages[-1].cursor if pages else cursor)


def _ids(pages: list[Page[ImapCursor]]) -> list[str]:
    return [raw_source_id(r) for p in pages for r in p.records]


def _deleted(pages: list[Page[ImapCursor]]) -> list[str]:
    return [d for p in pages for d in p.deleted]


def test_first_sync_pages_new_mail_and_resumes_from_each_page(
    box: tuple[Dovecot, str, bool],
) -> None:
    server, user, _ = box
    for i in range(7):
        server.append(user, "INBOX", message(f"見積 {i}"))
    pages, cur = _sync(server, user, None, page_size=3)
    assert [len(p.records) for p in pages] == [3, 3, 1]
    assert cur is not None and cur.uidnext == 8
    raw = pages[0].records[0]
    assert raw["message"].startswith(b"From: tanaka@customer.co.jp")
    assert raw["flags"] == []
    # Resume from the first page's cursor: only what came after it.
    rest, cur2 = _sync(server, user, pages[0].cursor, page_size=3)
    assert _ids(rest) == _ids(pages)[3:]
    assert cur2 == cur
    # Nothing new: no records, and the cursor does not move backwards.
    again, cur3 = _sync(server, user, cur)
    assert _ids(again) == [] and _deleted(again) == []
    assert cur3 is not None and cur3.uidnext == 8


def test_new_mail_after_a_sync_is_read_alone(box: tuple[Dovecot, str, bool]) -> None:
    server, user, _ = box
    server.append(user, "INBOX", message("一通目"))
    _, cur = _sync(server, user, None)
    server.append(user, "INBOX", message("二通目", msgid="<second@customer.co.jp>"))
    pages, cur2 = _sync(server, user, cur)
    assert len(_ids(pages)) == 1
    assert b"<second@customer.co.jp>" in pages[-1].records[0]["message"]
    assert cur2 is not None and cur is not None and cur2.uidnext == cur.uidnext + 1


def test_expunge_becomes_a_deletion(box: tuple[Dovecot, str, bool]) -> None:
    server, user, _ = box
    for i in range(4):
        server.append(user, "INBOX", message(f"m{i}"))
    pages, cur = _sync(server, user, None)
    ids = _ids(pages)
    conn = server.login(user)
    conn.select("INBOX")
    conn.uid("STORE", "2,3", "+FLAGS.SILENT", r"(\Deleted)")
    conn.expunge()
    conn.logout()
    pages2, cur2 = _sync(server, user, cur)
    assert sorted(_deleted(pages2)) == sorted(ids[1:3])
    assert _ids(pages2) == []
    # Reported once: the next run has nothing to say.
    pages3, _ = _sync(server, user, cur2)
    assert _deleted(pages3) == [] and _ids(pages3) == []


def test_flag_change_refetches_the_message(dovecot_server: Dovecot) -> None:
    server = dovecot_server
    user = server.new_user()
    for i in range(3):
        server.append(user, "INBOX", message(f"m{i}"))
    _, cur = _sync(server, user, None)
    assert cur is not None and cur.highestmodseq > 0
    conn = server.login(user)
    conn.select("INBOX")
    conn.uid("STORE", "2", "+FLAGS.SILENT", r"(\Seen \Answered)")
    conn.logout()
    pages, cur2 = _sync(server, user, cur)
    assert len(_ids(pages)) == 1
    raw = pages[0].records[0]
    assert raw["uid"] == 2 and raw["flags"] == ["\\Answered", "\\Seen"]
    assert raw["message"].startswith(b"From:")
    assert cur2 is not None and cur2.highestmodseq > cur.highestmodseq


def test_without_condstore_flags_are_not_tracked_but_new_and_expunged_are(
    dovecot_plain: Dovecot,
) -> None:
    server = dovecot_plain
    user = server.new_user()
    for i in range(3):
        server.append(user, "INBOX", message(f"m{i}"))
    pages, cur = _sync(server, user, None)
    assert cur is not None and cur.uids == "1:3" and cur.highestmodseq == 0
    conn = server.login(user)
    conn.select("INBOX")
    conn.uid("STORE", "1", "+FLAGS.SILENT", r"(\Deleted)")
    conn.expunge()
    conn.logout()
    server.append(user, "INBOX", message("new"))
    pages2, cur2 = _sync(server, user, cur)
    assert _deleted(pages2) == [_ids(pages)[0]]
    assert [r["uid"] for p in pages2 for r in p.records] == [4]
    assert cur2 is not None and cur2.uids == "2:4"


def test_extensions_can_be_ignored_even_when_advertised(dovecot_server: Dovecot) -> None:
    server = dovecot_server
    user = server.new_user()
    for i in range(3):
        server.append(user, "INBOX", message(f"m{i}"))
    _, cur = _sync(server, user, None, use_extensions=False)
    assert cur is not None and cur.uids == "1:3"
    conn = server.login(user)
    conn.select("INBOX")
    conn.uid("STORE", "3", "+FLAGS.SILENT", r"(\Deleted)")
    conn.expunge()
    conn.logout()
    pages, _ = _sync(server, user, cur, use_extensions=False)
    assert _deleted(pages) == [f"INBOX:{cur.uidvalidity}:3"]


def test_uidvalidity_change_retires_old_ids_and_rereads_the_folder(
    box: tuple[Dovecot, str, bool],
) -> None:
    server, user, _ = box
    for i in range(3):
        server.append(user, "INBOX", message(f"m{i}", msgid=f"<m{i}@customer.co.jp>"))
    pages, cur = _sync(server, user, None, page_size=2)
    assert cur is not None
    old = _ids(pages)
    server.doveadm("mailbox", "update", "-u", user, "--uid-validity", "4242", "INBOX")
    pages2, cur2 = _sync(server, user, cur, page_size=2)
    assert pages2[0].records == [] and sorted(pages2[0].deleted) == sorted(old)
    assert pages2[0].cursor.uidvalidity == 4242 and pages2[0].cursor.uidnext == 1
    new = _ids(pages2)
    assert len(new) == 3 and all(s.startswith("INBOX:4242:") for s in new)
    # Same mails (same Message-IDs), so the mapping keeps them as the same activities.
    assert {p for pg in pages2 for r in pg.records for p in [r["message"]]} == {
        r["message"] for pg in pages for r in pg.records
    }
    assert cur2 is not None and cur2.uidvalidity == 4242


def test_several_folders_and_headers_only(dovecot_server: Dovecot) -> None:
    server = dovecot_server
    user = server.new_user()
    conn = server.login(user)
    conn.create("Sent")
    conn.create('"&kAFP4W4IMH8w4TD8MOs-"')  # 送信済みメール in modified UTF-7
    conn.logout()
    server.append(user, "Sent", message("返信", sender="sato@kizuna.example", to="a@b.co.jp"))
    conn = server.login(user)
    conn.append('"&kAFP4W4IMH8w4TD8MOs-"', None, None, message("和文フォルダ"))
    conn.logout()
    pages, _cur = _sync(server, user, None, folder="Sent", headers_only=True)
    raw = pages[0].records[0]
    assert raw["headers_only"] is True and raw["folder"] == "Sent"
    assert b"Subject:" in raw["message"] and "お世話".encode() not in raw["message"]
    jp, _ = _sync(server, user, None, folder="送信済みメール")
    assert len(_ids(jp)) == 1 and _ids(jp)[0].startswith("送信済みメール:")


def test_wrong_password_is_an_auth_error_naming_the_account_not_the_password(
    dovecot_server: Dovecot,
) -> None:
    user = dovecot_server.new_user()
    account = ImapAccount(
        host=dovecot_server.host,
        port=dovecot_server.port,
        username=user,
        password=SecretStr("wrong-" + PASSWORD),
        security="none",
    )
    with pytest.raises(AuthError) as info:
        open_client(account)
    assert user in str(info.value) and PASSWORD not in str(info.value)
    assert PASSWORD not in repr(account)


def test_tls_and_starttls(dovecot_server: Dovecot) -> None:
    user = dovecot_server.new_user()
    dovecot_server.append(user, "INBOX", message("tls"))
    for security, port in (("ssl", dovecot_server.tls_port), ("starttls", dovecot_server.port)):
        account = ImapAccount(
            host=dovecot_server.host,
            port=port,
            username=user,
            password=SecretStr(PASSWORD),
            security=security,  # type: ignore[arg-type]
            ssl_context=dovecot_server.ssl_context(),
        )
        pages = list(read_folder(lambda a=account: open_client(a), "INBOX", None))
        assert len(_ids(pages)) == 1


def test_bye_mid_sync_is_transient_and_the_rerun_resumes() -> None:
    with dovecot() as server:
        user = server.new_user()
        for i in range(4):
            server.append(user, "INBOX", message(f"m{i}"))
        reader = read_folder(_connect(server, user), "INBOX", None, page_size=2)
        first = next(reader)
        assert len(first.records) == 2
        server.kick(user)  # the server says BYE and drops the session
        with pytest.raises(TransientError):
            list(reader)
        rest, _ = _sync(server, user, first.cursor, page_size=2)
        assert [r["uid"] for p in rest for r in p.records] == [3, 4]
        server.stop()
        with pytest.raises(TransientError, match="cannot connect"):
            list(read_folder(_connect(server, user), "INBOX", first.cursor))


def test_dropped_connection_mid_sync_is_transient(dovecot_server: Dovecot) -> None:
    import socket

    user = dovecot_server.new_user()
    for i in range(4):
        dovecot_server.append(user, "INBOX", message(f"m{i}"))
    opened: list[imaplib.IMAP4] = []

    def connect() -> imaplib.IMAP4:
        opened.append(_connect(dovecot_server, user)())
        return opened[-1]

    reader = read_folder(connect, "INBOX", None, page_size=2)
    assert len(next(reader).records) == 2
    opened[0].sock.shutdown(socket.SHUT_RDWR)  # the network goes away under the client
    with pytest.raises(TransientError, match="connection lost"):
        list(reader)


def test_uid_sets_round_trip() -> None:
    assert format_uid_set({1, 2, 3, 7, 9, 10}) == "1:3,7,9:10"
    assert parse_uid_set("1:3,7,10:9") == {1, 2, 3, 7, 9, 10}
    assert format_uid_set(set()) == "" and parse_uid_set("") == set()
    assert encode_mutf7("送信済みメール") == "&kAFP4W4IMH8w4TD8MOs-"
    assert encode_mutf7("A&B") == "A&-B"


def test_no_qresync_capability_list_is_what_the_plain_server_sends(dovecot_plain: Dovecot) -> None:
    conn = dovecot_plain.login(dovecot_plain.new_user())
    _typ, data = conn.capability()
    conn.logout()
    assert b"QRESYNC" not in data[0] and data[0].decode() == NO_QRESYNC


def test_a_cursor_from_the_diff_path_is_diffed_once_when_qresync_appears(
    dovecot_server: Dovecot,
) -> None:
    server = dovecot_server
    user = server.new_user()
    for i in range(3):
        server.append(user, "INBOX", message(f"m{i}"))
    _, cur = _sync(server, user, None, use_extensions=False)
    assert cur is not None and cur.highestmodseq == 0
    conn = server.login(user)
    conn.select("INBOX")
    conn.uid("STORE", "2", "+FLAGS.SILENT", r"(\Deleted)")
    conn.expunge()
    conn.logout()
    pages, cur2 = _sync(server, user, cur)  # now with QRESYNC
    assert _deleted(pages) == [f"INBOX:{cur.uidvalidity}:2"]
    assert cur2 is not None and cur2.highestmodseq > 0 and cur2.uids is None


class _Refusing:
    """A logged-in connection whose server refuses SELECT with a response code."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.untagged_responses: dict[str, list[bytes]] = {}

    def capability(self) -> tuple[str, list[bytes]]:
        return "OK", [b"IMAP4rev1"]

    def select(self, mailbox: str, readonly: bool = False) -> tuple[str, list[bytes]]:
        raise imaplib.IMAP4.error(f"[{self.code}] try later".encode())

    def logout(self) -> tuple[str, list[bytes]]:
        return "BYE", [b""]


@pytest.mark.parametrize("code", ["UNAVAILABLE", "LIMIT", "INUSE"])
def test_server_busy_codes_are_transient(code: str) -> None:
    conn: Any = _Refusing(code)
    with pytest.raises(TransientError, match=code):
        list(read_folder(lambda: conn, "INBOX", None, label="sato@imap.example"))


def test_plaintext_password_only_to_this_machine() -> None:
    from flows.sources.imap import Config

    base = {"username": "sato", "password_env": "X_PW", "security": "none"}
    Config(host="127.0.0.1", **base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="clear text"):
        Config(host="imap.example.co.jp", **base)  # type: ignore[arg-type]
