"""Events for automations: emitted from flow runs, with counts and no payload data."""

from __future__ import annotations

from typing import Any

import pytest
from prefect import flow

from flows.ops import events


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []

    def record(event: str, resource: dict[str, str], payload: dict[str, Any]) -> None:
        got.append({"event": event, "resource": resource["prefect.resource.id"], **payload})

    monkeypatch.setattr("prefect.events.emit_event", record)
    return got


RESULTS = [
    {"connector": "crm", "stream": "Contact", "error": "401 token revoked"},
    {"connector": "files", "stream": "customers", "quarantined": 3},
    {"connector": "files", "stream": "deals", "quarantined": 0},
]


def test_each_failed_or_quarantining_stream_is_an_event(
    prefect_harness: None, sent: list[dict[str, Any]]
) -> None:
    @flow(name="kizuna-test-events")
    def run() -> None:
        events.after_sync(RESULTS)
        events.after_resolve({"reviews": 12})
        events.after_resolve({"reviews": 0})
        events.after_campaign("seminar", {"sent": 10, "in_doubt": 2})

    run()
    assert sent == [
        {
            "event": "kizuna.stream.failed",
            "resource": "kizuna.stream.crm.Contact",
            "error": "401 token revoked",
        },
        {
            "event": "kizuna.stream.quarantined",
            "resource": "kizuna.stream.files.customers",
            "quarantined": 3,
        },
        {"event": "kizuna.review.pending", "resource": "kizuna.identity", "reviews": 12},
        {"event": "kizuna.campaign.held", "resource": "kizuna.campaign.seminar", "held": 2},
    ]


def test_outside_a_flow_run_nothing_is_sent(sent: list[dict[str, Any]]) -> None:
    events.after_sync(RESULTS)
    assert sent == []
