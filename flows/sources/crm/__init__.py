"""Salesforce, HubSpot and kintone as sources, and the write-back to them (``kizuna crm push``)."""

__all__ = ["hubspot", "kintone", "salesforce", "writeback"]
