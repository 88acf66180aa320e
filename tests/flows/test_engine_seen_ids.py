"""The compact seen-id set the engine keeps per pass: same answers as a set[str]."""

from __future__ import annotations

import random

from flows.seen_ids import SeenIds


def test_membership_and_missing_across_runs() -> None:
    ids = [f"row-{i}" for i in range(50_000)]
    s = SeenIds(recent_limit=1_000)  # small limit: many runs, merges and a partial recent set
    for start in range(0, len(ids), 2_000):
        s.update(ids[start : start + 2_000])
    assert len(s) == len(ids)
    assert all(sid in s for sid in ids[::97])
    assert "row-50000" not in s and "" not in s and 42 not in s
    stored = ids[::3] + [f"gone-{i}" for i in range(500)] + ["顧客-1", "\udcff"]
    assert list(s.missing(stored, batch=777)) == stored[-502:]


def test_add_new_flags_repeats_in_batch_and_across_batches() -> None:
    s = SeenIds(recent_limit=4)
    assert s.add_new(["a", "b", "a", "c"]) == [True, True, False, True]
    assert s.add_new(["c", "d", "d", "b", "e"]) == [False, True, False, False, True]
    assert s.add_new([]) == []
    s.add("f")
    assert s.add_new(["f", "g"]) == [False, True]
    assert len(s) == 7


def test_large_n_matches_a_plain_set() -> None:
    rng = random.Random(7)
    s = SeenIds(recent_limit=10_000)
    ref: set[str] = set()
    for _ in range(60):
        batch = [str(rng.randrange(400_000)) for _ in range(5_000)]
        expect = []
        for sid in batch:
            expect.append(sid not in ref)
            ref.add(sid)
        assert s.add_new(batch) == expect
    assert len(s) == len(ref)
    probe = [str(i) for i in range(400_000)]
    assert list(s.missing(probe)) == [sid for sid in probe if sid not in ref]


def test_clear_forgets_and_rekeys() -> None:
    s = SeenIds(recent_limit=2)
    s.update(["a", "b", "c"])
    key = s._key
    s.clear()
    assert "a" not in s and len(s) == 0 and s._key != key
    assert s.add_new(["a"]) == [True]
