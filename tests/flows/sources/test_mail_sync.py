"""Mail files end to end through the engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import mailbox
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from flows.engine import StreamSpec, run_stream
from flows.sources import registry
from flows.workspace import Company, Workspace
from kizuna.errors import ConfigError
from warehouse import schema as t

DATE = "Date: Tue, 01 Oct 2024 10:00:00 +0900\n"


def mail(mid: str, frm: str, to: str, subject: str, *, extra: str = "", date: str = DATE) -> bytes:
    head = f"From: {frm}\nTo: {to}\nSubject: {subject}\n{date}Message-ID: <{mid}>\n{extra}"
    return (
        head + "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n本文です\n"
    ).encode()


def workspace(tmp_path: Path, **source: Any) -> Workspace:
    ws = Workspace(
        company=Company(name="株式会社アワコ", domains=["ourco.co.jp"]),
        sources={"mailbox": {"type": "mail", "path": "mail", **source}},
    )
    return ws.model_copy(update={"path": tmp_path / "kizuna.yaml"})


def spec_for(ws: Workspace) -> StreamSpec:
    (spec,) = registry.streams(ws, "mailbox")
    return spec


def count(engine: Engine, model: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def seed(tmp_path: Path) -> Path:
    root = tmp_path / "mail"
    root.mkdir()
    box = mailbox.mbox(root / "inbox.mbox")
    box.add(mail("a1@client.co.jp", "佐藤 <sato@client.co.jp>", "tanaka@ourco.co.jp", "見積"))
    box.add(
        mail(
            "a2@ourco.co.jp",
            "田中 <Tanaka@OURCO.co.jp>",
            "SATO@Client.co.jp",
            "Re: 見積",
            extra="In-Reply-To: <a1@client.co.jp>\nReferences: <a1@client.co.jp>\n",
        )
    )
    box.add(mail("broken@client.co.jp", "x@client.co.jp", "tanaka@ourco.co.jp", "no date", date=""))
    box.flush()
    box.close()
    md = mailbox.Maildir(root / "Maildir", create=True)
    md.add(
        mail(
            "a3@client.co.jp",
            "sato@client.co.jp",
            "tanaka@ourco.co.jp",
            "Re: Re: 見積",
            extra="References: <a1@client.co.jp> <a2@ourco.co.jp>\nCc: suzuki@other.example.net\n",
        )
    )
    md.add(mail("i1@ourco.co.jp", "tanaka@ourco.co.jp", "boss@ourco.co.jp", "社内"))
    return root


def test_mail_files_sync_links_people_threads_and_quarantines(
    engine: Engine, tmp_path: Path
) -> None:
    root = seed(tmp_path)
    spec = spec_for(workspace(tmp_path))
    res = run_stream(engine, spec, "run-1")
    assert res.read == 5
    assert res.stats.quarantined == 1
    assert count(engine, t.Activity) == 4
    # Same address in two messages (different case) → one person; staff are not people.
    assert count(engine, t.PersonEmail) == 2  # sato@client.co.jp, suzuki@other.example.net
    assert (
        count(
            engine, t.StaffUser, t.StaffUser.email.in_(["tanaka@ourco.co.jp", "boss@ourco.co.jp"])
        )
        == 2
    )
    with engine.connect() as conn:
        sato = conn.execute(
            select(t.PersonEmail.person_id).where(t.PersonEmail.email == "sato@client.co.jp")
        ).scalar_one()
        linked = (
            conn.execute(
                select(t.ActivityParticipant.person_id).where(
                    t.ActivityParticipant.email == "sato@client.co.jp"
                )
            )
            .scalars()
            .all()
        )
        assert linked and set(linked) == {sato}
        acts = {a.key: a for a in conn.execute(select(t.table(t.Activity))).all()}
        q = conn.execute(select(t.table(t.Quarantine))).one()
    assert q.reason.startswith("no usable date")
    assert q.source_id == "inbox.mbox#broken@client.co.jp"  # the file and the message in it
    thread = "mail:a1@client.co.jp"
    assert {k for k, a in acts.items() if a.thread_key == thread} == {
        "mail:a1@client.co.jp",
        "mail:a2@ourco.co.jp",
        "mail:a3@client.co.jp",
    }
    assert acts["mail:a1@client.co.jp"].direction == "inbound"
    assert acts["mail:a2@ourco.co.jp"].direction == "outbound"
    assert acts["mail:i1@ourco.co.jp"].direction == "internal"
    assert acts["mail:a1@client.co.jp"].snippet == "本文です"

    # Unchanged files: nothing read, nothing written (not even the cursor).
    with engine.connect() as conn:
        before = conn.execute(select(t.table(t.SyncState))).one()
    res2 = run_stream(engine, spec, "run-2")
    assert (res2.read, res2.pages, res2.stats.inserted, res2.stats.updated) == (0, 0, 0, 0)
    with engine.connect() as conn:
        assert conn.execute(select(t.table(t.SyncState))).one() == before
    assert count(engine, t.Quarantine) == 1

    # A forgotten cursor re-reads every file; the digests match, so still nothing is written.
    with engine.begin() as conn:
        conn.execute(t.table(t.SyncState).update().values(cursor=None))
    res3 = run_stream(engine, spec, "run-3")
    assert res3.read == 5
    assert res3.unchanged == 4
    assert (res3.stats.inserted, res3.stats.updated) == (0, 0)

    # An appended message is the only thing read next time.
    box = mailbox.mbox(root / "inbox.mbox")
    box.add(mail("a4@client.co.jp", "sato@client.co.jp", "tanaka@ourco.co.jp", "追加"))
    box.flush()
    box.close()
    res4 = run_stream(engine, spec, "run-4")
    assert res4.read == 1
    assert count(engine, t.Activity) == 5
    assert count(engine, t.PersonEmail) == 2


def test_exclude_internal_and_headers_only(engine: Engine, tmp_path: Path) -> None:
    seed(tmp_path)
    spec = spec_for(workspace(tmp_path, exclude_internal=True, headers_only=True, format="auto"))
    run_stream(engine, spec, "run-1")
    with engine.connect() as conn:
        keys = set(conn.execute(select(t.Activity.key)).scalars())
        snippets = set(conn.execute(select(t.Activity.snippet)).scalars())
    assert "mail:i1@ourco.co.jp" not in keys
    assert "mail:a1@client.co.jp" in keys
    assert snippets == {None}


def test_missing_path_names_the_workspace_field(engine: Engine, tmp_path: Path) -> None:
    spec = spec_for(workspace(tmp_path))
    with pytest.raises(ConfigError) as err:
        run_stream(engine, spec, "run-1")
    assert err.value.field == "sources.mailbox.path"
    assert err.value.file.endswith("kizuna.yaml")
    with engine.connect() as conn:
        assert conn.execute(select(t.SyncRun.status)).scalar_one() == "failed"


def test_a_flag_change_rename_is_read_but_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    """Only the message digest is hashed: a new path or flags alone is not a change."""
    root = seed(tmp_path)
    spec = spec_for(workspace(tmp_path))
    assert spec.hash_fields == ("sha",)
    run_stream(engine, spec, "run-1")
    md = mailbox.Maildir(root / "Maildir", create=False)
    key = next(iter(md.keys()))
    m = md.get_message(key)
    m.set_subdir("cur")
    m.add_flag("S")
    md[key] = m
    res = run_stream(engine, spec, "run-2")
    assert res.read == 1
    assert res.unchanged == 1
    assert (res.stats.inserted, res.stats.updated) == (0, 0)


def test_bad_mail_config_names_field_and_fix(tmp_path: Path) -> None:
    ws = workspace(tmp_path, format="pst")
    with pytest.raises(ConfigError) as err:
        registry.source_config(ws, "mailbox")
    assert err.value.field == "sources.mailbox.format"
    assert "use one of the allowed values" in str(err.value)
