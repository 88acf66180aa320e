"""A dlt source (any ``@dlt.source`` or ``@dlt.resource``) as a reader, without a dlt pipeline.

The source is iterated inside a dlt state context whose state Kizuna owns: dlt's incremental
cursors (``dlt.sources.incremental``) read and advance it, and it is stored as the stream's
cursor in dlt's own typed JSON. Because a resource may yield out of cursor order, the new
state is committed only with the last page of a run; earlier pages carry the state the run
started from, so a crash mid-run re-reads from there and the upsert absorbs the repeats.

Each item is tagged with its resource's name and normalised to plain JSON (dlt's encoder:
datetimes, decimals, pendulum values); an item that is not an object becomes a ``RawBad``.
``dlt`` is imported only when a source runs: it is the optional extra ``kizuna[dlt]``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, cast

from connectors.page import Cursor, Page, RawBad

TAG = "_kizuna_resource"


class DltCursor(Cursor):
    """dlt's source state (incremental cursors included), as dlt's typed JSON."""

    state: str | None = None


def _tagger(name: str) -> Callable[[Any], Any]:
    def tag(item: Any) -> Any:
        return {**item, TAG: name} if isinstance(item, dict) else item

    return tag


def resources_of(made: Any) -> dict[str, Any]:
    """The selected resources of a ``DltSource``, or the one ``DltResource`` itself."""
    selected = getattr(made, "selected_resources", None)
    if selected is not None:
        return dict(selected)
    return {str(made.name): made}


def primary_key(resource: Any) -> list[str]:
    hints = getattr(resource, "_hints", None) or {}
    key = hints.get("primary_key") if isinstance(hints, dict) else None
    if isinstance(key, str):
        return [key]
    return [str(k) for k in key] if isinstance(key, list | tuple) else []


def pages(
    make: Callable[[], Any],
    cursor: DltCursor | None,
    *,
    keep: frozenset[str],
    page_size: int = 1000,
) -> Iterator[Page[DltCursor]]:
    """Iterate ``make()`` (called inside the state context) and page its items."""
    from dlt.common import json as dlt_json
    from dlt.common.configuration.container import Container
    from dlt.common.pipeline import StateInjectableContext

    start = cursor or DltCursor()
    state: dict[str, Any] = dlt_json.typed_loads(start.state) if start.state else {}
    records: list[dict[str, Any]] = []
    bad: list[RawBad] = []
    context = StateInjectableContext(state=cast(Any, state))
    with Container().injectable_context(context):
        made = make()
        resources = resources_of(made)
        if hasattr(made, "with_resources"):
            made = made.with_resources(*[n for n in resources if n in keep])
        for name, resource in resources_of(made).items():
            resource.add_map(_tagger(name))
        for n, item in enumerate(made, 1):
            if not isinstance(item, dict):
                bad.append(RawBad(None, f"item {n} is not an object", repr(item)[:2000]))
            else:
                name = str(item.pop(TAG, ""))
                if name in keep:
                    plain = json.loads(dlt_json.dumps(item))
                    records.append({"resource": name, "record": plain})
            if len(records) + len(bad) >= page_size:
                yield Page(records=records, cursor=start, bad=bad)
                records, bad = [], []
    yield Page(records=records, cursor=DltCursor(state=dlt_json.typed_dumps(state)), bad=bad)
