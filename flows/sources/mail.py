"""Source type ``mail``: mail exported to disk (mbox, Maildir, ``.eml`` folders) → email activities.

```yaml
sources:
  mailbox:
    type: mail
    path: mail/            # an mbox file, a Maildir, or a folder searched for all of them
    format: auto           # or mbox / maildir / eml (eml: every file in the folder is a message)
    headers_only: false    # true: no text, snippet or attachment flag is kept
    exclude_internal: false  # true: skip mail whose every participant is on our own domains
    max_text_chars: 200000 # plain text stored per message (the snippet is cut from it)
    max_recipients: 1000   # a message with more addresses is quarantined
    max_mime_depth: 20     # … or with MIME parts nested deeper
    max_mime_parts: 500    # … or with more parts
```

Each file is a source record (``file_id``: the file, a Maildir message's folder and unique
name, an mbox file and the message's id); two copies of one message — INBOX and Sent, two
exports — are one activity with both files in its lineage (``kizuna export activities``).

Re-runs read only what changed on disk (see :mod:`connectors.files.mailfiles`); the engine then
skips messages whose bytes it has seen, comparing the reader's digest, not the whole message.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from connectors.files.mail_layout import Format
from connectors.files.mailfiles import MailFilesCursor, read_messages
from connectors.page import Cursor, Page
from flows.engine import StreamSpec, config_fingerprint
from flows.sources.common import MailLimitFields, file_path, require_path
from flows.storage import fetch_source, source_path
from flows.workspace import SourceConfig, Workspace
from kizuna.errors import BadRecord
from mappings.mail.message import MailLimits, message_id_of
from mappings.mail.records import parse_mail
from warehouse import records as r

STREAM = "messages"


class Config(SourceConfig, MailLimitFields):
    type: Literal["mail"] = "mail"
    path: str = Field(min_length=1)
    """An mbox file, a Maildir, a ``.eml`` file or a folder of them; relative to kizuna.yaml."""
    format: Format = "auto"
    headers_only: bool = False
    exclude_internal: bool = False
    """Skip mail where every participant is internal (staff to staff)."""
    page_size: int = Field(default=500, ge=1, le=10_000)


def map_message(
    raw: dict[str, Any],
    *,
    own_domains: list[str],
    headers_only: bool,
    exclude_internal: bool,
    limits: MailLimits | None = None,
    path: str | None = None,
    locator: str | None = None,
    zone: str = "Asia/Tokyo",
) -> list[r.Record]:
    """One raw record of :mod:`connectors.files.mailfiles` → its activity and the records it
    yields (the meetings of an invitation, a forward's inner messages); nothing if excluded.

    ``locator`` is the message file as the workspace names it (an mbox with ``#offset``): the
    crosswalk gives it for the activity and for each participant first seen in it.
    """
    try:
        acts = parse_mail(
            raw["raw"], own_domains=own_domains, headers_only=headers_only, limits=limits, zone=zone
        )
    except BadRecord as exc:  # quarantined under the file's id, so fixing the file closes it
        raise BadRecord(exc.reason) from None
    main = acts[0]
    if exclude_internal and main.participants and all(p.internal for p in main.participants):
        return []
    update: dict[str, Any] = {"source_id": str(raw.get("file_id") or raw["id"])}
    if locator:
        update["locator"] = locator[:600]
    out: list[r.Record] = []
    for i, act in enumerate(acts):
        if path and i == 0:
            out.append(
                act.model_copy(update={**update, "attributes": {**act.attributes, "path": path}})
            )
        else:
            out.append(act.model_copy(update=update))
    return out


def workspace_relative(path: str, root: Path) -> str:
    """``path`` under the workspace folder as a relative path (the same on every machine the
    workspace is copied to); a path outside it stays absolute."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


def streams(name: str, cfg: Config, ws: Workspace) -> list[StreamSpec]:
    root: Path = source_path(ws, cfg.path)  # a remote location's local mirror
    domains = list(ws.company.domains)

    def read(cursor: Cursor | None) -> Iterator[Page[MailFilesCursor]]:
        fetch_source(ws, cfg.path)  # a remote folder: what changed, copied
        require_path(
            root, ws, name, "mail", "point it at an mbox file, a Maildir, or a folder of .eml files"
        )
        c = cursor if isinstance(cursor, MailFilesCursor) else None
        return read_messages(root, c, fmt=cfg.format, id_of=message_id_of, page_size=cfg.page_size)

    def map_raw(raw: dict[str, Any]) -> list[r.Record]:
        path = file_path(root, str(raw.get("path") or ""))
        return map_message(
            raw,
            own_domains=domains,
            headers_only=cfg.headers_only,
            exclude_internal=cfg.exclude_internal,
            limits=cfg.limits(),
            path=path,
            locator=workspace_relative(path, ws.root),
            zone=ws.company.time_zone,
        )

    return [
        StreamSpec(
            connector=name,
            stream=STREAM,
            read=read,
            cursor_type=MailFilesCursor,
            source_id=lambda raw: str(raw.get("file_id") or raw["id"]),
            map=map_raw,
            fingerprint=config_fingerprint(
                {
                    "mapping": 4,
                    "domains": domains,
                    "zone": ws.company.time_zone,
                    "limits": cfg.limits().__dict__,
                    "headers_only": cfg.headers_only,
                    "exclude_internal": cfg.exclude_internal,
                }
            ),
            hash_fields=("sha",),
            path_of=lambda raw: file_path(root, str(raw.get("path") or "")),
        )
    ]
