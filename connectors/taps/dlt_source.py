"""A dlt source (any ``@dlt.source`` or ``@dlt.resource``) as a reader, without a dlt pipeline.

The source is iterated inside a dlt state context whose state Kizuna owns: dlt's incremental
cursors (``dlt.sources.incremental``) read and advance it, and it is stored as the stream's
cursor in dlt's own typed JSON. Because a resource may yield out of cursor order, the new
state is committed only with the last page of a run; earlier pages carry the state the run
started from, so a crash mid-run re-reads from there and the upsert absorbs the repeats.

Each item is tagged with its resource's name and normalised to plain JSON (dlt's encoder:
datetimes, decimals, pendulum values); an item that is not an object, or lacks its resource's
primary key (taken out before dlt's incremental step, which would fail the run), becomes a
``RawBad``.
``dlt`` is imported only when a source runs: it is the optional extra ``kizuna[dlt]``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from connectors.page import Cursor, Page, RawBad
from kizuna.errors import FatalError, KizunaError, TransientError

TAG = "_kizuna_resource"


class DltCursor(Cursor):
    """dlt's source state (incremental cursors included), as dlt's typed JSON."""

    state: str | None = None


def _tagger(name: str) -> Callable[[Any], Any]:
    def tag(item: Any) -> Any:
        return {**item, TAG: name} if isinstance(item, dict) else item

    return tag


def _keyless(name: str, key: list[str], out: list[RawBad]) -> Callable[[Any], bool]:
    """A filter that takes an item without its primary key out of the stream, into ``out``."""

    def keep(item: Any) -> bool:
        if not isinstance(item, dict) or all(item.get(k) not in (None, "") for k in key):
            return True
        text = json.dumps(item, ensure_ascii=False, default=str)[:2000]
        out.append(RawBad(None, f"{name}: record without its key {key}", text))
        return False

    return keep


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


_TRANSIENT_WORDS = ("timeout", "timed out", "429", "502", "503", "504", "temporar", "reset")


def _root(exc: BaseException) -> BaseException:
    """The source's own error inside dlt's wrappers (``ResourceExtractionError``)."""
    while exc.__cause__ is not None and type(exc).__module__.startswith("dlt"):
        exc = exc.__cause__
    return exc


def classified(exc: BaseException, describe: Callable[[str], str]) -> KizunaError:
    """An error from inside a dlt source as Kizuna's: its message passed through ``describe``
    (which masks secrets); network trouble is transient, anything else fatal."""
    if isinstance(exc, KizunaError):
        return exc
    cause = _root(exc)
    said = describe(f"{type(cause).__name__}: {cause}")[:1000]
    network = isinstance(cause, ConnectionError | TimeoutError)
    if network or any(w in said.lower() for w in _TRANSIENT_WORDS):
        return TransientError(f"the dlt source failed: {said}; the next run resumes")
    return FatalError(f"the dlt source failed: {said}. Fix: check its args and secrets.")


def pages(
    make: Callable[[], Any],
    cursor: DltCursor | None,
    *,
    keep: frozenset[str],
    page_size: int = 1000,
    describe: Callable[[str], str] = lambda text: text,
) -> Iterator[Page[DltCursor]]:
    """Iterate ``make()`` (called inside the state context) and page its items; an error the
    source raises is ``classified`` (and its message masked by ``describe``)."""
    try:
        yield from _pages(make, cursor, keep=keep, page_size=page_size)
    except Exception as exc:
        raise classified(exc, describe) from None


def _pages(
    make: Callable[[], Any], cursor: DltCursor | None, *, keep: frozenset[str], page_size: int
) -> Iterator[Page[DltCursor]]:
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
        keyless: list[RawBad] = []
        for name, resource in resources_of(made).items():
            key = primary_key(resource)
            if key:  # before dlt's own steps: its incremental fails a whole run on such an item
                resource.add_filter(_keyless(name, key, keyless), insert_at=1)
            resource.add_map(_tagger(name))
        for n, item in enumerate(made, 1):
            if keyless:
                bad += keyless
                keyless.clear()
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
    bad += keyless
    yield Page(records=records, cursor=DltCursor(state=dlt_json.typed_dumps(state)), bad=bad)


@dataclass(frozen=True)
class Sample:
    """One resource as discovery sees it: its hints and its first few items."""

    name: str
    primary_key: list[str]
    incremental: str | None
    """The incremental cursor path (``updated_at``), if the resource has one."""
    declared: list[str]
    """Column names the resource declares in its hints (most infer them from the data)."""
    records: list[dict[str, Any]]
    error: str | None = None


def _declared(resource: Any) -> list[str]:
    try:
        columns = resource.compute_table_schema().get("columns") or {}
    except Exception:  # dynamic hints that need an item: the sample shows the fields
        return []
    return [str(c) for c in columns]


def _cursor_path(resource: Any) -> str | None:
    inc = getattr(getattr(resource, "incremental", None), "_incremental", None)
    path = getattr(inc, "cursor_path", None)
    return str(path) if path else None


def sample(make: Callable[[], Any], *, limit: int = 20) -> list[Sample]:
    """Every resource of ``make()`` (selected or not) and its first ``limit`` items, each read
    in a throwaway state: nothing is committed, a stored cursor is neither used nor moved."""
    from dlt.common import json as dlt_json
    from dlt.common.configuration.container import Container
    from dlt.common.pipeline import StateInjectableContext

    def fresh() -> Any:
        return StateInjectableContext(state=cast(Any, {}))

    with Container().injectable_context(fresh()):
        made = make()
        names = list(getattr(made, "resources", None) or resources_of(made))
    out = []
    for name in names:
        with Container().injectable_context(fresh()):
            made = make()
            one = made.with_resources(name) if hasattr(made, "with_resources") else made
            resource = resources_of(one)[name]
            records: list[dict[str, Any]] = []
            error = None
            try:
                resource.add_limit(limit)
                for item in one:
                    if isinstance(item, dict):
                        records.append(json.loads(dlt_json.dumps(item)))
            except Exception as exc:  # shown next to the resource; discovery goes on
                error = f"{type(_root(exc)).__name__}: {_root(exc)}"
            out.append(
                Sample(
                    name=name,
                    primary_key=primary_key(resource),
                    incremental=_cursor_path(resource),
                    declared=_declared(resource),
                    records=records,
                    error=error,
                )
            )
    return out
