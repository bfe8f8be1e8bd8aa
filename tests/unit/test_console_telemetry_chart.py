"""The console's telemetry chart, pure: windows become points where their values are, a gap breaks the mean line,
alerts are marked at their time, and the template draws exactly what the layout holds, escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from console import telemetry_reads
from console.pages import render
from console.telemetry_chart import HEIGHT, LEFT, TOP, WIDTH, Alert, Window, layout
from console.telemetry_reads import Device
from telemetry import store

START = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
END = START + timedelta(minutes=10)


def _window(minute: int, low: float, mean: float, high: float) -> Window:
    return Window(START + timedelta(minutes=minute), 60, 3, low, mean, high)


def test_the_console_reads_the_documents_the_analytics_write() -> None:
    assert (telemetry_reads.DEVICES, telemetry_reads.METRICS, telemetry_reads.WINDOWS, telemetry_reads.ALERTS) == (
        store.DEVICES,
        store.METRICS,
        store.WINDOWS,
        store.ALERTS,
    )


def test_windows_become_points_at_their_middle_and_values() -> None:
    chart = layout("temp", [_window(1, 10, 15, 20), _window(0, 0, 5, 10)], [], START, END)

    first, second = chart.points
    assert first.window.start == START  # oldest first, whatever the order given
    assert first.x == round(LEFT + (WIDTH - 12 - LEFT) * 30 / 600, 1)
    assert second.x > first.x
    # Higher values are higher on the chart (smaller y), and every point is inside the plot.
    assert first.y_max < first.y_mean < first.y_min
    assert second.y_mean < first.y_mean
    assert all(TOP <= y <= HEIGHT - 26 for p in chart.points for y in (p.y_min, p.y_mean, p.y_max))
    assert chart.paths == (f"M{first.x},{first.y_mean} L{second.x},{second.y_mean}",)


def test_a_gap_in_the_windows_breaks_the_mean_line() -> None:
    chart = layout("temp", [_window(0, 1, 2, 3), _window(1, 1, 2, 3), _window(5, 1, 2, 3)], [], START, END)

    assert len(chart.paths) == 2 and chart.paths[1].count("L") == 0


def test_alerts_are_marked_at_their_time_with_their_threshold() -> None:
    raised = Alert(START + timedelta(minutes=2), "raised", "above", 30.0, 31.5)
    cleared = Alert(START + timedelta(minutes=4), "cleared", "above", 30.0, 28.0)

    chart = layout("temp", [_window(2, 25, 29, 31.5)], [cleared, raised], START, END)

    assert [(m.alert.state, m.x) for m in chart.alerts] == [
        ("raised", round(LEFT + (WIDTH - 12 - LEFT) * 0.2, 1)),
        ("cleared", round(LEFT + (WIDTH - 12 - LEFT) * 0.4, 1)),
    ]
    assert [t.label for t in chart.thresholds] == ["30"]
    assert chart.low < 25 and chart.high > 31.5


def test_value_and_time_axes_are_round() -> None:
    chart = layout("temp", [_window(0, 0, 50, 100)], [], START, END)

    assert [t.label for t in chart.y_ticks] == ["0", "25", "50", "75", "100"]
    assert [t.label for t in chart.x_ticks] == ["09:00", "09:02", "09:04", "09:06", "09:08", "09:10"]


def test_the_template_draws_every_point_and_alert_and_escapes_names() -> None:
    device = Device("dev-1", START, {"<b>m</b>": 1.0}, {"<b>m</b>": "above"})
    alert = Alert(START + timedelta(minutes=2), "raised", "above", 30.0, 31.5)
    chart = layout("<b>m</b>", [_window(0, 1, 2, 3), _window(1, 1, 2, 3)], [alert], START, END)

    body, _, _ = render(
        "_charts.html", device=device, charts=[chart], range_text="10 minutes", start=START, end=END, minutes=10
    )

    assert body.count('<circle class="point"') == 2
    assert body.count('<g class="alert raised"') == 1
    assert "<b>m</b>" not in body and "&lt;b&gt;m&lt;/b&gt;" in body


def test_an_empty_range_says_so() -> None:
    device = Device("dev-1", START, {"temp": 1.0}, {})

    body, _, _ = render(
        "_charts.html",
        device=device,
        charts=[layout("temp", [], [], START, END)],
        range_text="1 hour",
        start=START,
        end=END,
        minutes=60,
    )

    assert "No windows of temp in the last 1 hour." in body and "<svg" not in body
