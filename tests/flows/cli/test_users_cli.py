"""``kizuna users``: accounts made, re-roled, reset and scoped from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from flows.cli.main import app
from tests.flows.cli.support import workspace
from warehouse.access import accounts, audit, scope

runner = CliRunner()


def _run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    r = runner.invoke(app, list(args), input=stdin, env={"COLUMNS": "200"})
    return r.exit_code, r.output


def test_users_add_set_role_reset_password_and_scope(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = ["-w", str(workspace(tmp_path, engine, monkeypatch))]
    mail = "sato@ours.co.jp"
    code, out = _run(
        "users", "add", mail, "--role", "rep", "--password-stdin", *w, stdin="long enough pw\n"
    )
    assert code == 2 and "no staff user" in out and "--create" in out
    code, out = _run(
        "users",
        "add",
        mail,
        "--create",
        "--name",
        "佐藤",
        "--team",
        "東日本",
        "--password-stdin",
        *w,
        stdin="short\n",
    )
    assert code == 2 and "at least 10 characters" in out and "Traceback" not in out
    args = ["users", "add", mail, "--create", "--name", "佐藤", "--team", "東日本"]
    code, out = _run(*args, "--password-stdin", *w, stdin="a long passphrase\n")
    assert code == 0, out
    code, out = _run(*args, "--password-stdin", *w, stdin="a long passphrase\n")
    assert code == 2 and "already has an account" in out
    assert _run("users", "set-role", mail, "boss", *w)[0] == 2
    assert _run("users", "set-role", mail, "manager", *w)[0] == 0
    assert _run("users", "scope", "manager", "all", *w)[0] == 0
    code, out = _run("users", "list", *w)
    assert code == 0 and mail in out and "manager" in out and "東日本" in out
    assert "manager → all" in out
    with engine.begin() as conn:
        assert accounts.sign_in(conn, mail, "a long passphrase").reason == "ok"
        sid = accounts.staff_id_of(conn, mail)
        assert sid is not None
        v = scope.viewer_for(conn, sid)
        assert v is not None and v.role == "manager" and v.owners is None
    code, _ = _run(
        "users", "reset-password", mail, "--password-stdin", *w, stdin="new passphrase!\n"
    )
    assert code == 0
    with engine.begin() as conn:
        assert accounts.sign_in(conn, mail, "a long passphrase").reason == "wrong"
        assert accounts.sign_in(conn, mail, "new passphrase!").reason == "ok"
        actions = {r["action"] for r in audit.recent(conn)}
    assert {"user-add", "user-set-role", "user-reset-password", "scope-set"} <= actions
