"""Calendar events (ICS, CalDAV, Google, Graph) to meetings, with recurrences expanded in a
window; Google People contacts to people.
"""

__all__ = ["events", "gcal", "gpeople"]
