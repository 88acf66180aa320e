"""A bad workspace file is rejected with the file, the field and what to write instead."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli.main import app
from flows.config import load
from kizuna.errors import ConfigError
from tests.support.fakes import fakesource

fakesource.register()
runner = CliRunner()


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "kizuna.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_init_template_loads(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "kizuna.yaml"), "--domain", "abc.co.jp"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "kizuna.yaml").read_text(encoding="utf-8")
    assert "abc.co.jp" in text and "# " in text
    # The template's sources need their source types; config shape is checked here.
    import yaml

    data = yaml.safe_load(text)
    assert data["company"]["domains"] == ["abc.co.jp"]


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    target = _write(tmp_path, "x: 1")
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 2
    assert "--force" in result.output


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kizuna init"):
        load(tmp_path / "nope.yaml")


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "company:\n  name: [unclosed\n")
    with pytest.raises(ConfigError) as exc:
        load(p)
    assert "line" in exc.value.field and str(p) in str(exc.value)


@pytest.mark.parametrize(
    ("body", "field", "fix"),
    [
        ("company: {name: A, domains: [nodot]}", "company.domains", "example.co.jp"),
        ("company: {name: A, time_zone: Mars/Base}", "company.time_zone", "Asia/Tokyo"),
        ("company: {name: A}\ncompnay: 1", "compnay", "spelling"),
        ("company: {name: A}\nsources: {s: {type: nosuch}}", "sources.s.type", "use one of"),
        ("company: {name: A}\nsources: {s: {type: fake, rows: many}}", "sources.s.rows", ""),
        (
            "company: {name: A}\nsources: {s: {type: fake, colour: red}}",
            "sources.s.colour",
            "remove",
        ),
    ],
)
def test_config_errors_name_file_field_and_fix(
    tmp_path: Path, body: str, field: str, fix: str
) -> None:
    p = _write(tmp_path, body)
    with pytest.raises(ConfigError) as exc:
        load(p)
    assert exc.value.file == str(p)
    assert exc.value.field == field
    assert fix in str(exc.value)


def test_cli_reports_config_errors_without_traceback(tmp_path: Path) -> None:
    p = _write(tmp_path, "company: {name: A}\nsources: {s: {type: nosuch}}")
    result = runner.invoke(app, ["status", "-w", str(p)])
    assert result.exit_code == 2
    assert "sources.s.type" in result.output
    assert "Traceback" not in result.output


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("init", "sync", "status", "demo"):
        assert cmd in result.output


def test_quarantine_command_lists_open_entries(tmp_path: Path) -> None:
    from flows.engine import run_stream
    from flows.runtime import engine_for
    from flows.sources.registry import streams

    p = _write(
        tmp_path,
        "company: {name: A, domains: [kizuna-demo.co.jp]}\n"
        "warehouse: {url: 'sqlite:///wh.db'}\n"
        "sources: {people: {type: fake, rows: 20, bad_every: 10}}\n",
    )
    ws = load(p)
    run_stream(engine_for(ws.warehouse_url), streams(ws, "people")[0], "r")
    result = runner.invoke(app, ["quarantine", "-w", str(p), "--payload"])
    assert result.exit_code == 0, result.output
    assert "2 open" in result.output
    for piece in ("P000009", "P000019", "email:", "people/people"):
        assert piece in result.output
