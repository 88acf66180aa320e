"""``kizuna sources discover`` on a Singer tap (its own ``--discover`` catalog) and on a dlt
source (its resources, hints and first records): every stream, whether a sync reads it, each
field and where it maps, read without syncing and without showing a secret."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli.main import app
from tests.flows.sources.taps.support import (
    TAP_SECRET,
    dlt_section,
    people,
    require_dlt,
    singer_section,
    write_lines,
    write_workspace,
)

runner = CliRunner()


def _rows(output: str) -> dict[str, str]:
    """Table rows by their first cell (the field)."""
    return {ln.split("│")[1].strip(): ln for ln in output.splitlines() if ln.count("│") >= 3}


def _discover(ws: Path, source: str) -> str:
    out = runner.invoke(app, ["sources", "discover", source, "-w", str(ws)], env={"COLUMNS": "250"})
    assert out.exit_code == 0, out.output
    return out.output


def test_singer_discover_lists_the_catalog_selection_and_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIZUNA_TEST_TAP_KEY", TAP_SECRET)
    write_lines(tmp_path / "people.jsonl", people(3))
    tap = singer_section(tmp_path)
    tap["streams"]["people"]["columns"]["tier"] = "attributes.rank"
    tap["streams"]["orders"] = {"columns": {"total": "deal.amount"}}
    out = _discover(write_workspace(tmp_path, {"tap": tap}), "tap")

    assert "tap/people — tap stream, key id; read by a sync (streams.people)" in out
    assert "tap/audit — tap stream, key n; not read: add streams.audit to sources.tap" in out
    assert "tap/orders — listed under streams: but not in the tap's catalog" in out
    rows = _rows(out)
    assert "person.email" in rows["contact.email"] and "configured" in rows["contact.email"]
    assert "organization.name" in rows["company.name"]
    assert "attributes.contact.phones (not recognised)" in rows["contact.phones"]
    assert "attributes.rank" in rows["tier"] and "configured" in rows["tier"]
    assert "id" in rows and "n" in rows  # the audit stream's one property is listed too
    assert TAP_SECRET not in out

    # A catalog file that leaves the people stream out: discover says a sync gets nothing.
    catalog = {
        "streams": [
            {
                "tap_stream_id": "people",
                "schema": {"properties": {"id": {}, "name": {}, "tier": {}}},
                "metadata": [
                    {"breadcrumb": [], "metadata": {"selected": False}},
                    {"breadcrumb": ["properties", "tier"], "metadata": {"selected": False}},
                ],
            }
        ]
    }
    (tmp_path / "catalog.json").write_text(json.dumps(catalog), encoding="utf-8")
    tap["catalog"] = "catalog.json"
    out = _discover(write_workspace(tmp_path, {"tap": tap}), "tap")
    assert "not selected in the catalog file (never sent)" in out
    assert "properties not selected in the catalog: tier" in out
    assert "tier" not in _rows(out)


def test_singer_discover_failure_is_one_line_without_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_lines(tmp_path / "people.jsonl", people(1))
    monkeypatch.setenv("KIZUNA_TEST_TAP_KEY", "bad")
    out = runner.invoke(
        app,
        [
            "sources",
            "discover",
            "tap",
            "-w",
            str(write_workspace(tmp_path, {"tap": singer_section(tmp_path)})),
        ],
        env={"COLUMNS": "250"},
    )
    assert out.exit_code != 0
    assert "authentication failed" in out.output and "check the tap's config" in out.output


def test_dlt_discover_lists_resources_hints_fields_and_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _sqlite_template: Path
) -> None:
    require_dlt()
    from tests.support.dlt_people import EXPECTED_TOKEN

    monkeypatch.setenv("KIZUNA_TEST_DLT_TOKEN", EXPECTED_TOKEN)
    rows = people(30)
    rows[1]["contact"]["mobile"] = "090-1234-5678"  # only in the second record
    write_lines(tmp_path / "people.jsonl", rows)
    ws = write_workspace(tmp_path, {"shop": dlt_section(tmp_path)})
    out = _discover(ws, "shop")

    assert (
        "shop/people — dlt resource, key id, incremental on updated; 20 record(s) sampled; "
        "read by a sync (resources.people)" in " ".join(out.split())
    )
    assert "shop/audit — dlt resource, key n; 1 record(s) sampled; not read" in " ".join(
        out.split()
    )
    table = _rows(out)
    assert "person.email" in table["contact.email"] and "configured" in table["contact.email"]
    assert "organization.name" in table["company.name"]
    assert "unmapped" in table["contact.mobile"]  # a field only the sample's 2nd record has
    assert "unmapped" in table["updated"]
    assert EXPECTED_TOKEN not in out

    # Discover read nothing into the warehouse and moved no cursor: a sync still reads all.
    from flows.config import load
    from flows.engine import run_stream
    from flows.sources import registry
    from warehouse.db import make_engine

    shutil.copyfile(_sqlite_template, tmp_path / "wh.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'wh.db'}")
    assert run_stream(engine, registry.streams(load(ws), "shop")[0], "r").read == 30
    engine.dispose()


def test_dlt_discover_masks_the_secret_in_a_source_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_dlt()
    from tests.support.dlt_people import EXPECTED_TOKEN

    monkeypatch.setenv("KIZUNA_TEST_DLT_TOKEN", EXPECTED_TOKEN)
    write_lines(tmp_path / "people.jsonl", people(8))
    ws = write_workspace(tmp_path, {"shop": dlt_section(tmp_path, leak=True)})
    out = _discover(ws, "shop")
    assert "5 record(s) sampled (stopped: PermissionError: GET" in out
    assert "token=****" in out and EXPECTED_TOKEN not in out


def test_check_names_missing_secrets_and_taps_without_running_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.cli.check import source_checks
    from flows.config import load

    write_lines(tmp_path / "people.jsonl", people(1))
    monkeypatch.delenv("KIZUNA_TEST_TAP_KEY", raising=False)
    missing = {**singer_section(tmp_path), "command": ["tap-nosuch-kizuna"]}
    sources = {"tap": singer_section(tmp_path), "gone": missing, "shop": dlt_section(tmp_path)}
    ws = load(write_workspace(tmp_path, sources))

    def lines(name: str) -> list[str]:
        return [c.line().plain for c in source_checks(ws, name)]

    tap = lines("tap")
    assert any(
        ln.startswith("✗ source tap secret") and "KIZUNA_TEST_TAP_KEY" in ln for ln in tap
    ), tap
    monkeypatch.setenv("KIZUNA_TEST_TAP_KEY", TAP_SECRET)
    monkeypatch.setenv("KIZUNA_TEST_DLT_TOKEN", "x" * 12)
    tap = lines("tap")
    assert all(ln.startswith("✓") for ln in tap), tap
    assert "streams people (kizuna sources discover tap)" in tap[-1]
    gone = lines("gone")[-1]
    assert gone.startswith("✗") and "'tap-nosuch-kizuna' is not installed" in gone
    assert "Fix: install it" in gone
    require_dlt()
    shop = lines("shop")
    assert all(ln.startswith("✓") for ln in shop), shop
    assert "tests.support.dlt_people:people_file importable; resources people" in shop[-1]
    assert TAP_SECRET not in " ".join(tap + shop)
