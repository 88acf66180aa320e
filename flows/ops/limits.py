"""A Prefect global concurrency limit per API account: a source's streams share its slots.

Past one machine, several workers sync one workspace at once (``flows.ops.fanout``), and one
CRM org, Google tenant or mailbox server answers all of their streams. The warehouse's token
bucket (``flows.budget``) spaces the requests; this limit caps how many of the account's
streams run at the same moment, across every worker: ``kizuna-<source>-<workspace tag>``
with ``KIZUNA_ACCOUNT_STREAMS`` slots (2 by default), created by ``sync-all`` when missing
and never changed afterwards (an operator tunes it in the Prefect UI or with
``prefect gcl update``). Each stream occupies one slot while it runs.

Only flow runs on a Prefect server take slots; the CLI's in-process runs have no server to
ask, and one process already runs a source's streams through one pool.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from flows.ops import lazy
from flows.settings import settings
from flows.workspace import Workspace

LEASE_SECONDS = 600.0
"""A slot held by a crashed worker frees itself after this long (Prefect renews it while
the stream runs)."""


def limit_name(ws: Workspace, source: str) -> str:
    """``kizuna-<source>-<tag>``: the tag tells two workspaces (two warehouses) apart on one
    Prefect server without putting the warehouse URL, which may hold a password, in a name."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", source).strip("-")[:40]
    digest = hashlib.sha256(f"{ws.warehouse_url}\n{source}".encode()).hexdigest()
    return f"kizuna-{slug or 'source'}-{digest[:8]}"


def _in_flow_run() -> bool:
    return lazy.in_flow_run()


def ensure(ws: Workspace, sources: list[str]) -> list[str]:
    """Create the missing limits of ``sources`` (existing ones are left as they are); returns
    the names created. A no-op outside a Prefect flow run."""
    if not _in_flow_run():
        return []
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    slots = settings().account_streams
    made = []
    with get_client(sync_client=True) as client:
        for source in sources:
            name = limit_name(ws, source)
            try:
                client.read_global_concurrency_limit_by_name(name)
                continue
            except ObjectNotFound:
                pass
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=slots)
                )
                made.append(name)
            except ObjectAlreadyExists:  # another sync-all made it first
                pass
    return made


@contextmanager
def stream_slot(ws: Workspace, source: str) -> Iterator[None]:
    """One slot of the source's limit while a stream runs (in a Prefect flow run; a missing
    limit is no limit)."""
    if not _in_flow_run():
        with nullcontext():
            yield
        return
    from prefect.concurrency.sync import concurrency

    with concurrency(limit_name(ws, source), occupy=1, lease_duration=LEASE_SECONDS):
        yield
