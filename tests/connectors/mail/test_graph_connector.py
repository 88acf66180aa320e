"""Graph connector on the documented delta shapes (respx): links, @removed, resets, throttling,
client-credentials failures."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest
from pydantic import SecretStr

from connectors.mail.graph import (
    DeltaCursor,
    GraphAuth,
    GraphClient,
    GraphOptions,
    TokenSource,
    events,
    messages,
)
from connectors.throttle import RetryPolicy, TokenBucket
from kizuna.errors import AuthError, ResyncRequired, TransientError
from tests.support.fakes.graph_fakes import (
    ACCESS,
    BASE,
    CLIENT,
    MAILBOX,
    MBX,
    SECRET,
    TENANT,
    GraphScript,
    graph_error,
    graph_mock,
    message,
    page,
    removed,
    token_invalid_client,
    token_ok,
)

DELTA = f"{BASE}/users/{MBX}/mailFolders/inbox/messages/delta"


def api(client: httpx.Client, sleeps: list[float], retries: int = 2) -> GraphClient:
    auth = GraphAuth(
        tenant_id=TENANT,
        client_id=CLIENT,
        client_secret=SecretStr(SECRET),
        reauth_hint="Store it in M365_SECRET.",
    )
    opts = GraphOptions(
        mailbox=MAILBOX,
        page_size=2,
        policy=RetryPolicy(max_retries=retries, sleep=sleeps.append, rand=lambda: 0.25),
        budget=TokenBucket(100.0, 1000.0, clock=lambda: 0.0, sleep=sleeps.append),
    )
    return GraphClient(client, TokenSource(auth), opts)


def test_first_round_follows_next_links_to_the_delta_link() -> None:
    script = GraphScript(
        [
            page(
                [
                    message("AAMk-1", "<a1@customer.co.jp>"),
                    message("AAMk-2", "<a2@x.jp>", draft=True),
                ],
                next_link=f"{DELTA}?$skiptoken=SKIP-1",
            ),
            page(
                [message("AAMk-3", "<a3@customer.co.jp>")],
                delta_link=f"{DELTA}?$deltatoken=DELTA-1",
            ),
        ]
    )
    with graph_mock(script) as router, httpx.Client() as client:
        pages = list(messages(api(client, []), None))
        token_calls = router.calls.call_count - len(script.requests)

    assert [[m["id"] for m in p.records] for p in pages] == [["AAMk-1"], ["AAMk-3"]]
    assert pages[0].deleted == ["AAMk-2"]  # drafts are not mail we keep
    assert pages[0].cursor == DeltaCursor(link=f"{DELTA}?$skiptoken=SKIP-1")
    assert pages[1].cursor == DeltaCursor(link=f"{DELTA}?$deltatoken=DELTA-1", complete=True)
    assert [p.snapshot_end for p in pages] == [False, True]
    first, second = script.requests
    assert first.url.path == f"/v1.0/users/{MAILBOX}/mailFolders/inbox/messages/delta"
    select = first.url.params["$select"].split(",")
    assert "internetMessageId" in select and "internetMessageHeaders" in select
    assert first.headers["authorization"] == f"Bearer {ACCESS}"
    assert "odata.maxpagesize=2" in first.headers["prefer"]
    assert 'IdType="ImmutableId"' in first.headers["prefer"]
    assert 'IdType="ImmutableId"' in second.headers["prefer"]  # same preferences on every page
    assert str(second.url) == f"{DELTA}?$skiptoken=SKIP-1"
    assert token_calls == 1  # one token for the whole round


def test_next_round_from_the_delta_link_reports_removals() -> None:
    script = GraphScript(
        [
            page(
                [removed("AAMk-1"), message("AAMk-4", "<a4@customer.co.jp>")],
                delta_link=f"{DELTA}?$deltatoken=DELTA-2",
            )
        ]
    )
    cur = DeltaCursor(link=f"{DELTA}?$deltatoken=DELTA-1", complete=True)
    with graph_mock(script), httpx.Client() as client:
        pages = list(messages(api(client, []), cur))
    assert str(script.requests[0].url) == cur.link
    assert pages[0].deleted == ["AAMk-1"]
    assert [m["id"] for m in pages[0].records] == ["AAMk-4"]
    assert not pages[0].snapshot_end  # an incremental round is not a snapshot


@pytest.mark.parametrize(
    "response",
    [
        graph_error(410, "SyncStateNotFound", "The sync state generation is not found."),
        graph_error(400, "syncStateNotFound", "The sync state is not found or has expired."),
        graph_error(400, "SyncStateInvalid", "The sync state is invalid."),
    ],
    ids=["410", "400-syncStateNotFound", "400-SyncStateInvalid"],
)
def test_expired_delta_state_asks_for_a_resync(response: httpx.Response) -> None:
    script = GraphScript([response])
    cur = DeltaCursor(link=f"{DELTA}?$deltatoken=OLD", complete=True)
    with graph_mock(script), httpx.Client() as client, pytest.raises(ResyncRequired):
        list(messages(api(client, []), cur))


def test_429_and_503_retry_after_are_honoured() -> None:
    later = format_datetime(datetime(2099, 1, 1, tzinfo=UTC), usegmt=True)
    script = GraphScript(
        [
            graph_error(
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
                {"Retry-After": "7"},
            ),
            graph_error(503, "ServiceUnavailable", "Service unavailable", {"Retry-After": "1"}),
            page([], delta_link=f"{DELTA}?$deltatoken=D"),
        ]
    )
    sleeps: list[float] = []
    with graph_mock(script), httpx.Client() as client:
        pages = list(messages(api(client, sleeps), None))
    assert pages[0].cursor.complete
    assert sleeps == [7.0, 1.0]

    # A wait longer than the policy allows is handed to Prefect's retry instead of slept.
    script = GraphScript(
        [graph_error(429, "ApplicationThrottled", "throttled", {"Retry-After": later})]
    )
    sleeps.clear()
    with graph_mock(script), httpx.Client() as client, pytest.raises(TransientError) as info:
        list(messages(api(client, sleeps), None))
    assert sleeps == [] and (info.value.retry_after or 0) > 1000


def test_persistent_throttling_ends_in_transient_error_after_bounded_retries() -> None:
    script = GraphScript([graph_error(429, "TooManyRequests", "slow down")] * 3)
    sleeps: list[float] = []
    with graph_mock(script), httpx.Client() as client, pytest.raises(TransientError) as info:
        list(messages(api(client, sleeps, retries=2), None))
    assert sleeps == [0.25, 0.5]  # full jitter at rand=0.25: 0.25·1, 0.25·2
    assert MAILBOX in str(info.value) and info.value.retry_after is not None


def test_refused_client_secret_names_tenant_app_and_fix_never_the_secret() -> None:
    script = GraphScript([])
    with (
        graph_mock(script, token=[token_invalid_client()]),
        httpx.Client() as client,
        pytest.raises(AuthError) as info,
    ):
        list(messages(api(client, []), None))
    text = str(info.value)
    assert TENANT in text and CLIENT in text and "AADSTS7000215" in text
    assert "M365_SECRET" in text and "client secret" in text
    assert SECRET not in text and "SECRET" not in text.replace("M365_SECRET", "")
    assert script.requests == []


def test_graph_401_refreshes_the_token_once_then_fails_with_auth_error() -> None:
    expired = graph_error(401, "InvalidAuthenticationToken", "Access token has expired.")
    script = GraphScript([expired, expired])
    with (
        graph_mock(script, token=[token_ok("first"), token_ok("second")]),
        httpx.Client() as client,
        pytest.raises(AuthError) as info,
    ):
        list(messages(api(client, []), None))
    assert [r.headers["authorization"] for r in script.requests] == [
        "Bearer first",
        "Bearer second",
    ]
    assert MAILBOX in str(info.value) and "second" not in str(info.value)


def test_403_access_denied_says_which_permission() -> None:
    script = GraphScript([graph_error(403, "ErrorAccessDenied", "Access is denied.")])
    with graph_mock(script), httpx.Client() as client, pytest.raises(AuthError) as info:
        list(messages(api(client, []), None))
    assert "Mail.Read" in str(info.value) and MAILBOX in str(info.value)


def test_calendar_view_round_carries_its_window_and_renews_it() -> None:
    now = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    cal = f"{BASE}/users/{MBX}/calendarView/delta"
    script = GraphScript(
        [page([removed("AAMkEv-0", "event")], delta_link=f"{cal}?$deltatoken=C1", entity="event")]
    )
    with graph_mock(script), httpx.Client() as client:
        pages = list(events(api(client, []), None, past_days=30, future_days=60, now=lambda: now))
    params = script.requests[0].url.params
    assert params["startDateTime"] == "2026-02-01T00:00:00Z"
    assert params["endDateTime"] == "2026-05-02T00:00:00Z"
    assert pages[0].deleted == ["AAMkEv-0"]
    end = pages[0].cursor.window_end
    assert end == datetime(2026, 5, 2, tzinfo=UTC)

    assert pages[0].cursor.window_start == datetime(2026, 2, 1, tzinfo=UTC)

    # 40 days later less than half of the future window is left: the old round is drained
    # (its deletions still count), then a new round opens from the kept start to a new end.
    later = datetime(2026, 4, 12, tzinfo=UTC)
    script = GraphScript(
        [
            page(
                [removed("AAMkEv-1", "event")], delta_link=f"{cal}?$deltatoken=C2", entity="event"
            ),
            page([], next_link=f"{cal}?$skiptoken=N1", entity="event"),
            page([], delta_link=f"{cal}?$deltatoken=C3", entity="event"),
        ]
    )
    with graph_mock(script), httpx.Client() as client:
        renewed = list(
            events(
                api(client, []), pages[0].cursor, past_days=30, future_days=60, now=lambda: later
            )
        )
    assert str(script.requests[0].url) == f"{cal}?$deltatoken=C1"
    assert script.requests[1].url.params["startDateTime"] == "2026-02-01T00:00:00Z"
    assert script.requests[1].url.params["endDateTime"] == "2026-06-11T00:00:00Z"
    assert renewed[0].deleted == ["AAMkEv-1"]
    assert renewed[0].cursor.window_end == end  # still the old round's state
    assert renewed[-1].cursor.window_end == datetime(2026, 6, 11, tzinfo=UTC)
    # The new round covers every earlier window: its end is an exact snapshot.
    assert [p.snapshot_end for p in renewed] == [False, False, True]

    # An expired delta state (410) opens a new round over the kept window the same way.
    script = GraphScript(
        [
            graph_error(410, "SyncStateNotFound", "The sync state is not found."),
            page([], delta_link=f"{cal}?$deltatoken=C4", entity="event"),
        ]
    )
    with graph_mock(script), httpx.Client() as client:
        reset = list(
            events(
                api(client, []), renewed[-1].cursor, past_days=30, future_days=60, now=lambda: later
            )
        )
    assert script.requests[1].url.params["startDateTime"] == "2026-02-01T00:00:00Z"
    assert reset[-1].snapshot_end and reset[-1].cursor.window_start == datetime(
        2026, 2, 1, tzinfo=UTC
    )
