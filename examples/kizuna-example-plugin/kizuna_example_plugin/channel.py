"""``type: example_folder``: each message lands in a folder as ``<digest>.eml``.

A channel type is an object with ``Config`` (a pydantic model with a ``type`` field),
``carries_mail`` and ``build(name, config, context)`` returning a Kizuna ``Channel``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from connectors.channel import Outgoing


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["example_folder"] = "example_folder"
    folder: str = Field(min_length=1)
    """Where messages go, relative to the workspace file."""


class FolderChannel:
    def __init__(self, folder: Path, name: str) -> None:
        self.folder, self.name = folder, name

    def _path(self, message_id: str) -> Path:
        return self.folder / (hashlib.sha256(message_id.encode()).hexdigest()[:32] + ".eml")

    def send(self, item: Outgoing) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self._path(item.message_id)
        tmp = final.with_suffix(".part")
        tmp.write_bytes(item.data)
        os.replace(tmp, final)  # never half a message that would count as sent

    def was_sent(self, message_id: str) -> bool | None:
        return self._path(message_id).exists()

    def close(self) -> None:
        return None


class _FolderType:
    Config = Config
    carries_mail = True

    def build(self, name: str, config: Any, ctx: Any) -> FolderChannel:
        return FolderChannel(ctx.root / config.folder, name)


CHANNEL = _FolderType()
