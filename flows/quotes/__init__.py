"""Quotes (見積書) for sales staff: the ``quotes:`` workspace section (``config``), issuing a
quote from a deal (``issue``) and rendering it to HTML and PDF (``render``).
"""

__all__ = ["config", "issue", "render"]
