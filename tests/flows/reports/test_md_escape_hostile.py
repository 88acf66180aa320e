"""``md_escape`` runs on whatever a customer wrote; its line folding was quadratic on long
blank runs (issue 16). Linear now, and still one line of literal text."""

from __future__ import annotations

import time

import pytest

from flows.reports.render import md_escape

HOSTILE = [" " * 100_000 + "x", " \n" * 50_000 + "x", "\t" * 100_000, "a \r\n " * 30_000]


@pytest.mark.parametrize("text", HOSTILE, ids=["blanks", "blank-lines", "tabs", "crlf"])
def test_long_adversarial_text_is_linear(text: str) -> None:
    started = time.perf_counter()
    out = md_escape(text)
    assert time.perf_counter() - started < 0.5
    assert "\n" not in out and "\r" not in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a  \n  b", "a b"),
        ("a\r\n\r\n  \n b", "a b"),
        ("\nb", " b"),
        ("a\n", "a "),
        ("*bold* [x]", "\\*bold\\* \\[x\\]"),
        ("no breaks  here", "no breaks  here"),
    ],
)
def test_folds_breaks_and_escapes(text: str, expected: str) -> None:
    assert md_escape(text) == expected
