"""The ``kizuna`` command line: one module per command group, the run summaries it prints,
and the commented workspace template ``kizuna init`` writes.
"""

__all__ = ["main"]
