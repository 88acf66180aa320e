"""``kizuna demo``: a generated sample company (exports, mailboxes, calendars) and its push run."""

__all__ = ["generate", "push", "quotes", "users"]
