"""Nested records flattened to dotted columns, with bounds a hostile record cannot pass."""

from __future__ import annotations

from mappings.spreadsheet.nested import MAX_COLUMNS, flatten


def test_dotted_paths_lists_and_scalars() -> None:
    got = flatten(
        {
            "name": "山田",
            "contact": {"emails": ["a@x.example", "b@x.example"], "vip": True, "n": 3},
            "phones": [{"number": "03-1234-5678"}],
            "none": None,
        }
    )
    assert got == {
        "name": "山田",
        "contact.emails": "a@x.example, b@x.example",
        "contact.vip": "true",
        "contact.n": "3",
        "phones.0.number": "03-1234-5678",
        "none": "",
    }


def test_depth_and_width_are_bounded() -> None:
    deep: dict[str, object] = {"v": 1}
    for _ in range(50):
        deep = {"d": deep}
    (only,) = flatten(deep).values()
    assert only.startswith("{")  # kept as JSON text past the depth bound
    assert len(flatten({f"k{i}": i for i in range(10_000)})) == MAX_COLUMNS
