"""CPython's ``test_email`` messages as a Dovecot Maildir, through ``kizuna sync``, ``kizuna
export activities`` and ``kizuna quarantine --json`` (issue 16): the stream never fails, every
file either lands (as exactly one source of one activity) or is quarantined with its path and
reason, and the counts are exact — messages, quarantined files by reason, activities by kind,
contact activities."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from flows.cli.main import app
from tests.support.raw_mail import CORPUS
from warehouse import schema as t
from warehouse.records import CONTACT_KINDS

runner = CliRunner()
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="CPython test corpus not installed")


def _maildir(tmp_path: Path) -> dict[str, str]:
    """Every corpus message under a Dovecot name; a half-delivered copy in tmp/."""
    root = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    names: dict[str, str] = {}
    for i, src in enumerate(sorted(CORPUS.glob("msg_*.txt"))):
        data = src.read_bytes()
        name = f"{1_600_000_000 + i}.M{i}P4242.mx1,S={len(data)},W={len(data) + 40}:2,S"
        (root / "cur" / name).write_bytes(data)
        names[name] = src.name
    (root / "tmp" / "1700000000.M1P1.mx1").write_bytes(CORPUS.joinpath("msg_01.txt").read_bytes())
    return names


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_cpython_corpus_through_the_cli(prefect_harness: None, tmp_path: Path) -> None:
    names = _maildir(tmp_path)
    ws = tmp_path / "kizuna.yaml"
    ws.write_text(
        yaml.safe_dump(
            {
                "company": {"name": "Python", "domains": ["python.org"]},
                "warehouse": {"url": "sqlite:///wh.db"},
                "sources": {"corpus": {"type": "mail", "path": "Maildir"}},
            }
        ),
        encoding="utf-8",
    )
    for _ in range(2):
        out = runner.invoke(app, ["sync", "-w", str(ws)])
        assert out.exit_code == 0, out.output
    with create_engine(f"sqlite:///{tmp_path / 'wh.db'}").connect() as conn:
        runs = conn.execute(select(t.SyncRun.status)).scalars().all()
    assert runs and set(runs) == {"completed"}  # zero stream failures, first run and rerun

    listed = runner.invoke(app, ["quarantine", "--json", "-w", str(ws)])
    assert listed.exit_code == 0, listed.output
    bad = {Path(q["path"]).name: q["reason"] for q in _lines(listed.stdout)}
    assert len(bad) == 18  # one entry per file, however often it is synced
    reasons = Counter(reason.split(":", 1)[0] for reason in bad.values())
    assert reasons == {"no usable date": 17, "no header fields": 1}
    assert names[next(n for n, r in bad.items() if r.startswith("no header"))] == "msg_19.txt"

    exported = runner.invoke(app, ["export", "activities", "-w", str(ws)])
    assert exported.exit_code == 0, exported.output
    acts = _lines(exported.stdout)
    landed = [Path(s["path"]).name for a in acts for s in a["sources"]]
    # Every file is exactly one source or one quarantine entry; tmp/ is never read.
    assert len(landed) == len(set(landed)) == 30
    assert set(landed) | set(bad) == set(names)
    assert not set(landed) & set(bad)
    # 30 files, 25 messages: 5 copies of one message and 2 of another are one activity each.
    assert len(acts) == 25
    copies = sorted(len(a["sources"]) for a in acts if len(a["sources"]) > 1)
    assert copies == [2, 5]
    kinds = Counter((a["kind"], a["timeline"]) for a in acts)
    assert kinds == {("email", True): 22, ("bounce", False): 3}
    contact = [a for a in acts if a["timeline"] and a["kind"] in CONTACT_KINDS]
    assert len(contact) == 22
    dsn = next(a for a in acts if a["kind"] == "bounce" and a["attributes"].get("bounced"))
    assert dsn["attributes"]["bounced"][0]["status"].startswith("5.")
