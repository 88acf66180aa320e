"""``kizuna users`` (staff accounts, roles, scopes for the web app) and ``kizuna web`` (serve
it): the command-line side of ``flows.web`` and ``warehouse.access``.
"""

__all__ = ["users", "viewer", "web_check"]
