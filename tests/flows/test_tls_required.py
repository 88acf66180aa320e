"""Credentials never cross a network in clear: TLS for every remote host, plain only on loopback."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from flows.push.config import ChannelConfig
from flows.secrets import is_loopback, require_tls
from flows.sources import caldav, imap
from flows.sources.crm import hubspot


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["mail.example.co.jp", "10.0.0.5", "localhost.evil.jp", ""])
def test_remote_hosts(host: str) -> None:
    assert not is_loopback(host)


def test_urls() -> None:
    assert require_tls("https://dav.example.co.jp/") == "https://dav.example.co.jp/"
    assert require_tls("http://127.0.0.1:5232/") == "http://127.0.0.1:5232/"
    with pytest.raises(ValueError, match="clear text"):
        require_tls("http://dav.example.co.jp/")


PLAIN: list[tuple[type[Any], dict[str, Any]]] = [
    (
        caldav.Config,
        {"type": "caldav", "url": "http://{h}/dav/", "username": "u", "calendars": ["c"]},
    ),
    (hubspot.Config, {"type": "hubspot", "token_env": "T", "base_url": "http://{h}"}),
    (
        imap.Config,
        {"type": "imap", "host": "{h}", "security": "none", "username": "u", "password_env": "P"},
    ),
    (ChannelConfig, {"type": "smtp", "host": "{h}", "security": "none"}),
    (
        ChannelConfig,
        {
            "type": "smtp",
            "host": "smtp.example.co.jp",
            "sent_folder": {
                "host": "{h}",
                "security": "none",
                "username": "u",
                "password_env": "P",
            },
        },
    ),
]


@pytest.mark.parametrize(("model", "fields"), PLAIN)
def test_plain_transport_only_to_this_machine(model: type[Any], fields: dict[str, Any]) -> None:
    def filled(host: str) -> dict[str, Any]:
        def f(v: Any) -> Any:
            return (
                {k: f(x) for k, x in v.items()}
                if isinstance(v, dict)
                else (v.replace("{h}", host) if isinstance(v, str) else v)
            )

        return dict(f(fields))

    model.model_validate(filled("127.0.0.1"))
    with pytest.raises(ValidationError, match="clear text"):
        model.model_validate(filled("crm.example.co.jp"))
