"""Who is who: normalising names, readings, mail addresses and phones; matching, resolving
and clustering records into customers; survivorship and the admin's pins and review queue.
"""

__all__ = [
    "admin",
    "blocking",
    "crosswalk",
    "evidence",
    "golden_export",
    "graph",
    "known_customers",
    "learned",
    "linkage",
    "matching",
    "normalize",
    "readings",
    "resolve",
    "schema",
    "survivorship",
]
