"""Keeping the people's blocking index: renewed by difference over a stored one (renewal),
or written in full into an empty one from what the feature pass spooled (spool).
"""

__all__ = ["renewal", "spool"]
