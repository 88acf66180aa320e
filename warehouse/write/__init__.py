"""The write path: a page of unified records into the store in one transaction, with lineage,
quarantine and the cursor; the bulk statements it is built on (SQLite and PostgreSQL alike).
"""

__all__ = [
    "bulk",
    "store",
    "store_base",
    "store_parties",
    "store_writer",
    "upsert",
]
