"""Files a company already has: spreadsheet exports (CSV, xlsx), mail archives (mbox,
Maildir, .eml) and calendar files (.ics). Readers yield pages with a file-fingerprint cursor.
"""

__all__ = [
    "ical_split",
    "ical_zones",
    "icsfiles",
    "mail_layout",
    "mailfiles",
    "sheet_encoding",
    "spreadsheet",
]
