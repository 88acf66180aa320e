"""The rolling-window pacer: never more than the limit in any window, and no idle quota.

HubSpot counts calls over rolling windows (five searches in any second, 100 or 190 calls in
any ten seconds). A token bucket of capacity R lets nearly 2R calls into one rolling second;
these tests measure the windows the pacer actually produces, on a fake clock.
"""

from __future__ import annotations

import httpx

from connectors.crm.hubspot import HubSpot, read_objects
from connectors.throttle import Paced, RollingWindow, TokenBucket
from tests.connectors.test_throttle import FakeClock
from tests.support.fakes.fake_hubspot import FakeHubSpot


def busiest(starts: list[float], window: float) -> int:
    """The most starts in any closed window of the given length."""
    best, j = 0, 0
    for i, t in enumerate(starts):
        while starts[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def run(budget: object, clock: FakeClock, n: int) -> list[float]:
    starts = []
    for _ in range(n):
        budget.take()  # type: ignore[attr-defined]
        starts.append(clock.now())
        clock.sleep(0.01)  # each call takes 10 ms
        budget.settle()  # type: ignore[attr-defined]
    return starts


def test_a_token_bucket_lets_nearly_twice_the_rate_into_one_window() -> None:
    clock = FakeClock()
    starts = run(TokenBucket(5, 5, clock=clock.now, sleep=clock.sleep), clock, 40)
    assert busiest(starts, 1.0) >= 9  # what HubSpot answered with 429s


def test_the_rolling_window_keeps_the_limit_and_runs_at_it() -> None:
    clock = FakeClock()
    pace = RollingWindow(5, 1.0, clock=clock.now, sleep=clock.sleep)
    starts = run(pace, clock, 100)
    assert busiest(starts, 1.0) == 5
    rate = (len(starts) - 1) / (starts[-1] - starts[0])
    assert rate >= 0.98 * 5 * (99 / 100)  # counting from the answer costs the 10 ms call


def test_paced_takes_every_budget() -> None:
    clock = FakeClock()
    search = RollingWindow(5, 1.0, clock=clock.now, sleep=clock.sleep)
    every = RollingWindow(8, 10.0, clock=clock.now, sleep=clock.sleep)
    starts = run(Paced(search, every), clock, 24)
    assert busiest(starts, 1.0) <= 5 and busiest(starts, 10.0) == 8


class Timed(httpx.BaseTransport):
    """Records the fake clock's time of every request the connector sends."""

    def __init__(self, inner: httpx.BaseTransport, clock: FakeClock) -> None:
        self.inner, self.clock = inner, clock
        self.log: list[tuple[float, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.log.append((self.clock.now(), request.url.path))
        self.clock.sleep(0.02)
        return self.inner.handle_request(request)


def test_hubspot_paces_association_and_batch_reads_not_only_searches() -> None:
    fake = FakeHubSpot()
    for i in range(60):
        c = fake.add("companies", {"name": f"社{i}", "domain": f"c{i}.example"})
        p = fake.add("contacts", {"email": f"p{i}@c{i}.example"})
        fake.link("contacts", p["id"], "companies", c["id"])
    clock = FakeClock()
    client = fake.client()
    timed = Timed(client._transport, clock)
    client._transport = timed
    search = RollingWindow(5, 1.0, clock=clock.now, sleep=clock.sleep)
    every = RollingWindow(12, 10.0, clock=clock.now, sleep=clock.sleep)
    hs = HubSpot(client, search_budget=search, budget=every)
    pages = list(read_objects(hs, "contacts", None, limit=5, archived=False))
    assert sum(len(p.records) for p in pages) == 60
    all_calls = [t for t, _ in timed.log]
    searches = [t for t, path in timed.log if path.endswith("/search")]
    assert len(all_calls) > 3 * len(searches) - 5  # association + batch reads per page
    assert busiest(all_calls, 10.0) <= 12 and busiest(searches, 1.0) <= 5
