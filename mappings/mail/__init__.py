"""Raw messages to unified activities and people: MIME and Japanese charsets, bounces and
unsubscribe replies, the Gmail and Graph shapes, and the privacy filter applied before mapping.
"""

__all__ = ["bounce", "gmail", "graph", "message", "mime", "privacy", "unsubscribe"]
