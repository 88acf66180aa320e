"""The outbox under KIZUNA_STORAGE_URL: a message one worker wrote is found by another, so a
recovery after a crash on any worker knows it was sent (fsspec's in-memory filesystem here)."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest
import yaml

from connectors.channel import Outgoing
from flows import config
from flows.push.channels import build_channel
from flows.push.config import push_config


def _ws(tmp_path: Path) -> Path:
    f = tmp_path / "kizuna.yaml"
    f.write_text(
        yaml.safe_dump(
            {
                "company": {"name": "株式会社サンプル", "domains": ["ours.co.jp"]},
                "warehouse": {"url": f"sqlite:///{tmp_path / 'wh.db'}"},
                "outbound": {
                    "sender": "営業部 <sales@ours.co.jp>",
                    "unsubscribe_address": "unsubscribe@ours.co.jp",
                    "channels": {"outbox": {"type": "outbox", "path": "outbox"}},
                },
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    return f


def test_one_worker_writes_another_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"memory://kz-{uuid.uuid4().hex[:8]}/shared"
    monkeypatch.setenv("KIZUNA_STORAGE_URL", bucket)
    cfg = push_config(config.load(_ws(tmp_path)))
    first, second = build_channel(cfg, "outbox"), build_channel(cfg, "outbox")
    mid = "<kz.c1.p7.s1@ours.co.jp>"
    assert second.was_sent(mid) is False
    first.send(Outgoing(mid, "hanako@acme.example", b"Subject: x\r\n\r\nbody\r\n"))
    assert second.was_sent(mid) is True
    fs, base = fsspec.core.url_to_fs(bucket)
    (name,) = fs.ls(f"{base}/outbox", detail=False)
    assert name.endswith(".eml") and fs.cat_file(name).endswith(b"body\r\n")
    assert not (tmp_path / "outbox").exists()  # nothing on this machine's disk


def test_unset_it_stays_beside_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KIZUNA_STORAGE_URL", raising=False)
    cfg = push_config(config.load(_ws(tmp_path)))
    build_channel(cfg, "outbox").send(Outgoing("<m1@ours.co.jp>", "a@b.example", b"x"))
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
