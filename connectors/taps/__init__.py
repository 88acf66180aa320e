"""Extractors other projects maintain, run as Kizuna sources: Singer taps (a subprocess whose
stdout is the Singer message stream). Readers yield pages with the tap's own state as cursor.
"""

__all__ = ["singer"]
