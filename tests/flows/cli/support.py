"""A workspace file on the test warehouse (SQLite or PostgreSQL) for CLI tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, text
from typer.testing import CliRunner, Result

from flows.cli.main import app
from tests.conftest import PG_URL

runner = CliRunner()


def url_of(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return str(engine.url)
    with engine.connect() as conn:
        schema = conn.execute(text("show search_path")).scalar_one()
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


def workspace(tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch, **over: Any) -> Path:
    data: dict[str, Any] = {
        "version": 1,
        "company": {"name": "株式会社サンプル", "domains": ["ours.co.jp"]},
        **over,
    }
    f = tmp_path / "kizuna.yaml"
    f.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv("KIZUNA_WAREHOUSE_URL", url_of(engine))
    return f


def kizuna(*args: str, width: int = 250) -> Result:
    """Run a command as a person would, wide enough that lines do not wrap."""
    return runner.invoke(app, list(args), env={"COLUMNS": str(width)})
