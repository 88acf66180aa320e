"""Every test calendar recurring-ical-events ships, mapped file by file: the meetings Kizuna
makes equal the library's own expansion for the same (fixed) window, except where Kizuna
deliberately differs, each named here with the reason."""

from __future__ import annotations

import contextlib
import warnings
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events

from connectors.files.ical_split import split_by_uid
from kizuna.errors import BadRecord
from mappings.calendar.events import events_to_activities

CORPUS = Path(recurring_ical_events.__file__).parent / "test" / "calendars"
TZ = ZoneInfo("Asia/Tokyo")
START, END = datetime(2016, 12, 5, tzinfo=TZ), datetime(2027, 12, 6, tzinfo=TZ)

# file → (Kizuna's meetings, the library's occurrences), where they differ on purpose.
DIFFERENT = {
    # Single events are one fact each and kept whatever their date; the library's count
    # covers only the window.
    "Germany.ics": (159, 56),
    "fablab_cottbus.ics": (147, 146),
    "issue_15_duplicated_events.ics": (3, 0),
    "issue_201_test_matrix.ics": (15, 0),
    # An event that ends before it starts is quarantined; the library swaps the two.
    "end_before_start_event.ics": (0, 1),
    "issue_132_swapped_start_and_end.ics": (0, 1),
    # A rule the library refuses too (UNTIL missing where the rule needs it).
    "bad_rrule_missing_until_event.ics": (0, -1),
}


def _ours(path: Path) -> int:
    n = 0
    errors: dict[str, str] = {}
    for text in split_by_uid(path.read_bytes(), errors=errors).values():
        with contextlib.suppress(BadRecord):
            n += len(
                events_to_activities(
                    text,
                    own_domains=[],
                    window_start=START,
                    window_end=END,
                    default_tz=TZ,
                    max_occurrences=10_000,
                )
            )
    return n


def _library(path: Path) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cal = icalendar.Calendar.from_ical(path.read_bytes())
            return len(recurring_ical_events.of(cal).between(START, END))
        except Exception:
            return -1


@pytest.mark.slow
def test_occurrence_counts_equal_the_librarys_own_expansion() -> None:
    files = sorted(CORPUS.glob("*.ics"))
    assert len(files) > 90
    got = {f.name: (_ours(f), _library(f)) for f in files}
    differ = {name: pair for name, pair in got.items() if pair[0] != pair[1]}
    assert differ == DIFFERENT
    assert got["issue_75_range_parameter.ics"] == (193, 193)  # RANGE=THISANDFUTURE
    assert sum(a for a, _ in got.values()) > 20_000
