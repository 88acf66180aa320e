"""Running flows for operations: on a Prefect server when one is configured, here without one
(the fast CLI, history in the warehouse), the Prefect server ``kizuna serve`` starts, one flow
run per source on a work pool, and the events automations listen to.
"""

__all__ = ["entry", "events", "fanout", "launch", "lazy", "limits", "local", "server"]
