"""The bulk shortcuts a million rows need give what the row-by-row forms give."""

from __future__ import annotations

import numpy as np

from warehouse.identity.linkage import guard
from warehouse.identity.linkage.contacts import is_role_mailbox
from warehouse.identity.linkage.frame import encode, encode_from


def test_components_label_each_row_with_the_smallest_row_it_reaches() -> None:
    i = np.array([5, 1, 3, 7], np.int64)
    j = np.array([6, 5, 4, 8], np.int64)
    got = guard.components(10, i, j)
    assert got.tolist() == [0, 1, 2, 3, 3, 1, 1, 7, 7, 9]


def test_codes_from_distinct_values_equal_codes_of_the_rows() -> None:
    rng = np.random.default_rng(3)
    values = ["", "b", "a", "b", "c", "", "d"]  # repeats and blanks, as groups carry them
    src = rng.integers(0, len(values), 200)
    col = np.asarray([values[k] for k in src.tolist()], dtype=object)
    want, got = encode(col), encode_from(values, src)
    assert got.values == want.values
    assert got.codes.tolist() == want.codes.tolist()


def test_role_mailboxes_by_whole_local_part_or_its_head() -> None:
    assert is_role_mailbox("info@x.co.jp") and is_role_mailbox("EIGYO-bu@x.jp")
    assert is_role_mailbox("info.tokyo@x.jp") and is_role_mailbox("no-reply@x.jp")
    assert is_role_mailbox("sales")  # no domain: the whole text is the local part
    # 'no-reply' is a role only whole: its head 'no' is nobody's role.
    assert not is_role_mailbox("no-reply.tokyo@x.jp")
    assert not is_role_mailbox("infox@x.jp") and not is_role_mailbox("t.sato@info.jp")
