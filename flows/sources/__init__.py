"""One module per source type: its config section and how its streams run through the
engine; ``registry`` names every type. CRM sources live in the ``crm`` sub-wing.
"""

__all__ = [
    "caldav",
    "gcal",
    "gmail",
    "gpeople",
    "ics",
    "imap",
    "m365",
    "mail",
    "registry",
    "spreadsheet",
]
