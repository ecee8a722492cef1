"""The dashboard's charts, drawn on the server as inline SVG (no chart service, no JS)."""

from datetime import datetime

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from apps.jobs.catalog import get_job

# Drawing order bottom to top, and colours matching site.css's state badges.
STATE_COLOURS = {
    "succeeded": "#16a34a",
    "failed": "#dc2626",
    "cancelled": "#9ca3af",
    "skipped": "#d1d5db",
    "retrying": "#d97706",
    "progress": "#2563eb",
    "started": "#3b82f6",
    "queued": "#93c5fd",
    "pending_send": "#fbbf24",
}
WIDTH, HEIGHT, LEFT, BOTTOM = 720, 200, 40, 36


def runs_per_hour_svg(hours: list[datetime], counts: dict[str, list[int]]) -> SafeString:
    """Stacked bars: runs queued per hour, by the state they are in now."""
    plot_w, plot_h = WIDTH - LEFT - 10, HEIGHT - BOTTOM - 10
    totals = [sum(c[i] for c in counts.values()) for i in range(len(hours))]
    top = max(totals, default=0) or 1
    slot = plot_w / max(len(hours), 1)
    parts = [_axis(plot_h, top)]
    for i, hour in enumerate(hours):
        x, base = LEFT + i * slot, 10 + plot_h
        for state in _ordered(counts):
            n = counts[state][i]
            if not n:
                continue
            h = plot_h * n / top
            base -= h
            label = f"{timezone.localtime(hour):%H:00}: {n} {state}"
            parts.append(_rect(x + 2, base, slot - 4, h, STATE_COLOURS.get(state, "#6b7280"),
                               label, f"bar state-{state}"))  # fmt: skip
        if i % 3 == 0:
            parts.append(_text(x + slot / 2, HEIGHT - BOTTOM + 16,
                               f"{timezone.localtime(hour):%H:00}", "middle"))  # fmt: skip
    parts.append(_legend(counts, HEIGHT - 6))
    return _svg("Runs per hour by state, last 24 hours", parts)


def durations_svg(rows: list[tuple[str, float, float, int]], limit: int = 12) -> SafeString:
    """One row per job: a light bar to p95, a dark bar to p50, the numbers beside."""
    rows = rows[:limit]
    row_h, label_w, text_w = 26, 220, 170
    height = max(1, len(rows)) * row_h + 10
    bar_w = WIDTH - label_w - text_w
    top = max((p95 for _, _, p95, _ in rows), default=0) or 1
    parts = []
    for i, (job_name, p50, p95, n) in enumerate(rows):
        y = 5 + i * row_h
        job = get_job(job_name)
        label = (job.title if job else job_name)[:34]
        parts.append(_text(label_w - 8, y + 16, label, "end"))
        parts.append(_rect(label_w, y + 4, max(1, bar_w * p95 / top), 16, "#bfdbfe",
                           f"{job_name}: p95 {_seconds(p95)}", "bar p95"))  # fmt: skip
        parts.append(_rect(label_w, y + 4, max(1, bar_w * p50 / top), 16, "#2563eb",
                           f"{job_name}: p50 {_seconds(p50)}", "bar p50"))  # fmt: skip
        summary = f"p50 {_seconds(p50)} · p95 {_seconds(p95)} · {n} runs"
        parts.append(_text(label_w + bar_w + 8, y + 16, summary, "start"))
    if not rows:
        parts.append(_text(WIDTH / 2, 20, "No finished runs in the last 24 hours.", "middle"))
    return _svg("Run duration per job, p50 and p95, last 24 hours", parts, height)


def _ordered(counts: dict[str, list[int]]) -> list[str]:
    known = [s for s in STATE_COLOURS if s in counts]
    return known + sorted(set(counts) - set(known))


def _axis(plot_h: float, top: int) -> str:
    y0 = 10 + plot_h
    return (
        f'<line x1="{LEFT}" y1="{y0}" x2="{WIDTH - 10}" y2="{y0}" stroke="#d1d5db"/>'
        + _text(LEFT - 6, 18, str(top), "end")
        + _text(LEFT - 6, y0, "0", "end")
    )


def _legend(counts: dict[str, list[int]], y: float) -> str:
    parts, x = [], LEFT
    for state in _ordered(counts):
        label = f"{state.replace('_', ' ')} {sum(counts[state])}"
        parts.append(_rect(x, y - 10, 10, 10, STATE_COLOURS.get(state, "#6b7280"), label, ""))
        parts.append(_text(x + 14, y, label, "start"))
        x += 30 + 7 * len(label)
    return "".join(parts)


def _rect(x: float, y: float, w: float, h: float, fill: str, title: str, cls: str) -> str:
    return (
        f'<rect class="{cls}" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
        f'fill="{fill}"><title>{escape(title)}</title></rect>'
    )


def _text(x: float, y: float, text: str, anchor: str) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="11" '
        f'fill="#475467">{escape(text)}</text>'
    )


def _svg(title: str, parts: list[str], height: int = HEIGHT) -> SafeString:
    body = "".join(parts)
    return mark_safe(  # noqa: S308  (every text above went through escape())
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{body}</svg>'
    )


def _seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"
