"""The gmail / gcal / gpeople / m365 sections of kizuna.yaml: valid files load and give one
stream per account; mistakes name the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.config import load
from flows.sources import registry
from kizuna.errors import ConfigError


def write(tmp_path: Path, sources: dict[str, Any]) -> Path:
    p = tmp_path / "kizuna.yaml"
    doc = {"company": {"name": "アワコ", "domains": ["ourco.co.jp"]}, "sources": sources}
    p.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return p


def test_sources_load_and_give_streams(tmp_path: Path) -> None:
    ws = load(
        write(
            tmp_path,
            {
                "gmail": {
                    "type": "gmail",
                    "accounts": ["Sato@OurCo.co.jp", "suzuki@ourco.co.jp"],
                    "service_account_key_env": "GOOGLE_SA_KEY",
                    "oauth_token_env": {"suzuki@ourco.co.jp": "GMAIL_TOKEN_SUZUKI"},
                    "privacy": {"capture": "all", "headers_only": True},
                },
                "gcal": {
                    "type": "gcal",
                    "accounts": ["sato@ourco.co.jp"],
                    "service_account_key_env": "GOOGLE_SA_KEY",
                },
                "contacts": {
                    "type": "gpeople",
                    "accounts": ["sato@ourco.co.jp"],
                    "service_account_key_env": "GOOGLE_SA_KEY",
                },
                "m365": {
                    "type": "m365",
                    "tenant_id": "t",
                    "client_id": "c",
                    "client_secret_env": "M365_SECRET",
                    "mailboxes": ["jiro@ourco.co.jp"],
                },
            },
        )
    )
    streams = {name: [s.stream for s in registry.streams(ws, name)] for name in ws.sources}
    assert streams == {
        "gmail": ["sato@ourco.co.jp", "suzuki@ourco.co.jp"],
        "gcal": ["sato@ourco.co.jp/primary"],
        "contacts": ["sato@ourco.co.jp/contacts", "sato@ourco.co.jp/other"],
        "m365": [
            "jiro@ourco.co.jp/mail/inbox",
            "jiro@ourco.co.jp/mail/sentitems",
            "jiro@ourco.co.jp/calendar",
        ],
    }


@pytest.mark.parametrize(
    ("source", "field", "words"),
    [
        (
            {"type": "gmail", "accounts": ["sato@ourco.co.jp"]},
            "sources.gmail",
            "service_account_key_env",
        ),
        (
            {"type": "gmail", "accounts": ["not an address"], "service_account_key_env": "K"},
            "sources.gmail.accounts",
            "not an email address",
        ),
        (
            {"type": "gmail", "accounts": ["a@ourco.co.jp"], "service_account_key": "{...}"},
            "sources.gmail.service_account_key",
            "remove it",
        ),
        (
            {"type": "m365", "tenant_id": "t", "client_id": "c", "mailboxes": ["a@ourco.co.jp"]},
            "sources.gmail.client_secret_env",
            "add this field",
        ),
    ],
    ids=["no-credentials", "bad-account", "secret-in-file", "m365-no-secret-name"],
)
def test_mistakes_name_file_field_and_fix(
    tmp_path: Path, source: dict[str, Any], field: str, words: str
) -> None:
    path = write(tmp_path, {"gmail": source})
    with pytest.raises(ConfigError) as info:
        load(path)
    text = str(info.value)
    assert str(path.resolve()) in text or str(path) in text
    assert field in text and words in text
