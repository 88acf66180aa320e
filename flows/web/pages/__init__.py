"""The web pages past the customer view: the audit log and, by role, review, 日報, pipeline
and campaigns; each module lists its routes in ``ROUTES`` for ``flows.web.app``.
"""

__all__ = [
    "audit_log",
    "campaigns",
    "daily",
    "home",
    "pipeline",
    "review",
    "sources",
    "unsubscribe",
]
