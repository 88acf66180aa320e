"""Who may sign in and what each person may see: staff accounts (argon2 passwords, roles,
lock-out), the one visibility scope every page and export filters through, the audit log of
who viewed or changed what, and notes on a customer that the team shares (情報共有).
"""

__all__ = [
    "accounts",
    "audit",
    "campaigns",
    "customers",
    "day",
    "exports",
    "notes",
    "reports",
    "schema",
    "scope",
    "sources",
]
