"""Extractors other projects maintain, run as Kizuna sources: Singer taps (a subprocess whose
stdout is the Singer message stream) and dlt sources (iterated in a state context Kizuna owns).
"""

__all__ = ["dlt_source", "singer"]
