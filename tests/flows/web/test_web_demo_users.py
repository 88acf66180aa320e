"""``kizuna demo`` gives the web app accounts: an admin, a manager and reps, one password."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.demo.users import demo_users
from tests.flows.cli.support import workspace
from tests.flows.web.conftest import World
from warehouse.access import accounts, scope


def test_demo_users_sign_in_and_a_second_run_resets_the_password(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace(tmp_path, world.engine, monkeypatch)
    users, password = demo_users(ws)
    roles = {u.email: u.role for u in users}
    assert roles["admin@ours.co.jp"] == "admin"
    assert sorted(roles.values()) == ["admin", "manager", "rep", "rep"]  # three deal owners
    with world.engine.begin() as conn:
        for mail, role in roles.items():
            got = accounts.sign_in(conn, mail, password)
            assert got.reason == "ok" and got.staff_id is not None
            v = scope.viewer_for(conn, got.staff_id)
            assert v is not None and v.role == role
    again, fresh = demo_users(ws)
    assert fresh != password and {u.email for u in again} == set(roles)
    with world.engine.begin() as conn:
        assert accounts.sign_in(conn, "admin@ours.co.jp", password).reason == "wrong"
        assert accounts.sign_in(conn, "admin@ours.co.jp", fresh).reason == "ok"
