"""Privacy requests (個人情報保護法 開示・削除): everything held about one customer as one file,
and its erasure from every table with only salted address hashes kept (suppression) so the
person is never mailed again and never silently re-landed by a later sync.
"""

__all__ = ["disclose", "erase", "held", "redact", "salt", "schema"]
