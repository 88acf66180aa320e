"""Comparable forms (pure, no I/O): folded names, kana readings, mail and phone keys, and each
person row's features and blocking keys that the resolver and the write path compare.
"""

__all__ = [
    "matching",
    "normalize",
    "readings",
]
