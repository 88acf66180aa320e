"""Mail files that used to stop a stream or land as junk (issue 16), through the engine on
SQLite and PostgreSQL: the stream completes, the bad file is quarantined with its path."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select

from flows.engine import run_stream
from flows.sources import registry
from flows.workspace import Company, Workspace
from warehouse import schema as t

HEAD = b"From: sato@client.co.jp\nTo: tanaka@ourco.co.jp\nSubject: s\n"
DATE = b"Date: Tue, 01 Oct 2024 10:00:00 +0900\n"
BODY = b"Content-Type: text/plain; charset=utf-8\n\nbody\n"


def _sync(tmp_path: Path, engine: Engine) -> None:
    ws = Workspace(
        company=Company(name="株式会社アワコ", domains=["ourco.co.jp"]),
        sources={"box": {"type": "mail", "path": "Maildir"}},
    ).model_copy(update={"path": tmp_path / "kizuna.yaml"})
    (spec,) = registry.streams(ws, "box")
    run_stream(engine, spec, "run")


def _maildir(tmp_path: Path, files: dict[str, bytes]) -> Path:
    root = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


def test_an_8bit_message_id_never_stops_the_stream(tmp_path: Path, engine: Engine) -> None:
    _maildir(
        tmp_path,
        {
            "cur/1700000000.M1P1.host,S=100:2,S": HEAD
            + DATE
            + b"Message-ID: <\xe3\x81\x82@client.co.jp>\n"
            + BODY,
            "cur/1700000001.M2P1.host,S=100:2,S": HEAD
            + b"Message-ID: <\xff\xfe-no-date@client.co.jp>\n"
            + BODY,
            "tmp/1700000002.M3P1.host": HEAD + DATE + b"Message-ID: <partial@x>\n" + BODY,
        },
    )
    _sync(tmp_path, engine)
    _sync(tmp_path, engine)
    with engine.connect() as conn:
        keys = [k for (k,) in conn.execute(select(t.Activity.key))]
        q = t.Quarantine
        entries = conn.execute(select(q.source_id, q.reason, q.path)).all()
    assert keys == ["mail:あ@client.co.jp"]
    ((sid, reason, path),) = entries
    assert sid == "1700000001.M2P1.host,S=100" and "no usable date" in reason  # the file
    assert path.endswith("Maildir/cur/1700000001.M2P1.host,S=100:2,S")


def test_a_header_block_cut_off_mid_from_is_quarantined(tmp_path: Path, engine: Engine) -> None:
    _maildir(
        tmp_path,
        {
            "new/1700000000.M1P1.host": DATE + b'Subject: cut\nMessage-ID: <cut@x>\nFrom: "Sato',
            "new/1700000001.M2P1.host": HEAD + DATE + b"Message-ID: <whole@x>\n" + BODY,
        },
    )
    _sync(tmp_path, engine)
    with engine.connect() as conn:
        keys = [k for (k,) in conn.execute(select(t.Activity.key))]
        ((reason,),) = conn.execute(select(t.Quarantine.reason)).all()
    assert keys == ["mail:whole@x"]
    assert "cut off" in reason
