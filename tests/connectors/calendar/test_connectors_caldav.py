"""The CalDAV connector against a real Radicale: sync-token flow, invalid token, deletions,
and the ctag/etag fallback for servers without sync-collection."""

from __future__ import annotations

from typing import Any

import caldav
import pytest

from connectors.calendar.caldav_sync import CaldavCursor, read_calendar
from connectors.page import Page
from kizuna.errors import ResyncRequired, TransientError
from tests.support.servers import Radicale


def event(uid: str, summary: str, start: str = "20261120T010000Z", seq: int = 0) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kizuna test//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nSEQUENCE:{seq}\r\n"
        f"DTSTART:{start}\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\n"
        "ORGANIZER;CN=佐藤:mailto:sato@kizuna.example\r\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:tanaka@customer.co.jp\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


class Cal:
    """One fresh calendar on the shared Radicale, and a client for it."""

    def __init__(self, server: Radicale) -> None:
        self.server = server
        self.url, self.user = server.new_calendar()
        self.client = caldav.DAVClient(url=self.url, username=self.user, password="x")
        self.calendar = self.client.calendar(url=self.url)

    def put(self, name: str, ics: str) -> None:
        self.server.put(self.url, self.user, name, ics)

    def delete(self, name: str) -> None:
        self.server.delete(self.url, self.user, name)

    def sync(
        self, cursor: CaldavCursor | None, **kw: Any
    ) -> tuple[list[Page[CaldavCursor]], CaldavCursor | None]:
        pages = list(read_calendar(self.calendar, cursor, **kw))
        return pages, (pages[-1].cursor if pages else cursor)


@pytest.fixture
def cal(radicale_server: Radicale) -> Any:
    c = Cal(radicale_server)
    yield c
    c.client.close()


def _hrefs(pages: list[Page[CaldavCursor]]) -> list[str]:
    return [r["href"] for p in pages for r in p.records]


def test_full_pass_then_sync_token_changes_and_deletions(cal: Cal) -> None:
    for i in range(5):
        cal.put(f"e{i}.ics", event(f"e{i}@kizuna", f"商談 {i}"))
    pages, cur = cal.sync(None, page_size=2)
    assert [len(p.records) for p in pages] == [2, 2, 1]
    assert [p.snapshot_end for p in pages] == [False, False, True]
    # The token is stored only with the page that completes the pass.
    assert [p.cursor.sync_token is None for p in pages] == [True, True, False]
    assert "SUMMARY:商談 0" in pages[0].records[0]["ics"]
    assert pages[0].records[0]["href"].endswith("/e0.ics") and pages[0].records[0]["etag"]

    again, cur2 = cal.sync(cur)
    assert again == [] and cur2 == cur

    cal.put("e1.ics", event("e1@kizuna", "商談 1 (変更)", seq=1))
    cal.put("e9.ics", event("e9@kizuna", "新規"))
    cal.delete("e3.ics")
    pages, cur3 = cal.sync(cur)
    assert sorted(h.rsplit("/", 1)[1] for h in _hrefs(pages)) == ["e1.ics", "e9.ics"]
    assert [d.rsplit("/", 1)[1] for p in pages for d in p.deleted] == ["e3.ics"]
    assert not any(p.snapshot_end for p in pages)
    assert cur3 is not None and cur3.sync_token != cur.sync_token  # type: ignore[union-attr]


def test_invalid_token_asks_for_a_resync(cal: Cal) -> None:
    cal.put("a.ics", event("a@kizuna", "a"))
    _, cur = cal.sync(None)
    assert cur is not None
    bogus = cur.model_copy(update={"sync_token": "http://radicale.org/ns/sync/" + "0" * 64})
    with pytest.raises(ResyncRequired):
        cal.sync(bogus)


def test_empty_calendar_ends_a_pass_with_no_records(cal: Cal) -> None:
    pages, cur = cal.sync(None)
    assert len(pages) == 1 and pages[0].records == [] and pages[0].snapshot_end
    assert cur is not None and cur.sync_token


def test_moved_window_rereads_everything(cal: Cal) -> None:
    cal.put("a.ics", event("a@kizuna", "a"))
    _, cur = cal.sync(None, window=("2026-01-05", "2026-12-28"))
    pages, cur2 = cal.sync(cur, window=("2026-01-05", "2027-01-04"))
    assert len(_hrefs(pages)) == 1 and pages[-1].snapshot_end
    assert cur2 is not None and cur2.window == ("2026-01-05", "2027-01-04")


def test_etag_fallback_without_sync_collection(cal: Cal) -> None:
    for i in range(3):
        cal.put(f"e{i}.ics", event(f"e{i}@kizuna", f"m{i}"))
    pages, cur = cal.sync(None, use_sync=False, page_size=2)
    assert len(_hrefs(pages)) == 3
    assert cur is not None and cur.ctag and cur.etags and len(cur.etags) == 3
    assert cur.sync_token is None
    assert cal.sync(cur, use_sync=False)[0] == []  # ctag unchanged: one PROPFIND, no pages
    cal.put("e0.ics", event("e0@kizuna", "m0 moved", start="20261121T010000Z", seq=1))
    cal.delete("e2.ics")
    pages, cur2 = cal.sync(cur, use_sync=False)
    assert [h.rsplit("/", 1)[1] for h in _hrefs(pages)] == ["e0.ics"]
    assert [d.rsplit("/", 1)[1] for p in pages for d in p.deleted] == ["e2.ics"]
    assert cur2 is not None and cur2.etags is not None and len(cur2.etags) == 2


def test_etag_fallback_first_pass_restarts_and_later_diffs_resume_mid_way(cal: Cal) -> None:
    cal.put("old.ics", event("old@kizuna", "old"))
    cal.put("gone.ics", event("gone@kizuna", "gone"))
    first_pass = list(read_calendar(cal.calendar, None, use_sync=False, page_size=1))
    # Nothing to diff against yet: until the pass ends the cursor says "start over".
    assert [p.cursor.etags is None for p in first_pass] == [True, False]
    assert [p.snapshot_end for p in first_pass] == [False, True]
    cur = first_pass[-1].cursor
    cal.delete("gone.ics")
    for i in range(5):
        cal.put(f"e{i}.ics", event(f"e{i}@kizuna", f"m{i}"))
    first = next(iter(read_calendar(cal.calendar, cur, use_sync=False, page_size=2)))
    assert [d.rsplit("/", 1)[1] for d in first.deleted] == ["gone.ics"]
    assert first.cursor.etags is not None and len(first.cursor.etags) == 3  # old + 2 stored
    rest, _ = cal.sync(first.cursor, use_sync=False, page_size=2)
    assert len(_hrefs(rest)) == 3
    assert set(_hrefs(rest)).isdisjoint(r["href"] for r in first.records)


def test_unreachable_server_is_transient() -> None:
    from tests.support.servers import free_port

    url = f"http://127.0.0.1:{free_port()}/u/work/"
    client = caldav.DAVClient(url=url, username="u", password="x")
    with pytest.raises(TransientError):
        list(read_calendar(client.calendar(url=url), None))
    client.close()
