"""Keyless exports land whole (issue: a quarter of the rows never landed).

Two departments' exports of one Japanese client base, built from the generated set in
``bench.identity.identity_data``: one Excel "CSV (コンマ区切り)" in cp932, one "CSV UTF-8" with a BOM,
no ID column, blank and repeated addresses (a shared 営業部 mailbox, the same person twice),
and 法人番号 cells Excel turned into ``7.00001E+12``. Every data row becomes a record; only the
bad cells are reported; a re-sorted file is unchanged; the crosswalk gives the same ids after
rebuilding the warehouse from shuffled files.
"""

from __future__ import annotations

import csv
import io
import json
import random
import zlib
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from bench.identity.identity_data import japanese
from flows import config
from flows.cli.main import app
from flows.engine import run_stream
from flows.sources import registry
from flows.workspace import Workspace
from warehouse import records as r
from warehouse import schema as t
from warehouse.db import open_warehouse
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.resolve import resolve_full

HEADER = [
    "会社名",
    "氏名",
    "フリガナ",
    "メールアドレス",
    "電話番号",
    "部署",
    "役職",
    "住所",
    "法人番号",
]
runner = CliRunner()


def corporate_number(base: int) -> str:
    """A valid 法人番号: the check digit (first) over a 12-digit base (IDENTITY.md)."""
    digits = f"{base:012d}"
    total = sum(int(d) * (1 if n % 2 else 2) for n, d in enumerate(reversed(digits), 1))
    return f"{9 - total % 9}{digits}"


def _row(p: r.Person, i: int) -> list[str]:
    org = p.organization
    corp = ""
    if org is not None and org.domain:
        corp = corporate_number(zlib.crc32(org.domain.encode())) if i % 5 else "7.00001E+12"
    return [
        org.name if org and org.name else "",
        f"{p.family_name or ''}\u3000{p.given_name or ''}".strip(),
        f"{p.family_name_kana or ''} {p.given_name_kana or ''}".strip(),
        "" if i % 7 == 3 else (p.emails[0] if p.emails else ""),
        p.phones[0] if p.phones else "",
        p.department or "",
        p.title or "",
        str(p.attributes.get("address", "")),
        corp,
    ]


def exports(seed: int = 3) -> tuple[list[list[str]], list[list[str]]]:
    data = japanese(80, seed=seed)
    a = [_row(p, i) for i, p in enumerate([*data.pages["crm"], *data.pages["cards"]])]
    b = [_row(p, i) for i, p in enumerate([*data.pages["mail"], *data.pages["crm2"]])]
    # A shared 営業部 mailbox on two colleagues' rows, and the same person's row twice.
    domain = a[0][3].partition("@")[2] or "example.co.jp"
    a[1][3] = a[2][3] = f"eigyo@{domain}"
    a.append(list(a[0]))
    return [x for x in a if any(x)], [x for x in b if any(x)]


def people_in(rows: list[list[str]]) -> int:
    """Rows with a name or an address: each is a contact record (the rest, companies)."""
    return sum(1 for x in rows if x[1] or x[3])


def write(path: Path, rows: list[list[str]], encoding: str) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([HEADER, *rows])
    # Excel writes what cp932 cannot hold (𠮷) as "?".
    path.write_bytes(buf.getvalue().encode(encoding, errors="replace"))


def workspace(root: Path, url: str) -> Path:
    data: dict[str, Any] = {
        "company": {"name": "株式会社テスト", "domains": ["kizuna-demo.co.jp"]},
        "warehouse": {"url": url},
        "sources": {
            "sales": {"type": "spreadsheet", "path": "sales.csv"},
            "support": {"type": "spreadsheet", "path": "support.csv"},
        },
    }
    p = root / "kizuna.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return p


def sync(engine: Engine, ws: Workspace) -> dict[str, Any]:
    out = {}
    for name in ws.sources:
        for spec in registry.streams(ws, name):
            out[name] = run_stream(engine, spec, f"run-{name}")
    return out


def _person_rows(engine: Engine, connector: str) -> int:
    sr = t.SourceRecord
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    sr.connector == connector, sr.entity == "person", sr.deleted_at.is_(None)
                )
            ).scalar_one()
        )


def test_two_keyless_exports_land_whole_and_resorting_changes_nothing(tmp_path: Path) -> None:
    a, b = exports()
    write(tmp_path / "sales.csv", a, "cp932")
    write(tmp_path / "support.csv", b, "utf-8-sig")
    ws_file = workspace(tmp_path, f"sqlite:///{tmp_path / 'wh.db'}")
    ws = config.load(ws_file)
    engine = open_warehouse(ws.warehouse_url)
    res = sync(engine, ws)
    assert res["sales"].stats.quarantined == 0 and res["support"].stats.quarantined == 0
    assert _person_rows(engine, "sales") == people_in(a) > 80  # repeats included
    assert _person_rows(engine, "support") == people_in(b) > 5
    mangled = sum(1 for row in [*a, *b] if row[8] == "7.00001E+12")
    assert mangled > 0
    with engine.connect() as conn:
        q = t.Quarantine
        reasons = conn.execute(select(q.reason, q.payload).where(q.resolved_at.is_(None))).all()
        # The team mailbox is each of its rows' own record, never one at write time (the
        # generator may put the same 営業部 address on rows of its own as well).
        pe = t.PersonEmail
        team = a[1][3]
        sharing = conn.execute(select(func.count()).where(pe.email == team)).scalar_one()
    assert sharing == sum(1 for row in [*a, *b] if row[3] == team) >= 2
    cells = [x for x in reasons if x.reason.startswith("cell 法人番号")]
    assert len(cells) == mangled and all(x.payload == "7.00001E+12" for x in cells)
    assert all(x.reason.startswith("cell ") for x in reasons)  # no row refused whole

    random.Random(1).shuffle(a)
    write(tmp_path / "sales.csv", a, "cp932")
    again = sync(engine, ws)["sales"]
    assert again.read == len(a)
    assert (again.stats.inserted, again.stats.updated, again.stats.deleted) == (0, 0, 0)
    engine.dispose()


def _crosswalk(ws_file: Path) -> dict[tuple[str, str], tuple[str, str]]:
    out = runner.invoke(app, ["export", "crosswalk", "-f", "jsonl", "-w", str(ws_file)])
    assert out.exit_code == 0, out.output
    lines = [json.loads(x) for x in out.output.splitlines() if x.startswith("{")]
    assert all(x["file"] in ("sales.csv", "support.csv") and x["row"] >= 1 for x in lines)
    return {(x["connector"], x["source_id"]): (x["person_id"], x["organization_id"]) for x in lines}


def test_crosswalk_ids_survive_a_rebuild_from_shuffled_files(tmp_path: Path) -> None:
    a, b = exports(seed=5)
    found = []
    for n, order in enumerate((0, 1)):
        root = tmp_path / f"w{n}"
        root.mkdir()
        if order:
            random.Random(9).shuffle(a)
            random.Random(9).shuffle(b)
        write(root / "sales.csv", a, "cp932")
        write(root / "support.csv", b, "utf-8-sig")
        ws_file = workspace(root, f"sqlite:///{root / 'wh.db'}")
        ws = config.load(ws_file)
        engine = open_warehouse(ws.warehouse_url)
        if order:  # the other department's file first this time
            ws = ws.model_copy(update={"sources": dict(reversed(list(ws.sources.items())))})
        sync(engine, ws)
        resolve_full(engine, MatchSettings())
        engine.dispose()
        found.append(_crosswalk(ws_file))
    assert len(found[0]) == len(a) + len(b)  # one line per record, the repeated row twice
    assert found[0] == found[1]
    assert len({p for p, _ in found[0].values()}) < len(found[0])  # some rows did link


def _customers(ws_file: Path) -> str:
    out = runner.invoke(app, ["export", "customers", "-f", "csv", "-w", str(ws_file)])
    assert out.exit_code == 0, out.output
    return str(out.output)


def test_golden_records_do_not_depend_on_the_order_rows_were_written(tmp_path: Path) -> None:
    """Survivorship's "most recent" must not follow row order: the same files, rows shuffled
    and read in small pages (so a row lands on another page, written at another moment and
    with another row id), export the same customers byte for byte."""
    a, b = exports(seed=7)
    # The same person's row twice with different titles: only a write-order-free tie-break
    # can pick the same one from both orders.
    a.append([*a[0][:6], "部長", *a[0][7:]])
    outputs = []
    for n in range(3):
        root = tmp_path / f"w{n}"
        root.mkdir()
        if n:
            random.Random(n).shuffle(a)
            random.Random(n + 10).shuffle(b)
        write(root / "sales.csv", a, "cp932")
        write(root / "support.csv", b, "utf-8-sig")
        ws_file = workspace(root, f"sqlite:///{root / 'wh.db'}")
        raw = yaml.safe_load(ws_file.read_text(encoding="utf-8"))
        for src in raw["sources"].values():
            src["page_size"] = 7
        ws_file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        ws = config.load(ws_file)
        engine = open_warehouse(ws.warehouse_url)
        sync(engine, ws)  # sales, then support: the same order of stream runs each time
        resolve_full(engine, MatchSettings())
        engine.dispose()
        outputs.append(_customers(ws_file))
    assert outputs[0].count("\n") > 50
    assert outputs[1] == outputs[0] and outputs[2] == outputs[0]
