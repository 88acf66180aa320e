"""Keeping what a run builds on: the people's blocking index, renewed by difference over a
stored one (renewal) or written in full into an empty one from what the feature pass spooled
(spool), and company names read up front when many are unread (names).
"""

__all__ = ["names", "renewal", "spool"]
