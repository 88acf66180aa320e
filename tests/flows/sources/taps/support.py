"""What the tap tests share: the dlt guard, the small real tap, and workspace files for both
source types over the same people (a JSON-lines file each extractor reads)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

TAP = Path(__file__).resolve().parents[3] / "support" / "taps" / "tap_people.py"
TAP_SECRET = "sk-live-7c0ffee-singer"
COMPANY = {"name": "株式会社サンプル", "domains": ["own.example"]}


def require_dlt() -> None:
    """dlt is in the test extra: missing, it fails where servers are required (CI), else skips."""
    try:
        import dlt  # noqa: F401
    except ImportError:
        msg = "dlt is not installed (it is in the test extra: pip install -e '.[test]')"
        if os.environ.get("KIZUNA_REQUIRE_SERVERS") == "1":
            pytest.fail(msg + " and KIZUNA_REQUIRE_SERVERS=1", pytrace=False)
        pytest.skip(msg, allow_module_level=True)


def people(n: int, *, bad_every: int = 0, keyless_at: int = 0) -> list[dict[str, Any]]:
    """``n`` people with nested contact fields; every ``bad_every``-th has no usable address
    (the mapping quarantines it) and the ``keyless_at``-th has no id."""
    out: list[dict[str, Any]] = []
    for i in range(1, n + 1):
        p: dict[str, Any] = {
            "id": i,
            "updated": f"2026-01-01T00:00:{i:02d}",
            "name": f"顧客 {i:03d}",
            "contact": {"email": f"p{i}@c{i % 5}.example"},
            "company": {"name": f"株式会社{i % 5}"},
        }
        if bad_every and i % bad_every == 0:
            p["contact"]["email"] = "not-an-address"
        if i == keyless_at:
            del p["id"]
        out.append(p)
    return out


def write_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )


COLUMNS = {"name": "person.full_name", "contact.email": "person.email"}
COLUMNS_ORG = {**COLUMNS, "company.name": "organization.name"}


def singer_section(tmp_path: Path, **tap: Any) -> dict[str, Any]:
    (tmp_path / "tap.json").write_text(
        json.dumps({"data": str(tmp_path / "people.jsonl"), **tap}), encoding="utf-8"
    )
    return {
        "type": "singer",
        "command": [sys.executable, str(TAP)],
        "config": "tap.json",
        "config_secrets": {"api_key": "KIZUNA_TEST_TAP_KEY"},
        "page_size": 2,
        "streams": {"people": {"columns": COLUMNS_ORG}},
    }


def dlt_section(tmp_path: Path, **args: Any) -> dict[str, Any]:
    return {
        "type": "dlt",
        "source": "tests.support.dlt_people:people_file",
        "args": {"path": str(tmp_path / "people.jsonl"), **args},
        "secret_args": {"token": "KIZUNA_TEST_DLT_TOKEN"},
        "page_size": 2,
        "resources": {"people": {"columns": COLUMNS_ORG}},
    }


def write_workspace(tmp_path: Path, sources: dict[str, Any], **over: Any) -> Path:
    f = tmp_path / "kizuna.yaml"
    data = {"version": 1, "company": COMPANY, "sources": sources, **over}
    f.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return f
