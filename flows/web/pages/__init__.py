"""The web pages past the customer view: the audit log and, by role, review, 日報, pipeline
and campaigns, a deal's 見積書, and sign-in through an OIDC provider; each module lists its routes in ``ROUTES`` for ``flows.web.app``.
"""

__all__ = [
    "audit_log",
    "campaigns",
    "daily",
    "home",
    "oidc_sign_in",
    "pipeline",
    "quotes",
    "review",
    "sources",
    "unsubscribe",
]
