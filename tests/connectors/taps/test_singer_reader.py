"""The Singer reader on hostile tap output: over-long lines, non-objects, missing records."""

from __future__ import annotations

import json
import sys

from connectors.taps.singer import SingerCursor, TapRun, pages

LINES = [
    {"type": "SCHEMA", "stream": "s", "key_properties": ["id"], "schema": {}},
    "x" * 5000,
    [1, 2],
    {"type": "RECORD", "stream": "s"},
    {"type": "RECORD", "stream": "s", "record": {"id": 1}},
    {"type": "RECORD", "stream": "other", "record": {"id": 2}},
    {"type": "STATE", "value": {"at": 1}},
]


def _tap() -> list[str]:
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in LINES)
    return [sys.executable, "-c", f"import sys; sys.stdout.write({text!r} + '\\n')"]


def test_bad_lines_are_quarantined_and_the_rest_lands() -> None:
    run = TapRun(command=_tap(), config={}, streams=frozenset({"s"}))
    got = list(pages(run, None, max_line_bytes=1024))
    records = [r for p in got for r in p.records]
    bad = [b.reason for p in got for b in p.bad]
    assert records == [{"stream": "s", "key": ["id"], "record": {"id": 1}}]
    assert bad == [
        "tap output line 2: line longer than 1024 bytes",
        "tap output line 3: not a Singer message (a JSON object)",
        "tap output line 4: RECORD of 's' without a record object",
    ]
    assert got[-1].cursor == SingerCursor(state={"at": 1})


def test_state_is_passed_back_to_the_tap() -> None:
    script = "import sys, json; a = sys.argv; print(json.dumps({'type': 'STATE', 'value': json.load(open(a[a.index('--state') + 1]))}))"
    run = TapRun(command=[sys.executable, "-c", script], config={})
    got = list(pages(run, SingerCursor(state={"bookmark": 7})))
    assert got[-1].cursor.state == {"bookmark": 7}
