"""Salesforce, HubSpot and kintone records to unified organizations, people, deals and
activities; ``common`` holds the rules every CRM mapping shares.
"""

__all__ = [
    "common",
    "hubspot",
    "hubspot_catalog",
    "kintone",
    "kintone_catalog",
    "salesforce",
    "salesforce_catalog",
]
