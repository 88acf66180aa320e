"""Google contacts (People API): a user's contacts and "other contacts", with sync tokens.

Two lists, one stream each: ``people.connections.list`` (the contacts a user saved) and
``otherContacts.list`` (addresses Gmail collected from correspondence). Both follow the same
contract: ``requestSyncToken=True`` on a full pass, ``nextSyncToken`` on its last page only,
then ``syncToken`` returns changes, with deletions as a person whose ``metadata.deleted`` is
true. Every other parameter must match the first call, so the request is built in one place.
Tokens expire after 7 days: 400 ``FAILED_PRECONDITION`` with reason ``EXPIRED_SYNC_TOKEN`` →
``ResyncRequired`` → a full pass ending in a snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from connectors.google_api import classifier, execute
from connectors.page import Cursor, Page
from connectors.throttle import RetryPolicy, TokenBucket, budget_or_shared
from kizuna.errors import TransientError

READS_PER_MINUTE = 90
PERSON_FIELDS = "names,emailAddresses,phoneNumbers,organizations,birthdays,genders,metadata"
OTHER_FIELDS = "names,emailAddresses,phoneNumbers,metadata"

ListKind = Literal["connections", "other"]


class PeopleCursor(Cursor):
    sync_token: str | None = None
    page_token: str | None = None


@dataclass(frozen=True)
class PeopleOptions:
    account: str
    page_size: int = 1000
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    budget: TokenBucket | None = None
    fix: str = ""

    def bucket(self) -> TokenBucket:
        return budget_or_shared(self.budget, f"gpeople:{self.account}", per_minute=READS_PER_MINUTE)


def _request(service: Any, kind: ListKind, cursor: PeopleCursor, page_size: int) -> Any:
    common: dict[str, Any] = {"pageSize": page_size, "requestSyncToken": True}
    if cursor.sync_token:
        common["syncToken"] = cursor.sync_token
    if cursor.page_token:
        common["pageToken"] = cursor.page_token
    if kind == "connections":
        return (
            service.people()
            .connections()
            .list(resourceName="people/me", personFields=PERSON_FIELDS, **common)
        )
    return service.otherContacts().list(readMask=OTHER_FIELDS, **common)


def people(
    service: Any, cursor: PeopleCursor | None, opts: PeopleOptions, *, kind: ListKind
) -> Iterator[Page[PeopleCursor]]:
    """Pages of People API ``Person`` resources of one list of one account."""
    classify = classifier(opts.account, fix=opts.fix)
    # A stored page token the API no longer takes (400) restarts the sync, never blocks it.
    classify_resume = classifier(opts.account, fix=opts.fix, resync_statuses=frozenset({400}))
    bucket = opts.bucket()
    state = cursor or PeopleCursor()
    whole_pass = state.sync_token is None and state.page_token is None
    items_key = "connections" if kind == "connections" else "otherContacts"
    resuming = state.page_token is not None
    while True:
        resp = execute(
            _request(service, kind, state, opts.page_size),
            classify=classify_resume if resuming else classify,
            policy=opts.policy,
            budget=bucket,
            what=f"people {kind} for {opts.account}",
        )
        resuming = False
        records: list[dict[str, Any]] = []
        deleted: list[str] = []
        for person in resp.get(items_key) or []:
            rn = person.get("resourceName")
            if not isinstance(rn, str):
                continue
            if (person.get("metadata") or {}).get("deleted"):
                deleted.append(rn)
            else:
                records.append(person)
        token = resp.get("nextPageToken")
        if token:
            state = PeopleCursor(sync_token=state.sync_token, page_token=token)
            yield Page(records, state, deleted=deleted)
            continue
        new_sync = resp.get("nextSyncToken")
        if not isinstance(new_sync, str):
            raise TransientError(f"contacts of {opts.account}: last page without nextSyncToken")
        yield Page(
            records, PeopleCursor(sync_token=new_sync), deleted=deleted, snapshot_end=whole_pass
        )
        return
