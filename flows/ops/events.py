"""Prefect events for automations: a stream failed or quarantined records, reviews wait,
a campaign holds recipients for a person.

Names and resources (build automations on these, e.g. "notify #sales-ops on
kizuna.stream.failed"):

=========================  ==================================  =========================
event                      resource id                         payload
=========================  ==================================  =========================
kizuna.stream.failed       kizuna.stream.<source>.<stream>     error
kizuna.stream.quarantined  kizuna.stream.<source>.<stream>     quarantined (count)
kizuna.review.pending      kizuna.identity                     reviews (count)
kizuna.campaign.held       kizuna.campaign.<name>              held (count)
=========================  ==================================  =========================

Emitted only inside a Prefect flow run: the CLI's in-process runs have no server to send to.
Payloads hold counts and error messages, never records or secrets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def _emit(event: str, resource_id: str, name: str, payload: dict[str, Any]) -> None:
    from flows.ops.lazy import in_flow_run

    if not in_flow_run():
        return
    from prefect.events import emit_event

    emit_event(
        event,
        resource={"prefect.resource.id": resource_id, "prefect.resource.name": name},
        payload=payload,
    )


def after_sync(results: Iterable[dict[str, Any]]) -> None:
    """One event per stream that failed or quarantined records in this run."""
    for r in results:
        source, stream = str(r.get("connector", "")), str(r.get("stream", ""))
        rid, name = f"kizuna.stream.{source}.{stream}", f"{source}/{stream}"
        if r.get("error"):
            _emit("kizuna.stream.failed", rid, name, {"error": str(r["error"])[:2000]})
        elif int(r.get("quarantined") or 0) > 0:
            _emit("kizuna.stream.quarantined", rid, name, {"quarantined": int(r["quarantined"])})


def after_resolve(result: dict[str, Any]) -> None:
    if int(result.get("reviews") or 0) > 0:
        _emit(
            "kizuna.review.pending", "kizuna.identity", "identity", {"reviews": result["reviews"]}
        )


def after_campaign(name: str, outcomes: dict[str, int]) -> None:
    held = int(outcomes.get("in_doubt", 0)) + int(outcomes.get("held", 0))
    if held:
        _emit("kizuna.campaign.held", f"kizuna.campaign.{name}", name, {"held": held})
