"""/report.html: the page an on-call engineer reads during a cutover. Plain HTML, no JavaScript."""

from __future__ import annotations

import time
from html import escape
from urllib.parse import quote

from dbsync.registry import declaration
from dbsync.report import KindValidation, Report

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.ok{background:#e6f4ea;border:1px solid #2e7d32;padding:1em}
.bad{background:#fdecea;border:1px solid #c62828;padding:1em}
.manual{background:#fff8e1;border:1px solid #f9a825;padding:0 1em;margin:1em 0}
.warn{color:#c62828;font-weight:bold}details{margin:.5em 0}code{font-size:90%}
"""


def _link(kind: str, host: str, key: str) -> str:
    template = declaration(kind).link  # the kind's page in the workspace UI
    if not template or not host:
        return f"<code>{escape(key)}</code>"
    url = template.format(host=host.rstrip("/"), key=quote(key, safe="/"))
    return f'<a href="{escape(url)}"><code>{escape(key)}</code></a>'


def _row(k: KindValidation) -> str:
    percent = k.in_sync_percent
    cells = [
        k.source_count,
        k.target_count,
        "manual" if k.report_only else "unknown" if percent is None else f"{percent:.1f}%",
        k.pending,
        k.partial,
        k.skipped,
        k.missing_count,
        k.extra_count,
        k.drifted_count,
        k.blocked,
        k.errors,
        f"{k.lag_seconds:.0f}",
    ]
    warn = k.status in ("unknown", "not_in_sync")
    name = f'<span class="warn">{escape(k.kind)}</span>' if warn else escape(k.kind)
    return "<tr><td>" + name + "</td>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>"


def _details(k: KindValidation, source_host: str, target_host: str) -> str:
    parts = []
    if k.listing_error:
        parts.append(f"<p class='warn'>cannot list: {escape(k.listing_error)}</p>")
    for title, keys, count, host in (
        ("pending (changed on the source, not on the target yet)", k.pending_keys, k.pending, source_host),
        ("missing on the target", k.missing, k.missing_count, source_host),
        ("extra on the target (not from the source)", k.extra, k.extra_count, target_host),
        ("edited on the target (drift)", k.drifted, k.drifted_count, source_host),
    ):
        if count:
            items = "".join(f"<li>{_link(k.kind, host, key)}</li>" for key in keys)
            more = f"<li>… and {count - len(keys)} more</li>" if count > len(keys) else ""
            parts.append(f"<details open><summary>{count} {title}</summary><ul>{items}{more}</ul></details>")
    if k.problems:
        items = "".join(
            f"<li>{_link(k.kind, source_host, p['source_key'])} <b>{escape(p['status'])}</b> "
            f"(attempts {p['attempts']}): {escape(p['last_error'] or '')}</li>"
            for p in k.problems
        )
        parts.append(f"<details open><summary>problems and reasons</summary><ul>{items}</ul></details>")
    if not parts:
        return ""
    return f"<h3>{escape(k.kind)}</h3>" + "".join(parts)


def _manual(report: Report) -> str:
    """What a person must do on the target (mounts, libraries that failed on the source)."""
    if not report.manual_actions:
        return ""
    items = "".join(_manual_item(a) for a in report.manual_actions)
    return (
        f"<div class='manual'><h3>Needs manual action ({len(report.manual_actions)})</h3>"
        f"<p>dbsync cannot do or check these; they are not part of the readiness above.</p><ul>{items}</ul></div>"
    )


def _manual_item(action: dict[str, str]) -> str:
    key = f"<code>{escape(action['key'])}</code> " if action["key"] else ""
    return f"<li><b>{escape(action['kind'])}</b> {key}{escape(action['action'])}</li>"


def render(report: Report, target_host: str = "", source_host: str = "") -> str:
    """The whole page for a Report; hosts turn keys into links to the objects."""
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report.generated_at))
    if report.ready_for_cutover:
        banner = "<div class='ok'><b>Ready for cutover.</b> The target holds everything the source has.</div>"
    else:
        reasons = "".join(f"<li>{escape(r)}</li>" for r in report.reasons)
        banner = f"<div class='bad'><b>Not ready for cutover.</b><ul>{reasons}</ul></div>"
    header = "".join(
        f"<th>{h}</th>"
        for h in (
            "kind",
            "source",
            "target",
            "in sync",
            "pending",
            "partial",
            "skipped",
            "missing",
            "extra",
            "drifted",
            "blocked",
            "errors",
            "lag (s)",
        )
    )
    rows = "".join(_row(k) for k in report.kinds)
    details = _manual(report) + "".join(_details(k, source_host, target_host) for k in report.kinds)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='30'>"
        f"<title>dbsync report</title><style>{_STYLE}</style></head><body>"
        f"<h1>dbsync: {escape(source_host)} → {escape(target_host)}</h1><p>Generated {when}; refreshes every 30 s.</p>"
        f"{banner}<table><tr>{header}</tr>{rows}</table>{details}</body></html>"
    )
