"""A small real Singer tap for the tests: people from a JSON-lines file, with a bookmark.

Speaks the Singer protocol on stdout (SCHEMA, RECORD, STATE); ``--state`` resumes after the
bookmarked line; ``--discover`` prints its catalog; ``--catalog`` sends only the streams it
selects. Config: ``data`` (the file), ``api_key`` (a secret it prints to stderr, so tests can
check that Kizuna masks it; ``"bad"`` fails as an auth error), ``state_every``,
``crash_after`` (exit ``crash_status``, default 1, after that many records, like a dropped
connection) and ``garbage`` (one line that is not JSON).
"""

from __future__ import annotations

import argparse
import json
import sys

_TEXT = {"type": ["null", "string"]}
CATALOG = {
    "streams": [
        {
            "tap_stream_id": "people",
            "stream": "people",
            "key_properties": ["id"],
            "schema": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "name": _TEXT,
                    "contact": {
                        "type": ["null", "object"],
                        "properties": {
                            "email": _TEXT,
                            "phones": {"type": "array", "items": _TEXT},
                        },
                    },
                    "company": {"type": "object", "properties": {"name": _TEXT}},
                    "tier": _TEXT,
                },
            },
            "metadata": [{"breadcrumb": [], "metadata": {"selected": True}}],
        },
        {
            "tap_stream_id": "audit",
            "stream": "audit",
            "key_properties": ["n"],
            "schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
            "metadata": [{"breadcrumb": [], "metadata": {"selected": False}}],
        },
    ]
}
"""What ``--discover`` prints: the two streams this tap sends."""


def emit(msg: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(msg, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--catalog")
    ap.add_argument("--state")
    ap.add_argument("--discover", action="store_true")
    args = ap.parse_args()
    with open(args.config, encoding="utf-8") as fh:
        config = json.load(fh)
    key = config["api_key"]
    print(f"tap-people: connecting with api key {key}", file=sys.stderr)
    if key == "bad":
        print("tap-people: authentication failed (401)", file=sys.stderr)
        return 1
    if args.discover:
        emit(CATALOG)
        return 0
    start = 0
    if args.state:
        with open(args.state, encoding="utf-8") as fh:
            start = json.load(fh)["bookmarks"]["people"]["offset"]
    print(f"tap-people: starting at offset {start}", file=sys.stderr)
    send = {"people", "audit"}
    if args.catalog:
        with open(args.catalog, encoding="utf-8") as fh:
            send = {
                s["tap_stream_id"]
                for s in json.load(fh)["streams"]
                for m in s.get("metadata", [])
                if m["breadcrumb"] == [] and m["metadata"].get("selected")
            }
    print(f"tap-people: sending {', '.join(sorted(send))}", file=sys.stderr)
    for stream, key in (("people", "id"), ("audit", "n")):
        if stream in send:
            emit({"type": "SCHEMA", "stream": stream, "key_properties": [key], "schema": {}})
    with open(config["data"], encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    every, crash = int(config.get("state_every", 2)), config.get("crash_after")
    for sent, (i, line) in enumerate(enumerate(lines[start:], start + 1), 1):
        if "people" in send:
            emit({"type": "RECORD", "stream": "people", "record": json.loads(line)})
        if "audit" in send:
            emit({"type": "RECORD", "stream": "audit", "record": {"n": i}})
        if config.get("garbage") and i == 2:
            sys.stdout.write("this is not json\n")
        if i % every == 0:
            emit({"type": "STATE", "value": {"bookmarks": {"people": {"offset": i}}}})
        if crash is not None and sent >= int(crash):
            print("tap-people: connection reset by peer", file=sys.stderr)
            return int(config.get("crash_status", 1))
    emit({"type": "STATE", "value": {"bookmarks": {"people": {"offset": len(lines)}}}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
