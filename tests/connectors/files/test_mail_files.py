"""Reading mail exports from disk: mbox, Maildir, .eml folders, and their cursors."""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.files.mailfiles import MailFilesCursor, maildir_flags, read_messages, sha_of
from connectors.files.mbox_format import mbox_flags
from connectors.page import Page
from kizuna.errors import ConfigError
from mappings.mail.message import message_id_of


def msg(i: int, *, mid: bool = True, body: str = "") -> bytes:
    head = f"From: c{i}@client.co.jp\nTo: me@ourco.co.jp\nSubject: s{i}\n"
    head += "Date: Tue, 01 Oct 2024 10:00:00 +0900\n"
    if mid:
        head += f"Message-ID: <M{i}@client.co.jp>\n"
    return (head + "\n" + (body or f"body {i}\nFrom the start\n")).encode()


def drain(
    root: Path, cursor: MailFilesCursor | None = None, **kw: Any
) -> tuple[list[dict[str, Any]], list[Page[MailFilesCursor]]]:
    pages = list(read_messages(root, cursor, id_of=message_id_of, **kw))
    return [r for p in pages for r in p.records], pages


def last_cursor(
    pages: list[Page[MailFilesCursor]], before: MailFilesCursor | None = None
) -> MailFilesCursor:
    return pages[-1].cursor if pages else (before or MailFilesCursor())


def make_mbox(path: Path, items: list[bytes]) -> None:
    box = mailbox.mbox(path)
    try:
        for m in items:
            box.add(m)
        box.flush()
    finally:
        box.close()


# -- mbox ---------------------------------------------------------------------------------


def test_mbox_messages_ids_and_from_unquoting(tmp_path: Path) -> None:
    make_mbox(tmp_path / "in.mbox", [msg(1), msg(2, mid=False), msg(3)])
    recs, pages = drain(tmp_path / "in.mbox")
    assert [r["id"] for r in recs] == [
        "m1@client.co.jp",
        f"sha:{sha_of(msg(2, mid=False))}",
        "m3@client.co.jp",
    ]
    assert recs[0]["raw"] == msg(1)  # ">From the start" unquoted back
    assert recs[0]["sha"] == sha_of(msg(1))
    assert recs[0]["folder"] == "in"
    assert all(not p.snapshot_end for p in pages)


def test_mbox_status_flags() -> None:
    assert mbox_flags(b"Status: RO\nX-Status: AF\n\nbody") == "FRS"
    assert mbox_flags(b"Subject: x\n\nStatus: R\n") == ""


def test_unchanged_mbox_is_skipped_and_appended_mbox_reads_only_the_tail(tmp_path: Path) -> None:
    box = tmp_path / "in.mbox"
    make_mbox(box, [msg(i, body="x" * 3000 + f"\nend {i}\n") for i in range(5)])
    recs, pages = drain(box)
    assert len(recs) == 5
    cur = last_cursor(pages)
    assert drain(box, cur)[1] == []  # nothing read, no page, no cursor write

    # Corrupt the old head in place (same size, well before the tail digest), then append:
    # the reader must not look at the old bytes at all.
    data = bytearray(box.read_bytes())
    data[10:2000] = b"#" * 1990
    box.write_bytes(bytes(data))
    make_mbox(box, [msg(9)])
    recs, pages = drain(box, cur)
    assert [r["id"] for r in recs] == ["m9@client.co.jp"]
    assert int(recs[0]["path"].split("#")[1]) == cur.files["in.mbox"].offset
    assert pages[-1].cursor.files["in.mbox"].offset == box.stat().st_size


def test_rewritten_mbox_is_read_again_whole(tmp_path: Path) -> None:
    box = tmp_path / "in.mbox"
    make_mbox(box, [msg(1), msg(2), msg(3)])
    _, pages = drain(box)
    cur = last_cursor(pages)
    # Compacted by a mail client: message 2 deleted, file shorter and rewritten.
    box.unlink()
    make_mbox(box, [msg(1), msg(3), msg(4)])
    recs, _ = drain(box, cur)
    assert [r["id"] for r in recs] == ["m1@client.co.jp", "m3@client.co.jp", "m4@client.co.jp"]


def test_mbox_resumes_mid_file_after_a_committed_page(tmp_path: Path) -> None:
    box = tmp_path / "in.mbox"
    make_mbox(box, [msg(i) for i in range(7)])
    gen: Iterator[Page[MailFilesCursor]] = read_messages(
        box, None, id_of=message_id_of, page_size=3
    )
    first = next(gen)
    gen.close()  # crash after the first page was committed
    assert [r["id"] for r in first.records] == [f"m{i}@client.co.jp" for i in range(3)]
    recs, _ = drain(box, first.cursor, page_size=3)
    assert [r["id"] for r in recs] == [f"m{i}@client.co.jp" for i in range(3, 7)]


# -- Maildir ------------------------------------------------------------------------------


def make_maildir(root: Path) -> mailbox.Maildir:
    return mailbox.Maildir(root, create=True)


def test_maildir_cur_new_flags_and_subfolders(tmp_path: Path) -> None:
    md = make_maildir(tmp_path / "Mail")
    k1 = md.add(msg(1))
    m2 = mailbox.MaildirMessage(msg(2))
    m2.set_subdir("cur")
    m2.set_flags("RS")
    md.add(m2)
    sent = md.add_folder("Sent")
    sent.add(msg(3))
    (tmp_path / "Mail" / "tmp" / "half-written").write_bytes(b"partial")
    recs, pages = drain(tmp_path / "Mail")
    got = {(r["id"], r["folder"], r["flags"]) for r in recs}
    assert got == {
        ("m1@client.co.jp", "INBOX", ""),
        ("m2@client.co.jp", "INBOX", "RS"),
        ("m3@client.co.jp", "Sent", ""),
    }
    cur = last_cursor(pages)
    assert drain(tmp_path / "Mail", cur)[1] == []

    # A new delivery and a flag change (a rename, which updates ctime) are both picked up.
    md.add(msg(4))
    m1 = md.get_message(k1)
    m1.set_subdir("cur")
    m1.add_flag("S")
    md[k1] = m1
    recs, pages = drain(tmp_path / "Mail", cur)
    assert {(r["id"], r["flags"]) for r in recs} == {
        ("m4@client.co.jp", ""),
        ("m1@client.co.jp", "S"),
    }
    assert drain(tmp_path / "Mail", last_cursor(pages, cur))[1] == []


def test_maildir_flag_parsing() -> None:
    assert maildir_flags("1700000000.M1P2.host:2,SR") == "RS"
    assert maildir_flags("1700000000.M1P2.host,S=1234:2,Fa") == "F"
    assert maildir_flags("1700000000.M1P2.host") == ""


def test_folder_moved_in_with_old_timestamps_is_read(tmp_path: Path) -> None:
    root = tmp_path / "export"
    root.mkdir()
    (root / "a.eml").write_bytes(msg(1))
    _, pages = drain(root)
    cur = last_cursor(pages)
    old = tmp_path / "old"
    old.mkdir()
    (old / "b.eml").write_bytes(msg(2))
    os.utime(old / "b.eml", ns=(1_000_000_000, 1_000_000_000))
    (old).rename(root / "old")
    recs, _ = drain(root, cur)
    assert [r["id"] for r in recs] == ["m2@client.co.jp"]


def test_same_timestamp_files_are_not_missed(tmp_path: Path) -> None:
    """Coarse file system clocks: a file with the watermark's exact stamp but a new name."""
    root = tmp_path / "eml"
    root.mkdir()
    (root / "a.eml").write_bytes(msg(1))
    _, pages = drain(root)
    cur = last_cursor(pages)
    mark = cur.dirs[""]
    (root / "b.eml").write_bytes(msg(2))
    # Force b's mtime and ctime to the watermark: ctime cannot be set, so lower the mark instead.
    stamp_b = max((root / "b.eml").stat().st_mtime_ns, (root / "b.eml").stat().st_ctime_ns)
    forged = cur.model_copy(update={"dirs": {"": mark.model_copy(update={"stamp": stamp_b})}})
    recs, _ = drain(root, forged)
    assert [r["id"] for r in recs] == ["m2@client.co.jp"]


def test_folder_pass_resumes_after_the_last_committed_name(tmp_path: Path) -> None:
    root = tmp_path / "eml"
    root.mkdir()
    for i in range(5):
        (root / f"{i}.eml").write_bytes(msg(i))
    gen = read_messages(root, None, id_of=message_id_of, page_size=2)
    first = next(gen)
    gen.close()
    assert first.cursor.dirs[""].pending is not None
    recs, pages = drain(root, first.cursor, page_size=2)
    assert [r["id"] for r in recs] == [f"m{i}@client.co.jp" for i in range(2, 5)]
    done = last_cursor(pages).dirs[""]
    assert done.pending is None
    assert drain(root, last_cursor(pages))[1] == []


# -- .eml folders, auto-detection, errors -------------------------------------------------------


def test_auto_walks_eml_mbox_and_maildirs(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.eml").write_bytes(msg(1))
    (tmp_path / "a" / "deep").mkdir()
    (tmp_path / "a" / "deep" / "two.EML").write_bytes(msg(2))
    (tmp_path / "a" / "notes.txt").write_bytes(msg(9))  # not mail in auto mode
    make_mbox(tmp_path / "archive.mbox", [msg(3)])
    make_mbox(tmp_path / "Inbox", [msg(4)])  # Thunderbird: mbox without an extension
    (tmp_path / "Inbox.msf").write_bytes(b"// index")
    make_maildir(tmp_path / "md").add(msg(5))
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.eml").write_bytes(msg(8))
    recs, _ = drain(tmp_path)
    assert sorted(r["id"] for r in recs) == [f"m{i}@client.co.jp" for i in range(1, 6)]
    folders = {r["id"]: r["folder"] for r in recs}
    assert folders["m2@client.co.jp"] == "a/deep"
    assert folders["m4@client.co.jp"] == "Inbox"
    assert folders["m5@client.co.jp"] == "md"


def test_eml_format_reads_every_file_and_single_file_paths(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_bytes(msg(1))
    (tmp_path / "y").write_bytes(msg(2))
    recs, _ = drain(tmp_path, fmt="eml")
    assert sorted(r["id"] for r in recs) == ["m1@client.co.jp", "m2@client.co.jp"]
    recs, pages = drain(tmp_path / "x.txt")
    assert [r["id"] for r in recs] == ["m1@client.co.jp"]
    assert drain(tmp_path / "x.txt", last_cursor(pages))[1] == []
    (tmp_path / "x.txt").write_bytes(msg(1, body="edited"))
    assert len(drain(tmp_path / "x.txt", last_cursor(pages))[0]) == 1


def test_missing_path_and_wrong_format_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mail path not found"):
        drain(tmp_path / "nope")
    with pytest.raises(ConfigError, match="not a Maildir"):
        drain(tmp_path, fmt="maildir")


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root reads all")
def test_unreadable_file_is_raw_bad(tmp_path: Path) -> None:
    (tmp_path / "ok.eml").write_bytes(msg(1))
    locked = tmp_path / "locked.eml"
    locked.write_bytes(msg(2))
    locked.chmod(0)
    try:
        pages = list(read_messages(tmp_path, None))
    finally:
        locked.chmod(0o600)
    bad = [b for p in pages for b in p.bad]
    assert [b.source_id for b in bad] == ["locked.eml"]
    assert "cannot read" in bad[0].reason


def test_dangling_link_is_raw_bad_and_a_folder_named_mbox_is_walked(tmp_path: Path) -> None:
    """Runs as root too: a message file that cannot be opened gives RawBad, not a crash."""
    (tmp_path / "ok.eml").write_bytes(msg(1))
    (tmp_path / "broken.mbox").mkdir()  # a folder where an mbox should be: walked, not read
    os.symlink(tmp_path / "missing-target.eml", tmp_path / "dangling.eml")
    pages = list(read_messages(tmp_path, None, id_of=message_id_of))
    recs = [r for p in pages for r in p.records]
    bad = [b for p in pages for b in p.bad]
    assert [r["id"] for r in recs] == ["m1@client.co.jp"]
    assert [b.source_id for b in bad] == ["dangling.eml"]


def test_pages_are_bounded_by_count_and_bytes(tmp_path: Path) -> None:
    make_mbox(tmp_path / "big.mbox", [msg(i, body="y" * 5000) for i in range(10)])
    pages = list(read_messages(tmp_path / "big.mbox", None, page_size=4))
    assert [len(p.records) for p in pages] == [4, 4, 2]
    pages = list(read_messages(tmp_path / "big.mbox", None, page_bytes=12_000))
    assert max(len(p.records) for p in pages) <= 3


@pytest.mark.parametrize(
    ("original", "appended", "tail_only"),
    [
        # mailbox/procmail style: the blank line after each message.
        (b"From a\nMessage-ID: <1@x>\n\nbody\n\n", b"From b\nMessage-ID: <2@x>\n\nnew\n\n", True),
        # Writers that put the blank line before each new message.
        (b"From a\nMessage-ID: <1@x>\n\nbody\n", b"\nFrom b\nMessage-ID: <2@x>\n\nnew\n", True),
        # No blank line at all: "From b" is body text of message 1 to a full reader too.
        (b"From a\nMessage-ID: <1@x>\n\nbody\n", b"From b\nMessage-ID: <2@x>\n\nnew\n", False),
    ],
)
def test_tail_read_agrees_with_a_full_read(
    tmp_path: Path, original: bytes, appended: bytes, tail_only: bool
) -> None:
    box = tmp_path / "a.mbox"
    box.write_bytes(original)
    first, pages = drain(box)
    with box.open("ab") as f:
        f.write(appended)
    tail, _ = drain(box, last_cursor(pages))
    full, _ = drain(box)
    if tail_only:
        assert [r["raw"] for r in first + tail] == [r["raw"] for r in full]
        assert [r["id"] for r in tail] == ["2@x"]
    else:
        assert [r["raw"] for r in tail] == [r["raw"] for r in full]
        assert len(full) == 1


def test_cursor_forgets_files_and_folders_that_are_gone(tmp_path: Path) -> None:
    make_mbox(tmp_path / "old.mbox", [msg(1)])
    (tmp_path / "eml").mkdir()
    (tmp_path / "eml" / "a.eml").write_bytes(msg(2))
    _, pages = drain(tmp_path)
    cur = last_cursor(pages)
    assert set(cur.files) == {"old.mbox"} and set(cur.dirs) == {"eml"}
    (tmp_path / "old.mbox").unlink()
    (tmp_path / "eml" / "a.eml").unlink()
    (tmp_path / "eml").rmdir()
    recs, pages = drain(tmp_path, cur)
    assert recs == []
    assert last_cursor(pages) == MailFilesCursor()
