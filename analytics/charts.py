"""Geometry of the overview page's SVG charts, computed on the server.

The functions here turn counts into rectangles, ticks and labels with
coordinates in SVG user units. The templates in templates/analytics/charts/
draw them, so the page needs no JavaScript and loads nothing from elsewhere.
"""

import math
from dataclasses import dataclass, field
from datetime import datetime

from analytics.queries import BUCKET_SIZES, ServiceVolume
from logs.levels import Level

LEVEL_COLORS = {
    Level.DEBUG: "#94a3b8",
    Level.INFO: "#2563eb",
    Level.WARNING: "#f59e0b",
    Level.ERROR: "#dc2626",
    Level.CRITICAL: "#7e22ce",
}

# Space around the plot for axis labels, in SVG units.
LEFT_MARGIN = 64
RIGHT_MARGIN = 16
TOP_MARGIN = 12
BOTTOM_MARGIN = 32
X_LABELS = 8
# Spacing of the time labels, in buckets, from which time_ticks picks.
LABEL_STEPS = {
    "minute": [1, 2, 5, 10, 15, 30, 60, 120, 180],
    "hour": [1, 2, 3, 6, 12, 24, 48],
    "day": [1, 2, 7, 14, 28, 91],
}
Y_TICKS = 5


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    title: str
    key: str


@dataclass
class Series:
    level: Level
    bars: list[Bar] = field(default_factory=list)

    @property
    def color(self) -> str:
        return LEVEL_COLORS[self.level]

    @property
    def name(self) -> str:
        return self.level.name


@dataclass
class Tick:
    position: float
    label: str


@dataclass
class Note:
    """A text label placed in the plot, such as the total at a bar's end."""

    x: float
    y: float
    text: str


@dataclass
class Chart:
    width: int
    height: int
    plot_left: float
    plot_top: float
    plot_right: float
    plot_bottom: float
    series: list[Series]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    empty: bool
    notes: list[Note] = field(default_factory=list)

    @property
    def bar_count(self) -> int:
        return sum(len(series.bars) for series in self.series)

    @property
    def label_left(self) -> float:
        """Right edge of the labels left of the plot."""
        return self.plot_left - 8

    @property
    def label_below(self) -> float:
        """Baseline of the labels under the plot."""
        return self.plot_bottom + 18


def nice_maximum(value: int) -> int:
    """Round a count up to 1, 2 or 5 times a power of ten, so ticks are round."""
    if value <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if value <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def format_count(value: int) -> str:
    """Shorten a count for an axis label: 950, 12k, 3.5M."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:.3g}M"
    if value >= 1_000:
        return f"{value / 1_000:.3g}k"
    return str(value)


def _value_ticks(maximum: int, start: float, length: float, upward: bool) -> list:
    # nice_maximum returns 1, 2 or 5 times a power of ten, which splits into
    # five, four or five round steps once it is large enough.
    divisions = 4 if str(maximum)[0] == "2" else 5
    step = maximum // divisions if maximum >= divisions * 2 else 1
    ticks = []
    for value in range(0, maximum + 1, step):
        offset = length * value / maximum
        position = start - offset if upward else start + offset
        ticks.append(Tick(round(position, 2), format_count(value)))
    return ticks


def time_ticks(starts: list[datetime], bucket: str, slot: float, left: float):
    """Label the buckets that start at round times, at most X_LABELS of them.

    The step is the smallest of LABEL_STEPS (in buckets) that keeps the count
    within X_LABELS. A bucket gets a label when its start is a whole multiple
    of the step since the Unix epoch, so labels fall on round times such as
    every 10 minutes or every 6 hours. A label at midnight shows the date.
    """
    size = int(BUCKET_SIZES[bucket].total_seconds())
    steps = LABEL_STEPS[bucket]
    step = next((s for s in steps if len(starts) / s <= X_LABELS), steps[-1])
    ticks = []
    for index, start in enumerate(starts):
        if (int(start.timestamp()) // size) % step:
            continue
        midnight = start.hour == 0 and start.minute == 0
        label = f"{start:%b %d}" if midnight else f"{start:%H:%M}"
        # A label marks where its bucket starts, the left edge of its column.
        ticks.append(Tick(round(left + index * slot, 2), label))
    return ticks


def stacked_columns(
    starts: list[datetime],
    counts: dict[Level, list[int]],
    bucket: str,
    width: int = 960,
    height: int = 280,
) -> Chart:
    """Lay out one column per time bucket, stacked by level from DEBUG up."""
    plot_left, plot_right = LEFT_MARGIN, width - RIGHT_MARGIN
    plot_top, plot_bottom = TOP_MARGIN, height - BOTTOM_MARGIN
    plot_height = plot_bottom - plot_top
    slot = (plot_right - plot_left) / max(len(starts), 1)
    # A gap between columns while they are wide enough to keep one.
    gap = slot * 0.2 if slot >= 4 else 0
    totals = [sum(column) for column in zip(*counts.values(), strict=True)]
    maximum = nice_maximum(max(totals, default=0))

    series = []
    stacked = [0] * len(starts)
    for level, column_counts in counts.items():
        current = Series(level)
        for index, count in enumerate(column_counts):
            if not count:
                continue
            top = plot_bottom - plot_height * (stacked[index] + count) / maximum
            bar_height = plot_height * count / maximum
            stacked[index] += count
            current.bars.append(
                Bar(
                    x=round(plot_left + index * slot + gap / 2, 2),
                    y=round(top, 2),
                    width=round(max(slot - gap, 0.5), 2),
                    height=round(max(bar_height, 0.5), 2),
                    count=count,
                    title=f"{starts[index]:%Y-%m-%d %H:%M} UTC, {level.name}: {count}",
                    key=starts[index].isoformat(),
                )
            )
        series.append(current)

    return Chart(
        width=width,
        height=height,
        plot_left=plot_left,
        plot_top=plot_top,
        plot_right=plot_right,
        plot_bottom=plot_bottom,
        series=series,
        x_ticks=time_ticks(starts, bucket, slot, plot_left),
        y_ticks=_value_ticks(maximum, plot_bottom, plot_height, upward=True),
        empty=not any(totals),
    )


def stacked_rows(
    services: list[ServiceVolume],
    width: int = 960,
    row_height: int = 26,
    label_width: int = 250,
) -> Chart:
    """Lay out one bar per service, stacked by level, longest first."""
    plot_left, plot_right = label_width, width - 72
    plot_top = TOP_MARGIN
    plot_bottom = plot_top + row_height * max(len(services), 1)
    height = int(plot_bottom + BOTTOM_MARGIN)
    plot_width = plot_right - plot_left
    maximum = nice_maximum(max((s.total for s in services), default=0))

    series_by_level: dict[Level, Series] = {}
    notes = []
    for row, service in enumerate(services):
        left = plot_left
        for level in sorted(service.by_level):
            count = service.by_level[level]
            bar_width = plot_width * count / maximum
            current = series_by_level.setdefault(level, Series(level))
            current.bars.append(
                Bar(
                    x=round(left, 2),
                    y=round(plot_top + row * row_height + 4, 2),
                    width=round(max(bar_width, 0.5), 2),
                    height=row_height - 8,
                    count=count,
                    title=f"{service.service_name}, {level.name}: {count}",
                    key=service.service_name,
                )
            )
            left += bar_width
        notes.append(
            Note(
                x=round(left + 6, 2),
                y=round(plot_top + (row + 0.5) * row_height, 2),
                text=f"{service.total:,}",
            )
        )

    return Chart(
        width=width,
        height=height,
        plot_left=plot_left,
        plot_top=plot_top,
        plot_right=plot_right,
        plot_bottom=plot_bottom,
        series=[series_by_level[level] for level in sorted(series_by_level)],
        x_ticks=(
            _value_ticks(maximum, plot_left, plot_width, upward=False)
            if services
            else []
        ),
        y_ticks=[
            Tick(plot_top + (row + 0.5) * row_height, service.service_name)
            for row, service in enumerate(services)
        ],
        empty=not services,
        notes=notes,
    )
