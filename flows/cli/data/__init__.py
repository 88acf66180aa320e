"""Commands that read the customer data out: exports (crosswalk, golden records, activities),
the identity review queue and customer view, and the audit log.
"""

__all__ = ["audit", "export", "identity"]
