"""pykakasi's reading dictionary with a lookup by key instead of a scan (pure, no I/O).

pykakasi finds the longest dictionary word at each kanji by scanning every entry that starts
with that kanji (田 alone heads thousands), about half a millisecond per name: at a million
rows the readings of distinct names and companies were most of the feature pass. The same
dictionary is asked here by its keys, longest first, with the same rule for a word's
okurigana condition, so the reading is the one pykakasi gives (``tests`` compare both on
names and companies). Text with a variation selector, or a pykakasi whose internals differ
from 2.3's, keeps pykakasi's own lookup.
"""

from __future__ import annotations

from typing import Any

__all__ = ["kakasi"]


def _indexed(base: Any) -> Any:
    """A ``JConv`` whose ``convert`` looks words up by key (``base`` lends its tables)."""
    from pykakasi.kanji import JConv

    class Indexed(JConv):
        def __init__(self) -> None:  # the tables are base's: no second load
            self._kanwa = base._kanwa
            self._itaiji = base._itaiji
            self._longest: dict[str, int] = {}

        def convert(self, itext: str, btext: str) -> tuple[str, int]:  # type: ignore[override]
            text = self._itaiji.convert(itext)
            if len(text) != len(itext):  # a variation selector: pykakasi's own bookkeeping
                return JConv.convert(self, itext, btext)
            table = self._kanwa.load(text[0])
            if table is None:
                return "", 0
            top = self._longest.get(text[0])
            if top is None:
                top = self._longest[text[0]] = max(map(len, table), default=0)
            # pykakasi keeps the first entry of the greatest length whose condition holds:
            # keys are unique, so that is the first such reading of the longest key found.
            for n in range(min(top, len(text)), 0, -1):
                for yomi, con in table.get(text[:n], ()):
                    if con is None or btext in con:
                        return yomi, n
            return "", 0

    return Indexed()


def kakasi() -> Any:
    """A ``pykakasi.kakasi()`` converter, with the indexed lookup when its internals are the
    ones this was written against.

    Its dictionary (9.7 MB pickled) is over a million lists and tuples: unpickled with the
    cyclic collector on, the collections during the load and the first ones after it walked
    them all, 0.44 s in each process that reads a kanji name. Here it is loaded with the
    collector off and put straight among the oldest objects (frozen, then unfrozen, which
    moves every tracked object there), which young collections never walk: 0.2 s."""
    import gc

    import pykakasi

    was = gc.isenabled()
    gc.disable()
    try:
        conv = pykakasi.kakasi()  # type: ignore[no-untyped-call]
    finally:
        gc.freeze()
        gc.unfreeze()
        if was:
            gc.enable()
    inner: Any = getattr(conv, "_kakasi", None)
    base = getattr(inner, "_jconv", None)
    if hasattr(getattr(base, "_kanwa", None), "load") and hasattr(base, "_itaiji"):
        inner._jconv = _indexed(base)
    return conv
