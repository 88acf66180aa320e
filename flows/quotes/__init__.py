"""Quotes (見積書) for sales staff: the ``quotes:`` workspace section (``config``), issuing a
quote from a deal (``issue``), rendering it to HTML and PDF (``render``) and pushing it to the
deal's CRM (``push``).
"""

__all__ = ["config", "issue", "push", "render"]
