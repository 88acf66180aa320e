"""The resolve flow that runs after every sync, and the ``identity:`` section of the workspace."""

__all__ = ["config", "resolve"]
