"""Stored features and block keys computed column by column (``linkage.index``)."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import orjson

from warehouse.identity.blocking import digest
from warehouse.identity.keys.matching import PersonFeatures
from warehouse.identity.linkage import index
from warehouse.identity.linkage.features import Columns


def _people(n: int, seed: int = 3) -> list[PersonFeatures]:
    rng = random.Random(seed)
    names = [("tanaka", "taro"), ("suzuki", "hanako"), ("sato",), ("yamada", "yamaguchi")]
    out = []
    for k in range(n):
        toks = rng.choice(names)
        out.append(
            PersonFeatures(
                id=100 + k,
                name=rng.choice(["田中太郎", "鈴木花子", "", "佐藤"]),
                tokens=tuple(toks),
                emails=tuple(
                    sorted(
                        rng.sample(
                            ["taro.t@abc.co.jp", "info@abc.co.jp", "h@x.jp", "yamada99@gmail.com"],
                            k % 3,
                        )
                    )
                ),
                phones=tuple(sorted(rng.sample(["+81312345678", "+819012345678"], k % 2))),
                org=rng.choice(["abc", "", "エービーシー"]),
                domain=rng.choice(["abc.co.jp", ""]),
                dob=rng.choice(["19800101", ""]),
                address=rng.choice(["東京都港区1-1", "", '引用"符\\']),
                postcode=rng.choice(["1050001", ""]),
                ext=rng.choice(["M-1", ""]),
                trusted=bool(k % 2),
                corp=rng.choice(["1234567890123", ""]),
                legal=rng.choice(["kk", ""]),
                org_sound=rng.choice(["bc", ""]),
            )
        )
    return out


def _reference_json(f: PersonFeatures) -> str:
    fields = [
        f.name,
        f.tokens,
        f.emails,
        f.phones,
        f.org,
        f.domain,
        f.dob,
        f.address,
        f.postcode,
        f.ext,
        int(f.trusted),
        f.corp,
        f.legal,
        f.org_sound,
    ]
    return orjson.dumps(fields).decode()


def test_stored_features_are_the_json_of_each_row_and_read_back_equal() -> None:
    people = _people(200)
    cols = Columns.of(people)
    chunks = list(index.dumps(cols, size=64))
    assert [len(ids) for ids, _ in chunks] == [64, 64, 64, 8]
    got = [s for _, part in chunks for s in part]
    assert got == [_reference_json(f) for f in people]
    assert [i for ids, _ in chunks for i in ids.tolist()] == [f.id for f in people]
    assert [PersonFeatures.loads(f.id, s) for f, s in zip(people, got, strict=True)] == people
    # Read back as columns in one parse (the incremental path): the same rows.
    assert index.loads(list(zip([f.id for f in people], got, strict=True))).features() == people


def test_a_row_stored_before_the_last_fields_existed_reads_back_with_their_defaults() -> None:
    old = orjson.dumps(["田中太郎", ["tanaka", "taro"], ["t@x.jp"], [], "abc", "", "", "", "", ""])
    f = PersonFeatures.loads(7, old.decode())
    assert (f.trusted, f.corp, f.legal, f.org_sound) == (False, "", "", "")
    assert index.loads([(7, old.decode())]).features() == [f]
    assert index.loads([]).features() == []


def test_a_rows_fingerprint_follows_its_stored_text_whatever_the_value_tables() -> None:
    people = _people(300)
    cols = Columns.of(people)
    texts = {
        i: s for ids, part in index.dumps(cols) for i, s in zip(ids.tolist(), part, strict=True)
    }
    fp = dict(zip(cols.ids.tolist(), index.fingerprints(cols).tolist(), strict=True))
    by_text: dict[str, set[int]] = {}
    for rid, text in texts.items():
        by_text.setdefault(text, set()).add(fp[rid])
    assert all(len(f) == 1 for f in by_text.values())  # equal text: one fingerprint
    assert len(set(fp.values())) == len(by_text)  # different text: different fingerprints
    # Other value tables (rows in another order, every value coded anew): the same per row.
    again = Columns.of(people[::-1])
    assert dict(zip(again.ids.tolist(), index.fingerprints(again).tolist(), strict=True)) == fp
    # A list's order, a value moved to another field, trust: each changes the fingerprint.
    f = PersonFeatures(1, tokens=("tanaka",), emails=("a@x.jp", "b@x.jp"), org="abc")
    variants = [
        f,
        replace(f, emails=("b@x.jp", "a@x.jp")),
        replace(f, emails=("a@x.jp",), phones=("b@x.jp",)),
        replace(f, org="", domain="abc"),
        replace(f, trusted=not f.trusted),
        replace(f, emails=()),
    ]
    got = index.fingerprints(Columns.of(variants)).tolist()
    assert len(set(got)) == len(variants)


def test_value_hashes_kept_from_range_to_range_are_those_of_the_values() -> None:
    people = _people(120)
    cols = Columns.of(people)
    hashed = index.Hashed()
    assert index.fingerprints(cols, hashed).tolist() == index.fingerprints(cols).tolist()
    # A table that grows (a run's memo, range after range): only the new values are hashed.
    table: list[str] = ["a@x.jp"]
    first = hashed.of(table).tolist()
    table += ["b@x.jp", "c@x.jp"]
    grown = hashed.of(table).tolist()
    assert grown[:1] == first and len(grown) == 3
    assert grown == index.text_digests([f'"{v}"' for v in table]).view(np.uint64).tolist()
    assert hashed.of(["b@x.jp"]).tolist() == grown[1:2]  # another list: its own hashes


def _keys_of(people: list[PersonFeatures]) -> dict[int, set[tuple[int, str]]]:
    d, r, t = index.keys(Columns.of(people))
    out: dict[int, set[tuple[int, str]]] = {f.id: set() for f in people}
    for dig, rid, tag in zip(d.tolist(), r.tolist(), t.tolist(), strict=True):
        out[rid].add((dig, index.TAGS[tag]))
    return out


def test_one_field_keys_are_the_digest_of_their_text() -> None:
    f = PersonFeatures(
        1,
        tokens=("tanaka", "taro"),
        emails=("taro.t@abc.co.jp", "info@abc.co.jp"),
        phones=("+81312345678",),
        ext="M-1",
    )
    got = _keys_of([f])[1]
    for text, tag in (
        ("e|taro.t@abc.co.jp", "e"),
        ("e|info@abc.co.jp", "e"),
        ("l|taro.t", "l"),
        ("p|+81312345678", "p"),
        ("x|M-1", "x"),
        ("t|tana|taro", "t"),
    ):
        assert (digest(text), tag) in got
    # ``info`` is a role mailbox: no local-part key; no company, birth date or postcode.
    assert {tag for _, tag in got} == {"e", "l", "p", "x", "t"}


def test_keys_are_shared_exactly_when_their_fields_are() -> None:
    base = PersonFeatures(
        1, name="田中太郎", tokens=("taro", "tanaka"), org="abc", dob="19800101", postcode="1050001"
    )
    same_order = replace(base, id=2, tokens=("tanaka", "taro"))  # readings compare sorted
    other_org = replace(base, id=3, org="xyz")
    domain_only = replace(base, id=4, org="", domain="abc")
    got = _keys_of([base, same_order, other_org, domain_only])
    tags = lambda rid: {tag for _, tag in got[rid]}  # noqa: E731
    assert tags(1) == {"t", "no", "nb", "nz", "b", "z", "k", "d"}
    assert got[1] == got[2]
    shared = {tag for d, tag in got[1] & got[3]}
    assert shared == {"t", "nb", "nz", "b", "z", "d"}  # not the company keys
    # A company known only by its mail domain stands in for the name.
    assert {tag for _, tag in got[1] & got[4]} == tags(1)
    # Two-field keys of different kinds never coincide, nor do the fields swapped.
    flipped = replace(base, id=5, dob="1050001", postcode="19800101")
    assert not {d for d, tag in got[1] if tag == "d"} & {d for d, _ in _keys_of([flipped])[5]}


def test_keys_do_not_depend_on_the_other_rows() -> None:
    people = _people(300)
    whole = _keys_of(people)
    for f in people[::37]:
        assert _keys_of([f])[f.id] == whole[f.id]
    d, r, _ = index.keys(Columns.of(people))
    pairs = list(zip(d.tolist(), r.tolist(), strict=True))
    assert pairs == sorted(set(pairs))  # sorted by digest then row, each once


def test_the_key_scheme_is_pinned_because_stored_keys_outlive_it() -> None:
    """A full run keeps a stored row's keys while its features are unchanged, so keys made
    another way would never be rewritten. If this fails, you changed how keys are made:
    add a migration that deletes the people's keys (as ``0100_identity_key_mix`` does), so
    the next full run writes every key again, then update the digests here."""
    f = PersonFeatures(
        1,
        name="田中太郎",
        tokens=("taro", "tanaka"),
        emails=("taro.t@abc.co.jp",),
        phones=("+81312345678",),
        org="abc",
        dob="19800101",
        postcode="1050001",
        ext="M-1",
    )
    d, _, t = index.keys(Columns.of([f]))
    assert sorted(zip([index.TAGS[x] for x in t.tolist()], d.tolist(), strict=True)) == [
        ("b", -5562786781312589517),
        ("d", 5257910875827058554),
        ("e", -1344951572759641654),
        ("k", 4725387981574504609),
        ("l", -407614345098893659),
        ("nb", 5276368368189259909),
        ("no", -6922363068014523297),
        ("nz", -3107050908377655323),
        ("p", 5256797644322051633),
        ("t", -2686177067637448333),
        ("x", 713062184469923868),
        ("z", 1570794258129360233),
        ("z", 6325827383144743098),
    ]


def test_distinct_keys_are_sorted_by_digest_then_record_whatever_order_they_come_in() -> None:
    """Equal digests from rows in any order (two kinds of key giving one digest, or rows
    not in id order) end up in record order, each pair once: the same as a lexsort."""
    rng = np.random.default_rng(7)
    for n, digests in ((0, 1), (1, 1), (50, 3), (2000, 40), (20000, 5000)):
        d = rng.integers(-(2**63), 2**63 - 1, digests, dtype=np.int64)[rng.integers(0, digests, n)]
        r = rng.integers(0, 300, n).astype(np.int64)
        t = rng.integers(0, len(index.TAGS), n).astype(np.int8)
        got_d, got_r, got_t = index.distinct(d.copy(), r.copy(), t.copy())
        order = np.lexsort((r, d))
        pairs = list(dict.fromkeys(zip(d[order].tolist(), r[order].tolist(), strict=True)))
        assert list(zip(got_d.tolist(), got_r.tolist(), strict=True)) == pairs
        assert index.in_order(got_d, got_r)
        # each pair's tag is one the input gave that pair
        given = set(zip(d.tolist(), r.tolist(), t.tolist(), strict=True))
        assert all(
            k in given for k in zip(got_d.tolist(), got_r.tolist(), got_t.tolist(), strict=True)
        )
