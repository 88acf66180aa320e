"""Quotes (見積書): products and price lists, deal line items, the 消費税 arithmetic of the
インボイス制度, registration numbers, number series and stored, never-overwritten quotes.
"""

__all__ = ["catalog", "documents", "numbering", "registration", "schema", "tax"]
