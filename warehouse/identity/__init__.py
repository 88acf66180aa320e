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
    "keys",
    "known_customers",
    "learned",
    "linkage",
    "resolve",
    "schema",
    "survivorship",
    "upkeep",
]
