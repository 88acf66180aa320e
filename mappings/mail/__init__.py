"""Raw messages to unified activities and people: MIME and Japanese charsets, bounces and
unsubscribe replies, mailed invitations and forwards, the Gmail and Graph shapes, and the
privacy filter applied before mapping.
"""

__all__ = [
    "bounce",
    "forward",
    "gmail",
    "graph",
    "invite",
    "message",
    "mime",
    "privacy",
    "records",
    "unsubscribe",
]
