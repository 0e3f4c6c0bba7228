"""An event's story in numbers, and its chart drawn as SVG on the server (no script)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from liveqa.model import Event, Question, QuestionState

S = QuestionState
MIN_SLOTS = 12


@dataclass(frozen=True)
class Report:
    joined: int
    askers: int
    voters: int
    questions: int
    votes: int
    answered_live: int
    answered_in_writing: int
    dismissed: int
    unanswered: int
    median_moderation_seconds: float | None
    timeline: tuple[tuple[float, int], ...]  # (bucket start, questions asked in it)
    bucket_seconds: int


def build(event: Event, questions: Sequence[Question], *, joined: int, voters: int) -> Report:
    timeline, bucket = _timeline(questions)
    waits = [q.moderated_at - q.created_at for q in questions if q.moderated_at]
    answered = [q for q in questions if q.state is S.ANSWERED]
    return Report(
        joined=joined,
        askers=len({q.participant for q in questions if q.participant}),
        voters=voters,
        questions=len(questions),
        votes=sum(q.votes for q in questions),
        answered_live=sum(q.answered_via == "live" for q in answered),
        answered_in_writing=sum(q.answered_via != "live" for q in answered),
        dismissed=sum(q.state is S.DISMISSED for q in questions),
        unanswered=sum(q.state in (S.PENDING, S.QUEUED, S.LIVE) for q in questions),
        median_moderation_seconds=statistics.median(waits) if waits else None,
        timeline=timeline,
        bucket_seconds=bucket,
    )


def _timeline(questions: Sequence[Question]) -> tuple[tuple[tuple[float, int], ...], int]:
    if not questions:
        return (), 60
    start = min(q.created_at for q in questions)
    span = max(q.created_at for q in questions) - start
    # About 30 bars, in whole minutes (or 5, 15, 60 minutes) so the axis reads naturally.
    bucket = next((b for b in (60, 300, 900, 3600, 4 * 3600, 86400) if span / b <= 30), 7 * 86400)
    origin = start - start % bucket
    counts = [0] * (int((start + span - origin) // bucket) + 1)
    for q in questions:
        counts[int((q.created_at - origin) // bucket)] += 1
    return tuple((origin + i * bucket, n) for i, n in enumerate(counts)), bucket


def chart(report: Report, *, width: int = 400, height: int = 200) -> str:
    """Questions over time as an accessible SVG bar chart.

    Drawn small and scaled up by the page, so its labels stay readable on a phone too.
    """
    title = f"Questions asked per {duration(report.bucket_seconds)}"
    if not report.timeline:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="40" '
            f'aria-label="{escape(title)}: none"><text x="0" y="24">No questions yet</text></svg>'
        )
    top = max(n for _, n in report.timeline) or 1
    left, bottom, plot_h, font = 34, 28, height - 48, 15
    # At least MIN_SLOTS bar widths, so one busy minute is a bar, not a wall.
    bar_w = (width - left) / max(len(report.timeline), MIN_SLOTS)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" aria-labelledby="chart-title"><title id="chart-title">{escape(title)}'
        "</title>",
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
        'stroke="currentColor"/>',
        f'<text x="{left - 6}" y="{height - bottom - plot_h + 5}" text-anchor="end" '
        f'font-size="{font}" fill="currentColor">{top}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" font-size="{font}" '
        'fill="currentColor">0</text>',
    ]
    for i, (at, n) in enumerate(report.timeline):
        h = plot_h * n / top
        x = left + i * bar_w
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{height - bottom - h:.1f}" width="{max(bar_w - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="#1f5fa8"><title>{n} at {_clock(at)}</title></rect>'
        )
    end = report.timeline[-1][0] + report.bucket_seconds
    end_x = left + len(report.timeline) * bar_w
    labels: list[tuple[float, float, str]] = [(report.timeline[0][0], left, "start")]
    if end_x - left > width / 2:  # close together, the two times would overlap
        labels.append((end, end_x, "end"))
    for at, x, anchor in labels:
        parts.append(
            f'<text x="{x:.1f}" y="{height - 6}" text-anchor="{anchor}" font-size="{font}" '
            f'fill="currentColor">{_clock(at)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M UTC")


def when(at: float) -> str:
    """A bucket's start or an event's date, as a person reads it."""
    return datetime.fromtimestamp(at, UTC).strftime("%d %b %Y, %H:%M UTC")


def wait(seconds: float | None) -> str:
    """A waiting time in the largest units that keep it exact enough: "2 min 5 s", "1 h 10 min"."""
    if seconds is None:
        return "no question was screened"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


def duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        return "day" if seconds == 86400 else f"{seconds // 86400} days"
    if seconds % 3600 == 0:
        return "hour" if seconds == 3600 else f"{seconds // 3600} hours"
    return "minute" if seconds == 60 else f"{seconds // 60} minutes"
