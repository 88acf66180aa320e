"""Source types over extractors other projects maintain: Singer taps and dlt sources, their
state kept as the stream's cursor and their records mapped with the spreadsheet column map.
"""

__all__ = ["dlt_source", "singer"]
