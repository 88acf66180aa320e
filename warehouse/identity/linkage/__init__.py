"""Match quality: Fellegi–Sunter comparison levels computed over whole arrays of pairs,
m/u learned by EM from the workspace's own data, term frequencies, blocking rules an admin
can read, the evidence Japanese sales data needs, clustering that refuses to chain, and the
features of a million rows computed once per distinct value, stored and keyed column by column
(company names' parts kept from run to run, so each is read once).
"""

__all__ = [
    "blocking_rules",
    "companies",
    "company_parts",
    "comparisons",
    "contacts",
    "em",
    "features",
    "frame",
    "guard",
    "index",
    "key_table",
    "linker",
    "memo",
    "variants",
]
