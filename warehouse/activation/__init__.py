"""Turning the store into action: segments and their grammar, RFM, audiences, consent and
suppression, the delivery ledger, and the reminder rules.
"""

__all__ = [
    "audience",
    "consent",
    "grammar",
    "ledger",
    "ledger_schema",
    "reminder_ledger",
    "reminders",
    "segment_schema",
    "segments",
]
