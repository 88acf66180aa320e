"""Calendar benchmark: a folder of .ics files through the connector and the mapping (split by
UID, X-WR-TIMEZONE, zone checks, expansion with the history-horizon count, meeting records),
against recurring-ical-events' own expansion of the same files in the same run (the floor:
parsing and expanding, nothing else).

    python bench/bench_calendar.py                 # 400 files, 3 repeats
    python bench/bench_calendar.py --files 2000 --repeat 1

Prints files/s, occurrences/s and peak Python memory (tracemalloc) for each, and the ratio.
Not part of the test suite; no database is touched (the write path has its own bench).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Tokyo")
START, END = date(2025, 9, 1), date(2026, 6, 8)


def _event(i: int) -> str:
    """Four shapes in turn: TZID weekly, floating under X-WR-TIMEZONE, a THISANDFUTURE
    override, and a series that began before the window (its older part is counted)."""
    kind = i % 4
    head = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//bench//EN\n"
    if kind == 1:
        head += "X-WR-TIMEZONE:Europe/Berlin\n"
    uid = f"bench-{i}@example.com"
    if kind == 0:
        body = (
            f"BEGIN:VEVENT\nUID:{uid}\nDTSTART;TZID=Asia/Tokyo:20251006T100000\n"
            f"DURATION:PT1H\nRRULE:FREQ=WEEKLY;COUNT=30\nSUMMARY:定例 {i}\nEND:VEVENT\n"
        )
    elif kind == 1:
        body = (
            f"BEGIN:VEVENT\nUID:{uid}\nDTSTART:20251007T100000\nDTEND:20251007T110000\n"
            f"RRULE:FREQ=WEEKLY;COUNT=30\nSUMMARY:floating {i}\nEND:VEVENT\n"
        )
    elif kind == 2:
        body = (
            f"BEGIN:VEVENT\nUID:{uid}\nDTSTART:20251008T010000Z\nDURATION:PT1H\n"
            f"RRULE:FREQ=WEEKLY;COUNT=30\nSUMMARY:moved {i}\nEND:VEVENT\n"
            f"BEGIN:VEVENT\nUID:{uid}\nSEQUENCE:1\n"
            "RECURRENCE-ID;RANGE=THISANDFUTURE:20251210T010000Z\n"
            f"DTSTART:20251210T050000Z\nDURATION:PT1H\nSUMMARY:moved {i}\nEND:VEVENT\n"
        )
    else:
        body = (
            f"BEGIN:VEVENT\nUID:{uid}\nDTSTART:20240101T010000Z\nDURATION:PT1H\n"
            f"RRULE:FREQ=WEEKLY;COUNT=120\nSUMMARY:old {i}\nEND:VEVENT\n"
        )
    return (head + body + "END:VCALENDAR\n").replace("\n", "\r\n")


def library(folder: Path) -> int:
    import icalendar
    import recurring_ical_events

    start = datetime.combine(START, dtime(0), TZ)
    end = datetime.combine(END, dtime(0), TZ)
    n = 0
    for f in sorted(folder.glob("*.ics")):
        cal = icalendar.Calendar.from_ical(f.read_bytes())
        n += len(recurring_ical_events.of(cal).between(start, end))
    return n


def kizuna(folder: Path) -> int:
    from connectors.files.icsfiles import events
    from mappings.calendar.events import events_to_activities

    window = [START.isoformat(), END.isoformat()]
    start = datetime.combine(START, dtime(0), TZ)
    end = datetime.combine(END, dtime(0), TZ)
    n = 0
    for page in events(folder, None, window=window):
        for raw in page.records:
            n += len(
                events_to_activities(
                    raw["ics"],
                    own_domains=["example.co.jp"],
                    window_start=start,
                    window_end=end,
                    default_tz=TZ,
                    notes=[],
                )
            )
    return n


def measure(label: str, fn: Callable[[Path], int], folder: Path, files: int, repeat: int) -> float:
    times, peak, occ = [], 0, 0
    for _ in range(repeat):
        tracemalloc.start()
        t0 = time.perf_counter()
        occ = fn(folder)
        times.append(time.perf_counter() - t0)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    s = statistics.median(times)
    print(
        f"| {label} | {files / s:,.0f} | {occ / s:,.0f} | {occ:,} | {peak / 2**20:.1f} |",
        flush=True,
    )
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i in range(args.files):
            (folder / f"e{i:05d}.ics").write_text(_event(i), encoding="utf-8", newline="")
        print("| path | files/s | occurrences/s | occurrences | peak MiB |")
        print("|---|---|---|---|---|")
        base = measure(
            "recurring-ical-events alone (baseline)", library, folder, args.files, args.repeat
        )
        ours = measure("kizuna connector + mapping", kizuna, folder, args.files, args.repeat)
        print(f"\nkizuna / baseline time: {ours / base:.2f}x")


if __name__ == "__main__":
    main()
