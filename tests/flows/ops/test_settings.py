"""Process settings (pydantic-settings) and where a flow run finds its workspace."""

from __future__ import annotations

import pytest

from flows.settings import settings, workspace_path
from kizuna.errors import ConfigError


def test_the_parameter_wins_then_the_worker_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIZUNA_WORKSPACE", "/srv/kizuna/kizuna.yaml")
    assert workspace_path("/given.yaml") == "/given.yaml"
    assert workspace_path(None) == "/srv/kizuna/kizuna.yaml"
    assert workspace_path("") == "/srv/kizuna/kizuna.yaml"


def test_neither_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KIZUNA_WORKSPACE", raising=False)
    with pytest.raises(ConfigError) as info:
        workspace_path(None)
    assert "KIZUNA_WORKSPACE" in str(info.value) and "workspace_file" in str(info.value)


def test_schedules_override_is_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIZUNA_SCHEDULES", '{"sync-all": "* * * * *"}')
    monkeypatch.setenv("KIZUNA_SERVE_PORT", "0")
    s = settings()
    assert s.schedules == {"sync-all": "* * * * *"} and s.serve_port == 0
