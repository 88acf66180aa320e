"""People as columns: one numpy array per comparable field, so pairs are compared in bulk.

Built once per run from the features the resolver keeps (``matching.PersonFeatures``).
Multi-valued fields (mail addresses, phones, local parts) are exploded to (row, value code)
arrays; a value several different names use (a team mailbox, a switchboard) is marked shared
here, from the data, so that it counts as workplace evidence and never as the person's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from warehouse.identity.linkage.contacts import is_personal_phone, is_role_mailbox, shared_values
from warehouse.identity.readings import _GENERIC_LOCAL, is_japanese

if TYPE_CHECKING:
    from warehouse.identity.matching import PersonFeatures

Strs = NDArray[np.object_]
Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]


@dataclass
class Multi:
    """A multi-valued field: row ``rec[k]`` holds value code ``val[k]``."""

    rec: Ints
    val: Ints
    shared: Bools  # per value code
    values: list[str]

    def membership(self) -> Ints:
        """Sorted codes ``row * V + value`` for fast "does row j hold value v" checks."""
        return np.unique(self.rec * len(self.values) + self.val)


@dataclass
class Coded:
    """A column as integer codes: ``values[codes[row]]`` is the row's value; code 0 is empty.

    Comparisons work on codes (presence, equality, and similarity once per distinct pair of
    values), so a million rows of repeated names cost a dictionary pass, not a million
    string comparisons."""

    codes: Ints
    values: list[str]


def encode(col: Strs) -> Coded:
    table: dict[str, int] = {"": 0}
    put = table.setdefault
    codes = np.fromiter((put(v, len(table)) for v in col), np.int64, col.shape[0])
    return Coded(codes, list(table))


JOINT = {
    "fam": ("fam", "giv"),
    "giv": ("fam", "giv"),
    "dob": ("dob", "dob_swap"),
    "dob_swap": ("dob", "dob_swap"),
}


@dataclass
class Frame:
    ids: Ints
    fam: Strs
    giv: Strs
    full: Strs
    nameset: Strs  # reading tokens sorted: TANAKA Taro and Taro Tanaka alike
    name: Strs
    japanese: Bools
    trusted: Bools
    dob: Strs
    dob_swap: Strs
    address: Strs
    postcode: Strs
    ext: Strs
    org: Strs
    org_sound: Strs
    legal: Strs
    corp: Strs
    domain: Strs
    email: Multi
    phone: Multi
    local: Multi
    _coded: dict[str, Coded] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def column(self, name: str) -> Strs:
        got = getattr(self, name)
        assert isinstance(got, np.ndarray)
        return got

    def coded(self, name: str) -> Coded:
        """The column ``name`` (``fam``, or ``fam:4`` for its first four characters) as codes,
        computed once per frame."""
        got = self._coded.get(name)
        if got is None:
            col, _, cut = name.partition(":")
            if cut:
                whole = self.coded(col)
                n = int(cut)
                got = encode(np.asarray([v[:n] for v in whole.values], dtype=object))
                got = Coded(got.codes[whole.codes], got.values)
            elif col in JOINT:
                # Columns compared with each other (family with given when names come in
                # either order; a birth date with its day–month swap) share one code table.
                group = JOINT[col]
                whole = encode(np.concatenate([self.column(g) for g in group]))
                n = len(self)
                for k, g in enumerate(group):
                    self._coded[g] = Coded(whole.codes[k * n : (k + 1) * n], whole.values)
                got = self._coded[col]
            else:
                got = encode(self.column(col))
            self._coded[name] = got
        return got


def _arr(values: Sequence[str]) -> Strs:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _name_key(f: PersonFeatures) -> tuple[str, ...]:
    """Who uses a value: the name's reading tokens (or its written form). A given name read
    only by the dictionary is left out: its guess (学 = gaku) may not be the person's."""
    if not f.trusted and f.tokens and is_japanese(f.name):
        return (f.tokens[0], "*")
    return f.tokens or ((f.name,) if f.name else ())


def _multi(per_row: Sequence[Sequence[str]], shared: set[str], role: set[str]) -> Multi:
    codes: dict[str, int] = {}
    rec: list[int] = []
    val: list[int] = []
    for row, values in enumerate(per_row):
        for v in values:
            rec.append(row)
            val.append(codes.setdefault(v, len(codes)))
    values = list(codes)
    flag = np.fromiter(((v in shared) or (v in role) for v in values), bool, len(values))
    return Multi(np.asarray(rec, np.int64), np.asarray(val, np.int64), flag, values)


def build(feats: Sequence[PersonFeatures]) -> Frame:
    """The columnar form of ``feats`` (row k is ``feats[k]``)."""
    fam = [f.tokens[0] if f.tokens else "" for f in feats]
    giv = ["".join(f.tokens[1:]) for f in feats]
    mail_users = shared_values((e, _name_key(f)) for f in feats for e in f.emails)
    # A mobile shared by two names may be a company phone; a landline shared is a switchboard.
    phone_pairs = [(p, _name_key(f)) for f in feats for p in f.phones]
    phone_users = shared_values(phone_pairs)
    mobile_users = shared_values(phone_pairs, 3)
    # Each distinct address is checked once (most rows have one or two of their own).
    role = {e for e in {e for f in feats for e in f.emails} if is_role_mailbox(e)}
    phone_shared = {p for p in phone_users if not is_personal_phone(p)} | mobile_users
    locals_ = [
        sorted(
            {
                e.partition("@")[0]
                for e in f.emails
                if len(e.partition("@")[0]) >= 4
                and e.partition("@")[0] not in _GENERIC_LOCAL
                and e not in role
            }
        )
        for f in feats
    ]
    return Frame(
        ids=np.fromiter((f.id for f in feats), np.int64, len(feats)),
        fam=_arr(fam),
        giv=_arr(giv),
        full=_arr([a + b for a, b in zip(fam, giv, strict=True)]),
        nameset=_arr(["".join(sorted(f.tokens)) for f in feats]),
        name=_arr([f.name for f in feats]),
        japanese=np.fromiter((is_japanese(f.name) for f in feats), bool, len(feats)),
        trusted=np.fromiter((f.trusted for f in feats), bool, len(feats)),
        dob=_arr([f.dob for f in feats]),
        dob_swap=_arr(
            [f.dob[:4] + f.dob[6:] + f.dob[4:6] if len(f.dob) == 8 else "" for f in feats]
        ),
        address=_arr([f.address for f in feats]),
        postcode=_arr([f.postcode for f in feats]),
        ext=_arr([f.ext for f in feats]),
        org=_arr([f.org for f in feats]),
        org_sound=_arr([f.org_sound for f in feats]),
        legal=_arr([f.legal for f in feats]),
        corp=_arr([f.corp for f in feats]),
        domain=_arr([f.domain for f in feats]),
        email=_multi([f.emails for f in feats], mail_users, role),
        phone=_multi([f.phones for f in feats], phone_shared, set()),
        local=_multi(locals_, set(), set()),
    )
