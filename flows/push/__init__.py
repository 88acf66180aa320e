"""Everything that leaves Kizuna: campaigns (plan, approve, send exactly once), reminders,
the channels they go through, consent feedback from replies and bounces.
"""

__all__ = [
    "campaign_run",
    "campaign_send",
    "campaigns",
    "channels",
    "config",
    "feedback",
    "reminder_run",
    "reminders",
]
