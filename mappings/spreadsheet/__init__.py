"""Spreadsheet rows to unified records: the admin's column map and default headers
(``rows``), and cell parsing for amounts, dates, phones and corporate numbers (``values``).
"""

__all__ = ["headers", "nested", "rows"]
