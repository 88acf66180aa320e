"""Calendars and address books on servers: CalDAV (RFC 6578 sync), Google Calendar and Google
People. Each keeps the server's own sync token as its cursor.
"""

__all__ = ["caldav_sync", "gcal", "gpeople"]
