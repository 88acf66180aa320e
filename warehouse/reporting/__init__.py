"""Read models for people who look at numbers: the 日報 day of one rep (``daily``), the
pipeline (``pipeline``), their plain data types (``model``) and stored drafts (``drafts``).
"""

__all__ = ["daily", "drafts", "model", "pipeline", "schema", "staff", "stages"]
