"""Serving endpoints in the cutover: the standby's scale-to-zero undone where the source kept entities warm.

A standby endpoint serves its entities scaled to zero (it costs nothing idle); the new primary must serve
as the source did. unpause_target PUTs, for each replicated endpoint whose source config keeps an entity
warm (`scale_to_zero_enabled: false`), the source's config as the store last saw it, recorded as
`target_endpoint:<name>` before the write; a rollback PUTs the standby config again.

With the serving_endpoints kind disabled no config is PUT: the target's endpoints are the DR team's, and the store's
configs are from before the kind was turned off (the cutover PUT them over what the DR team had deployed since).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from databricks.sdk.errors import DatabricksError

from dbsync.cutover.common import job_rows, kind_disabled, one_line
from dbsync.errors import Blocked
from dbsync.replicators.common import sdk_call
from dbsync.replicators.serving_endpoints import standby_config

if TYPE_CHECKING:
    from dbsync.cutover.runbook import Runbook

ENDPOINTS = "serving_endpoints"
TARGET_ENDPOINT_ROW = "target_endpoint:"


def _warm(book: Runbook) -> list[tuple[str, dict[str, Any]]]:
    """(target name, source config) of each replicated endpoint that keeps an entity warm on the source."""
    out = []
    for prior in book.store.priors(ENDPOINTS):
        config = (prior.payload or {}).get("config") or {}
        if prior.target_key and standby_config(config) != config:
            out.append((prior.target_key, config))
    return out


def _put(book: Runbook, name: str, config: dict[str, Any]) -> None:
    book.writer.pacers["target"].wait()
    sdk_call(book.ctx.target.client.serving_endpoints.update_config, config, name=name)


def restore_target(book: Runbook) -> tuple[int, list[str]]:
    """unpause_target: the source's scaling on each endpoint the standby scaled to zero; (restored, failures).
    None with the kind disabled."""
    restored, failed = 0, []
    if not book.kind_enabled(ENDPOINTS):  # the DR team's endpoints: no stale config over theirs
        return restored, failed
    for name, config in _warm(book):
        row = TARGET_ENDPOINT_ROW + name
        if (book.rows.get(row) or {}).get("state") == "restored":
            continue
        try:
            resolved = book.ctx.idmap.resolve(config)
            book.record(row, "pending", {"name": name})
            _put(book, name, resolved)
        except (DatabricksError, Blocked) as err:
            failed.append(f"target serving endpoint {name}: {one_line(err)}")
            continue
        book.record(row, "restored", {"name": name})
        restored += 1
    return restored, failed


def rollback(book: Runbook) -> tuple[int, list[str]]:
    """The endpoints the cutover restored scaled to zero again, as on a standby; (done, failures)."""
    done, failed = 0, []
    configs = dict(_warm(book))
    for name in job_rows(book.rows, TARGET_ENDPOINT_ROW):
        if name not in configs:
            continue
        try:
            _put(book, name, standby_config(book.ctx.idmap.resolve(configs[name])))
            done += 1
        except (DatabricksError, Blocked) as err:
            failed.append(f"target serving endpoint {name}: {one_line(err)}")
    return done, failed


def plan_text(book: Runbook) -> str:
    """The dry run's line: the endpoints whose scaling the cutover restores (none with the kind disabled)."""
    if not book.kind_enabled(ENDPOINTS):
        return f"no serving endpoint scaled up: {kind_disabled(ENDPOINTS)}, the target's are not dbsync's"
    names = [name for name, _ in _warm(book)]
    if not names:
        return "no serving endpoint to scale up"
    shown = ", ".join(names[:5]) + (" …" if len(names) > 5 else "")
    return f"{len(names)} serving endpoint(s) given the source's scaling (scale-to-zero off): {shown}"
