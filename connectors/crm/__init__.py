"""CRMs, read and written: Salesforce, HubSpot and kintone, plus ``write`` (the write side's
shared result types and rules) and ``http`` (one throttled CRM request).
"""

__all__ = [
    "hubspot",
    "hubspot_write",
    "kintone",
    "kintone_write",
    "quota",
    "salesforce",
    "salesforce_auth",
    "salesforce_write",
    "write",
]
