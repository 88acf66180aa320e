"""日報 drafts and the pipeline page: the flows, rendering (templates/) and the ``reports:`` section."""

__all__ = ["config", "flow", "render", "run"]
