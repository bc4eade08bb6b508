"""The digest e-mail: every alert of one evaluation that opened or worsened, in one message with a plain-text
and an HTML part (every value escaped: product names come from users)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, tzinfo
from html import escape

from salesflow.clients.mail.notifier import Mail
from salesflow.models.alerts import SEVERITY_RANK
from salesflow.state.tables import Alert

KIND_LABELS = {
    "SALES_ANOMALY": "Sales anomaly",
    "OUT_OF_STOCK": "Out of stock",
    "LOW_STOCK": "Low stock",
    "URGENT_REORDER": "Reorder now",
    "DEAD_STOCK": "Dead stock",
}
SEVERITY_COLOURS = {"high": "#b91c1c", "medium": "#b45309", "low": "#1d4ed8"}


def build_digest(
    alerts: Sequence[Alert], *, recipients: list[str], now: datetime, zone: tzinfo
) -> Mail | None:
    """None without recipients (the alerts stay in the database and the API)."""
    if not recipients or not alerts:
        return None
    ordered = sorted(alerts, key=lambda a: (-SEVERITY_RANK[a.severity], a.kind, a.subject))
    new = sum(a.notified_severity is None for a in ordered)
    worse = len(ordered) - new
    severities = Counter(a.severity for a in ordered)
    counts = ", ".join(f"{severities[s]} {s}" for s in ("high", "medium", "low") if severities[s])
    parts = [f"{new} new" if new else "", f"{worse} worse" if worse else ""]
    subject = f"SalesFlow alerts: {' and '.join(p for p in parts if p)} ({counts})"
    when = now.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    return Mail(
        recipients=recipients,
        subject=subject,
        body=_text(ordered, when),
        html=_html(ordered, when, subject),
    )


def _status(alert: Alert) -> str:
    return "new" if alert.notified_severity is None else f"worse (was {alert.notified_severity})"


def _numbers(alert: Alert) -> str:
    return ", ".join(
        f"{name.replace('_', ' ')}: {value}" for name, value in alert.numbers.items() if value is not None
    )


def _text(alerts: Sequence[Alert], when: str) -> str:
    lines = [f"Alerts checked at {when}.", ""]
    for alert in alerts:
        lines += [
            f"[{alert.severity.upper()}] {KIND_LABELS.get(alert.kind, alert.kind)} ({_status(alert)})",
            f"  {alert.message}",
            f"  {_numbers(alert)}",
            "",
        ]
    lines.append("Acknowledge them in SalesFlow; an alert is e-mailed again only if it gets worse.")
    return "\n".join(lines)


def _html(alerts: Sequence[Alert], when: str, subject: str) -> str:
    rows = "".join(
        "<tr>"
        f'<td style="color:{SEVERITY_COLOURS.get(a.severity, "#000")};font-weight:bold">'
        f"{escape(a.severity)}</td>"
        f"<td>{escape(KIND_LABELS.get(a.kind, a.kind))}<br><small>{escape(_status(a))}</small></td>"
        f"<td>{escape(a.message)}</td>"
        f"<td><small>{escape(_numbers(a))}</small></td>"
        "</tr>"
        for a in alerts
    )
    return (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f"<h2>{escape(subject)}</h2><p>Checked at {escape(when)}.</p>"
        '<table border="1" cellpadding="6" cellspacing="0" style="border-collapse:collapse">'
        "<thead><tr><th>Severity</th><th>Alert</th><th>What happened</th><th>Numbers</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        "<p>Acknowledge them in SalesFlow; an alert is e-mailed again only if it gets worse.</p>"
        "</body></html>"
    )
