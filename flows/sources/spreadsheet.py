"""``type: spreadsheet`` sources: one CSV or ``.xlsx`` export, one stream of rows.

A row is named by its key column (``key:``, a column mapped to ``id``, or a usual ID header
such as 顧客ID). An export without one is keyless: each row is named by its content (a
digest of its normalised cells, header order and spacing aside) plus the how-manieth
identical row it is, so a re-sorted or re-exported file is "unchanged", and blank or repeated
mail addresses are just data. The stream's fingerprint covers the column map, the key, the
reading options (encoding, delimiter, sheet) and the phone region, so changing any of them
re-reads the file and re-applies every row on the next sync.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from connectors.files import spreadsheet as conn
from connectors.page import Cursor, KnownHashes, Page
from flows.engine import StreamSpec, config_fingerprint
from flows.storage import fetch_source, source_path
from flows.workspace import SourceConfig, Workspace
from mappings.spreadsheet import headers as sheet_headers
from mappings.spreadsheet import rows as mapping
from warehouse import records as r

MAPPING_VERSION = 2
"""Bump when the mapping's output changes for the same input, to re-apply unchanged rows."""


def _target(value: str) -> str:
    t = value.strip()
    if not mapping.valid_target(t):
        raise ValueError(f"unknown target {value!r}; valid targets: {mapping.target_help()}")
    return t


Target = Annotated[str, AfterValidator(_target)]


class Config(SourceConfig):
    type: Literal["spreadsheet"] = "spreadsheet"
    path: str = Field(min_length=1)
    """The export file (CSV or .xlsx), relative to the workspace file."""
    key: str | None = None
    """The column naming a row; by default 顧客ID / ID / Customer ID, else メールアドレス."""
    encoding: conn.Encoding = "auto"
    """auto detects UTF-8 (BOM or not), cp932, EUC-JP and UTF-16; name one to override."""
    delimiter: conn.Delimiter = "auto"
    """auto: tab when the header line has more tabs than commas (Excel's Unicode テキスト)."""
    sheet: str | None = None
    """For .xlsx: the sheet to read (the first one by default)."""
    columns: dict[str, Target] = Field(default_factory=dict)
    """Header → unified field (``person.full_name``, ``deal.amount``, ``attributes.rank``)."""
    on_missing: Literal["mark_deleted", "keep"] = "mark_deleted"
    stream: str = Field(default="rows", min_length=1)
    max_xlsx_mb: int = Field(default=512, ge=1, le=65_536)
    """Uncompressed size of an .xlsx read at most; a bigger (or bomb-like) file is quarantined."""
    max_cell_chars: int = Field(default=32_767, ge=1, le=10_000_000)
    """A row with a longer cell is quarantined (Excel itself stops at 32,767)."""
    page_size: int = Field(default=conn.PAGE_SIZE, ge=1, le=50_000)


def key_candidates(cfg: Config) -> tuple[str, ...]:
    if cfg.key:
        return (cfg.key,)
    mapped = tuple(h for h, t in cfg.columns.items() if t == "id")
    return mapped or mapping.DEFAULT_KEYS


class _KeyOf:
    """The row key: the key column is chosen once per header, then it is one dict lookup."""

    def __init__(self, candidates: tuple[str, ...]) -> None:
        self.candidates = candidates
        self.column: str | None = None

    def __call__(self, raw: dict[str, Any]) -> str:
        col = self.column
        if col is None or col not in raw:
            col = self.column = conn.pick_key(raw, self.candidates)
            if col is None:  # the connector already refused such a file
                raise KeyError(f"no key column among {self.candidates}")
        return str(raw[col]).strip()


ROW_KEY = "\x00row"
"""Where a keyless row carries the name it was given (never a header of a real file)."""


def content_key(raw: dict[str, Any]) -> str:
    """A digest of the row's cells as text (NFKC, trimmed, spaces collapsed), by header."""
    cells = sorted(
        (sheet_headers.fold(h), " ".join(unicodedata.normalize("NFKC", str(v)).split()))
        for h, v in raw.items()
        if h != ROW_KEY
    )
    blob = json.dumps(cells, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.blake2b(blob, digest_size=12).hexdigest()


def name_keyless(pages: Iterator[Page[Any]], candidates: tuple[str, ...]) -> Iterator[Page[Any]]:
    """Give each row of a keyless file its content name, ``row:<digest>#<n>``.

    ``n`` counts identical rows within this pass (the counter starts with each read), so two
    identical rows are two records and a shuffled file names them the same way.
    """
    seen: Counter[str] = Counter()
    keyed: bool | None = None
    for page in pages:
        for raw in page.records:
            if keyed is None:
                keyed = conn.pick_key(raw, candidates) is not None
            if keyed:
                break
            digest = content_key(raw)
            seen[digest] += 1
            raw[ROW_KEY] = f"row:{digest}#{seen[digest]}"
        yield page


def streams(name: str, cfg: Config, ws: Workspace) -> list[StreamSpec]:
    path: Path = source_path(ws, cfg.path)  # a remote location's local mirror
    candidates = key_candidates(cfg)
    key_of = _KeyOf(candidates)
    keyless_mapper = mapping.SheetMapping(
        columns=dict(cfg.columns), phone_region=ws.company.phone_region, key=ROW_KEY
    )
    mapper = mapping.SheetMapping(
        columns=dict(cfg.columns), phone_region=ws.company.phone_region, key=cfg.key
    )

    def read(cursor: Cursor | None, known: KnownHashes | None = None) -> Iterator[Page[Any]]:
        fetch_source(ws, cfg.path)  # a remote file: its current bytes, copied if changed
        sheet_cursor = cursor if isinstance(cursor, conn.SheetCursor) else None
        pages = conn.pages(
            path,
            sheet_cursor,
            encoding=cfg.encoding,
            delimiter=cfg.delimiter,
            sheet=cfg.sheet,
            key_candidates=candidates,
            page_size=cfg.page_size,
            snapshot=cfg.on_missing == "mark_deleted",
            max_xlsx_bytes=cfg.max_xlsx_mb << 20,
            max_cell_chars=cfg.max_cell_chars,
            key_required=cfg.key is not None,
            known=known,
            salt=fingerprint,
        )
        return pages if cfg.key else name_keyless(pages, candidates)

    def source_id(raw: dict[str, Any]) -> str:
        got = raw.get(ROW_KEY)
        return str(got) if got is not None else key_of(raw)

    def map_row(raw: dict[str, Any]) -> list[r.Record]:
        got = raw.get(ROW_KEY)
        if got is not None:
            return keyless_mapper(raw, str(got))
        return mapper(raw, key_of(raw))

    fingerprint = config_fingerprint(
        {
            "v": MAPPING_VERSION,
            "columns": dict(cfg.columns),
            "key": candidates,
            "region": ws.company.phone_region,
            "read": [cfg.encoding, cfg.delimiter, cfg.sheet, cfg.on_missing],
        }
    )
    return [
        StreamSpec(
            connector=name,
            stream=cfg.stream,
            read=read,
            read_known=read,
            cursor_type=conn.SheetCursor,
            source_id=source_id,
            map=map_row,
            fingerprint=fingerprint,
            unique_ids=True,
            total_hint=lambda: conn.estimate_rows(path),
        )
    ]
