"""Mappings you can see and change: discover, unmapped headers, re-apply, reset, --full."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from flows.cli.summary import RUN_COLUMNS
from tests.flows.cli.support import kizuna, workspace
from tests.support.push.push_seed import consent
from warehouse import schema as t
from warehouse.activation.consent import history

CSV = (
    "顧客ID,会社名,氏名,メールアドレス,担当者,都道府県,住所,ランク\n"
    "C1,株式会社いろは,田中 太郎,taro@iroha.jp,sato@ours.co.jp,東京都,千代田区丸の内1-1,A\n"
    "C2,有限会社ほへと,鈴木 花子,hanako@hoheto.jp,sato@ours.co.jp,大阪府,北区梅田2-2,B\n"
)


def _source(**over: object) -> dict[str, object]:
    return {"customers": {"type": "spreadsheet", "path": "customers.csv", **over}}


def test_discover_shows_where_each_header_goes(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "customers.csv").write_bytes(CSV.encode("cp932"))
    ws = workspace(
        tmp_path, engine, monkeypatch, sources=_source(columns={"住所": "organization.address"})
    )
    out = kizuna("sources", "discover", "customers", "-w", str(ws))
    assert out.exit_code == 0, out.output
    lines = {ln.split("│")[1].strip(): ln for ln in out.output.splitlines() if ln.count("│") >= 3}
    assert "read as cp932 (detected), comma-separated" in out.output
    assert "owner.email" in lines["担当者"] and "built-in" in lines["担当者"]
    assert "organization.address" in lines["都道府県"]
    assert "configured" in lines["住所"]
    assert "not recognised" in lines["ランク"] and "unmapped" in lines["ランク"]
    assert "1 header(s) not recognised" in out.output


def test_a_changed_mapping_reapplies_and_reset_keeps_lineage_and_consent(
    prefect_harness: None, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "customers.csv").write_bytes(CSV.encode("cp932"))
    ws = workspace(tmp_path, engine, monkeypatch, sources=_source())
    out = kizuna("sync", "-w", str(ws))
    assert out.exit_code == 0, out.output
    assert "customers/rows: unmapped headers (kept as attributes): ランク" in out.output
    with engine.connect() as conn:
        org = conn.execute(
            select(t.Organization.address).where(t.Organization.name == "株式会社いろは")
        ).scalar_one()
        assert org == "東京都千代田区丸の内1-1"
        staff = conn.execute(select(func.count()).select_from(t.StaffUser)).scalar_one()
        assert staff == 1  # 担当者 is our rep, not a contact
        assert conn.execute(select(t.Person.title)).scalars().all() == [None, None]

    # Same file, new column map: the rows are re-applied on the next sync.
    ws = workspace(
        tmp_path, engine, monkeypatch, sources=_source(columns={"ランク": "person.title"})
    )
    out = kizuna("sync", "-w", str(ws))
    assert out.exit_code == 0, out.output
    assert "unmapped headers" not in out.output
    with engine.connect() as conn:
        assert sorted(conn.execute(select(t.Person.title)).scalars()) == ["A", "B"]
        people = list(conn.execute(select(t.Person.id).order_by(t.Person.id)).scalars())
        lineage = conn.execute(select(func.count()).select_from(t.SourceRecord)).scalar_one()

    consent(engine, people[0], "opted_in")
    out = kizuna("sources", "reset", "customers", "-w", str(ws))
    assert out.exit_code == 0, out.output
    assert "customers/rows: cursor cleared" in out.output and "will be re-applied" in out.output
    out = kizuna("sync", "--full", "-w", str(ws))
    assert out.exit_code == 0, out.output
    assert "Full sync: 1 stream(s)" in out.output
    row = next(ln for ln in out.output.splitlines() if "customers/rows" in ln and "│" in ln)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    updated = RUN_COLUMNS.index("records updated")
    assert cells[1] == "completed" and int(cells[updated]) > 0  # every row re-applied
    with engine.connect() as conn:
        assert list(conn.execute(select(t.Person.id).order_by(t.Person.id)).scalars()) == people
        assert (
            conn.execute(select(func.count()).select_from(t.SourceRecord)).scalar_one() == lineage
        )
        assert [h[1] for h in history(conn, people[0])] == ["opted_in"]

    out = kizuna("sources", "reset", "customers", "nosuch", "-w", str(ws))
    assert out.exit_code == 2 and "has no stream 'nosuch'" in out.output
