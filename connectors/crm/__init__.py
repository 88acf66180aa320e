"""CRMs, read and written: Salesforce, HubSpot and kintone, plus ``write`` (the write side's
shared result types and rules), ``quote_write`` (a quote pushed to Salesforce or HubSpot) and
``http`` (one throttled CRM request).
"""

__all__ = [
    "hubspot",
    "hubspot_write",
    "kintone",
    "kintone_write",
    "quota",
    "quote_write",
    "salesforce",
    "salesforce_auth",
    "salesforce_write",
    "write",
]
