"""The digest e-mail: what opened or worsened, for a person to act on — a summary first (counts by kind and
severity, the money at stake, the few things to do today), then the top rows of each kind by money at stake
with "and N more" pointing to the full list. Bounded whatever the shop (`MAX_ROWS_PER_KIND` rows a kind,
messages cut at `MAX_MESSAGE_CHARS`), with a plain-text and an HTML part (every value escaped: product names
come from users)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from html import escape

from salesflow.clients.mail.notifier import Mail
from salesflow.formatting import Formats
from salesflow.models.alerts import SEVERITY_RANK, AlertKind, Severity
from salesflow.state.tables import Alert

KIND_LABELS: dict[str, str] = {
    AlertKind.OUT_OF_STOCK: "Out of stock",
    AlertKind.URGENT_REORDER: "Reorder now",
    AlertKind.LOW_STOCK: "Low stock",
    AlertKind.SALES_ANOMALY: "Unusual sales",
    AlertKind.DEAD_STOCK: "Dead stock",
}
STAKE_LABELS: dict[str, str] = {
    AlertKind.OUT_OF_STOCK: "sales at risk",
    AlertKind.URGENT_REORDER: "sales at risk",
    AlertKind.LOW_STOCK: "sales at risk",
    AlertKind.SALES_ANOMALY: "revenue gap",
    AlertKind.DEAD_STOCK: "value tied up",
}
SEVERITY_COLOURS: dict[str, str] = {
    Severity.HIGH: "#b91c1c",
    Severity.MEDIUM: "#b45309",
    Severity.LOW: "#1d4ed8",
}
SEVERITIES = tuple(reversed(Severity))  # the highest first
MAX_ROWS_PER_KIND = 10
MAX_TODO = 5
MAX_MESSAGE_CHARS = 300
LIST_HINT = "the Alerts page of SalesFlow (GET /api/v1/alerts?kind={kind})"


@dataclass(frozen=True)
class DigestContent:
    subject: str
    when: str
    summary: list[str]  # one line a kind, then the alerts still open beside these
    todo: list[str]
    sections: list[tuple[str, list[Alert], int]]  # (kind, top rows, how many more)


def build_digest(
    alerts: Sequence[Alert],
    *,
    recipients: list[str],
    now: datetime,
    zone: tzinfo,
    formats: Formats,
    first: bool = False,
    still_open: int = 0,
) -> Mail | None:
    """None without recipients or alerts (the alerts stay in the database and the API). `first`: the shop's
    first evaluation (a baseline summary); `still_open`: alerts open beside these (named in the summary)."""
    if not recipients or not alerts:
        return None
    content = _content(alerts, now=now, zone=zone, formats=formats, first=first, still_open=still_open)
    return Mail(
        recipients=recipients,
        subject=content.subject,
        body=_text(content, formats),
        html=_html(content, formats),
    )


def _content(
    alerts: Sequence[Alert], *, now: datetime, zone: tzinfo, formats: Formats, first: bool, still_open: int
) -> DigestContent:
    by_kind: dict[str, list[Alert]] = defaultdict(list)
    for alert in sorted(alerts, key=lambda a: (-a.at_stake, -SEVERITY_RANK[a.severity], a.subject)):
        by_kind[alert.kind].append(alert)
    kinds = [kind for kind in KIND_LABELS if kind in by_kind] + sorted(set(by_kind) - set(KIND_LABELS))
    severities = Counter(a.severity for a in alerts)
    counts = ", ".join(f"{severities[s]:,} {s}" for s in SEVERITIES if severities[s])
    new = sum(a.notified_severity is None for a in alerts)
    worse = len(alerts) - new
    if first:
        subject = f"SalesFlow: your shop at a glance, {len(alerts):,} alerts ({counts})"
    else:
        parts = [f"{new:,} new" if new else "", f"{worse:,} worse" if worse else ""]
        subject = f"SalesFlow alerts: {' and '.join(p for p in parts if p)} ({counts})"
    summary = []
    for kind in kinds:
        rows = by_kind[kind]
        per = Counter(a.severity for a in rows)
        split = ", ".join(f"{per[s]:,} {s}" for s in SEVERITIES if per[s])
        stake = sum(a.at_stake for a in rows)
        stake_label = STAKE_LABELS.get(kind, "at stake")
        summary.append(f"{_label(kind)}: {len(rows):,} ({split}), {formats.money(stake)} {stake_label}")
    if still_open:
        summary.append(f"{still_open:,} more alerts told of before are still open.")
    return DigestContent(
        subject=subject,
        when=now.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z"),
        summary=summary,
        todo=_todo(alerts, formats),
        sections=[
            (kind, by_kind[kind][:MAX_ROWS_PER_KIND], max(len(by_kind[kind]) - MAX_ROWS_PER_KIND, 0))
            for kind in kinds
        ],
    )


def _todo(alerts: Sequence[Alert], formats: Formats) -> list[str]:
    """The orders to place today: stock alerts with a suggested order, the most money at stake first."""
    stock_kinds = (AlertKind.OUT_OF_STOCK, AlertKind.URGENT_REORDER, AlertKind.LOW_STOCK)
    orders = [(a, _quantity(a)) for a in alerts if a.kind in stock_kinds and _quantity(a) > 0]
    orders.sort(key=lambda pair: (-pair[0].at_stake, pair[0].subject))
    return [
        f"Order {formats.units(quantity)} of {_cut(a.product_name or a.subject, 80)}"
        f" ({_cut(a.product_sku or '', 40)}): {formats.money(a.at_stake)} of sales at risk"
        for a, quantity in orders[:MAX_TODO]
    ]


def _quantity(alert: Alert) -> int:
    value = alert.numbers.get("suggested_order_qty")
    return int(value) if isinstance(value, int | float) else 0


def _label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


def _cut(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _status(alert: Alert) -> str:
    return "new" if alert.notified_severity is None else f"worse, was {alert.notified_severity}"


def _more(kind: str, more: int) -> str:
    return f"and {more:,} more {_label(kind).lower()} alerts: see {LIST_HINT.format(kind=kind)}."


def _text(content: DigestContent, formats: Formats) -> str:
    lines = [f"Alerts checked at {content.when}.", "", "SUMMARY"]
    lines += [f"  {line}" for line in content.summary]
    if content.todo:
        lines += ["", "TO DO TODAY"] + [f"  {n}. {line}" for n, line in enumerate(content.todo, start=1)]
    for kind, rows, more in content.sections:
        lines += ["", _label(kind).upper()]
        for alert in rows:
            lines.append(
                f"  [{alert.severity.upper()}] {_cut(alert.message)} ({_status(alert)};"
                f" {formats.money(alert.at_stake)} at stake)"
            )
        if more:
            lines.append(f"  {_more(kind, more)}")
    lines += ["", "Acknowledge them in SalesFlow; an alert is e-mailed again only if it gets worse."]
    return "\n".join(lines)


def _html(content: DigestContent, formats: Formats) -> str:
    summary = "".join(f"<li>{escape(line)}</li>" for line in content.summary)
    todo = "".join(f"<li>{escape(line)}</li>" for line in content.todo)
    sections = []
    for kind, rows, more in content.sections:
        body = "".join(
            "<tr>"
            f'<td style="color:{SEVERITY_COLOURS.get(a.severity, "#000")};font-weight:bold">'
            f"{escape(a.severity)}</td>"
            f"<td>{escape(_cut(a.message))}<br><small>{escape(_status(a))}</small></td>"
            f'<td style="text-align:right">{escape(formats.money(a.at_stake))}</td>'
            "</tr>"
            for a in rows
        )
        tail = f"<p><small>{escape(_more(kind, more))}</small></p>" if more else ""
        sections.append(
            f"<h3>{escape(_label(kind))}</h3>"
            '<table border="1" cellpadding="6" cellspacing="0" style="border-collapse:collapse">'
            "<thead><tr><th>Severity</th><th>What happened</th><th>At stake</th></tr></thead>"
            f"<tbody>{body}</tbody></table>{tail}"
        )
    return (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f"<h2>{escape(content.subject)}</h2><p>Checked at {escape(content.when)}.</p>"
        f"<h3>Summary</h3><ul>{summary}</ul>"
        + (f"<h3>To do today</h3><ol>{todo}</ol>" if todo else "")
        + "".join(sections)
        + "<p>Acknowledge them in SalesFlow; an alert is e-mailed again only if it gets worse.</p>"
        "</body></html>"
    )
