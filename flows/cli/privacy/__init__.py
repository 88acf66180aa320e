"""``kizuna customer disclose`` and ``kizuna customer erase``: privacy requests from the
command line, and what they do to the workspace's files (drafts, outbox, disclosures).
"""

__all__ = ["commands", "files"]
