"""Per key and window aggregate and alert records (one shape for batch and streaming, see
`beam_pipeline.aggregates`): the latest pane of each window, and the negative share chart and key
tables both pages show. Shares are over ``posts`` (distinct scored posts); ``reach`` (every scored
record, copies included) is shown beside them. Batch aggregates of a run without a time column
have no window times (``window_start`` null): one window per key covering the whole run, shown as
"all time"."""
from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping
from typing import Any

import plotly.graph_objects as go

from beam_pipeline.reports import page
from beam_pipeline.reports.values import as_count, as_number

RECORD_TYPES = ("aggregate", "alert")
#: how a window without times is labelled: the whole run (no time column) ...
ALL_TIME = "all time"
#: ... or, beside windows with times, the records that had no time value
NO_TIME = "no time value"
_EARLIEST = datetime.datetime.min.replace(tzinfo=datetime.UTC)


@dataclasses.dataclass(frozen=True)
class Window:
    """One key's window as its latest pane tells it. ``alert`` is the window's latest alert: a
    window once alerted stays marked, even when a later pane falls back under the threshold."""

    key: str
    start: datetime.datetime | None
    end: datetime.datetime | None
    pane_index: int | None
    record: Mapping[str, Any]
    alert: Mapping[str, Any] | None

    @property
    def posts(self) -> int:
        """Distinct scored posts: the denominator of the counts and shares."""
        return as_count(self.record["posts"])

    @property
    def reach(self) -> int | None:
        """Every scored record, copies included (None where the record lacks it)."""
        return as_count(self.record.get("reach"))

    @property
    def negative_share(self) -> float:
        return as_number(self.record["negative_share"])

    @property
    def x(self) -> str:
        """The window's position on a time axis (its start, UTC); `ALL_TIME` without times."""
        return ALL_TIME if self.start is None else self.start.strftime("%Y-%m-%d %H:%M:%S")

    @property
    def pane_note(self) -> str:
        """", pane N" for a streaming window, "" for a batch one (which has no panes)."""
        return "" if self.pane_index is None else f", pane {self.pane_index}"

    def number(self, field: str) -> float | None:
        return as_number(self.record.get(field))


@dataclasses.dataclass(frozen=True)
class WindowSet:
    """Every key's windows in time order, and what reading the records left out."""

    by_key: dict[str, list[Window]]
    ignored_records: int
    superseded_panes: int

    @property
    def windows(self) -> list[Window]:
        return [window for windows in self.by_key.values() for window in windows]

    @property
    def alerted(self) -> list[Window]:
        return [window for window in self.windows if window.alert is not None]

    @property
    def timed(self) -> bool:
        """Whether the windows have times (aggregates of a run without a time column do not)."""
        return any(window.start is not None for window in self.windows)

    def label(self, window: Window) -> str:
        """The window's start as the tables show it; `ALL_TIME` when no window has times (a run
        without a time column), `NO_TIME` for the records without a time value beside them."""
        if window.start is not None:
            return page.format_time(window.start)
        return NO_TIME if self.timed else ALL_TIME

    def latest(self, key: str) -> Window:
        return self.by_key[key][-1]

    def previous(self, key: str) -> Window | None:
        """The key's window before its latest one in time (None when there is none: windows
        without times have no place in time)."""
        timed = [window for window in self.by_key[key] if window.start is not None]
        return timed[-2] if len(timed) >= 2 and timed[-1] is self.latest(key) else None

    def change(self, key: str) -> float | None:
        """Negative share of the key's last window minus that of the window before it."""
        previous = self.previous(key)
        if previous is None:
            return None
        return self.latest(key).negative_share - previous.negative_share

    def run_negative_share(self, key: str) -> tuple[float, int]:
        """The key's negative share over all its windows (weighted by posts) and those posts."""
        windows = self.by_key[key]
        total = sum(window.posts for window in windows)
        if not total:
            return 0.0, 0
        return sum(window.negative_share * window.posts for window in windows) / total, total


def collect_windows(records: Iterable[Any]) -> WindowSet:
    """Keeps the latest pane (highest ``pane_index``, the later record on a tie) of every key and
    window; an alert record stands for its window when no aggregate of that pane or later came.
    Records that are not aggregates or alerts with a key, posts, negative share and readable
    window times (or none: ``window_start`` null) are counted as ignored; batch records have no
    ``pane_index`` (their window's `Window.pane_index` is None)."""
    aggregates: dict[tuple, tuple[int | None, Mapping[str, Any]]] = {}
    alerts: dict[tuple, tuple[int | None, Mapping[str, Any]]] = {}
    ignored = superseded = 0
    for record in records:
        identity = _identity(record)
        if identity is None:
            ignored += 1
            continue
        pane = as_count(record.get("pane_index"))
        latest = alerts if record["type"] == "alert" else aggregates
        current = latest.get(identity)
        if current is None or (pane or 0) >= (current[0] or 0):
            latest[identity] = (pane, record)
        if current is not None and latest is aggregates:
            superseded += 1
    by_key: dict[str, list[Window]] = {}
    for identity in {**aggregates, **alerts}:
        aggregate, alert = aggregates.get(identity), alerts.get(identity)
        if aggregate is not None and (alert is None or (aggregate[0] or 0) >= (alert[0] or 0)):
            pane, record = aggregate
        else:
            pane, record = alert
        key, start, end = identity
        by_key.setdefault(key, []).append(
            Window(key, start, end, pane, record, alert[1] if alert else None))
    for windows in by_key.values():
        windows.sort(key=time_order)
    return WindowSet(dict(sorted(by_key.items())), ignored, superseded)


def time_order(window: Window) -> tuple[bool, datetime.datetime]:
    """Sort key: windows without times first, then by start."""
    return window.start is not None, window.start or _EARLIEST


def _identity(record: Any) -> tuple[str, datetime.datetime | None, datetime.datetime | None] | None:
    if not isinstance(record, Mapping) or record.get("type") not in RECORD_TYPES:
        return None
    if (record.get("key") is None or as_count(record.get("posts")) is None
            or as_number(record.get("negative_share")) is None):
        return None
    try:
        start = page.parse_time(record.get("window_start"))
        end = page.parse_time(record.get("window_end"))
    except ValueError:
        return None
    return str(record["key"]), start, end


def negative_share_parts(windows: WindowSet, max_keys: int = 8) -> list[str]:
    """The ``chart-negative-share`` chart (per key over time, alerts marked; one bar per key,
    "all time", when the windows have no times) and the sentences that go with it."""
    shown = keys_to_show(windows, max_keys)
    notes = []
    if windows.timed:
        figure = _negative_share_over_time(windows, shown)
        untimed = sum(window.start is None for window in windows.windows)
        if untimed:
            notes.append(page.sentence(
                f"Left out of the chart: {page.plural(untimed, 'window')} of records without a "
                f"time value (\"{NO_TIME}\" in the tables)."))
    else:
        figure = _negative_share_per_key(windows, shown)
        notes.append(page.sentence(
            "These aggregates have no time window (the run had no time column): one window per "
            f"key covering the whole run, shown as \"{ALL_TIME}\" rather than over time."))
    if len(shown) < len(keys_to_show(windows, len(windows.by_key))):
        notes.append(page.sentence(
            f"Showing {len(shown)} of {len(windows.by_key):,} keys: those with alerts first, then "
            "those with the highest negative share in their latest window."))
    single = single_window_note(windows) if windows.timed else ""
    return [page.chart(figure, "chart-negative-share", height=380), *notes,
            *([single] if single else [])]


def keys_to_show(windows: WindowSet, limit: int) -> list[str]:
    """Keys with an alert first, then by the negative share of their latest window; when the
    windows have times, only the keys with a window that has times (the others have no point on
    a time axis)."""
    def rank(key: str) -> tuple:
        alerted = any(window.alert is not None for window in windows.by_key[key])
        return not alerted, -windows.latest(key).negative_share, key
    keys = [key for key in windows.by_key if not windows.timed
            or any(window.start is not None for window in windows.by_key[key])]
    return sorted(keys, key=rank)[:limit]


def reach_text(window: Window) -> str:
    """The window's reach for a tooltip ("—" where the record has none)."""
    return page.format_count(window.reach)


def _negative_share_over_time(windows: WindowSet, shown: list[str]) -> go.Figure:
    figure = page.new_figure("Negative share per key and window")
    colors = page.key_colors(shown)
    for key in shown:
        timed = [window for window in windows.by_key[key] if window.start is not None]
        figure.add_trace(go.Scatter(
            x=[window.x for window in timed], y=[window.negative_share for window in timed],
            mode="lines+markers", name=key, line={"color": colors[key], "width": 2},
            marker={"size": 8},
            customdata=[[window.posts, reach_text(window), window.pane_note] for window in timed],
            hovertemplate="%{fullData.name}<br>%{x}<br>negative share %{y:.1%}<br>"
                          "%{customdata[0]:,} posts, reach %{customdata[1]}%{customdata[2]}"
                          "<extra></extra>"))
    alerted = [window for window in windows.alerted
               if window.key in shown and window.start is not None]
    if alerted:
        figure.add_trace(go.Scatter(
            x=[window.x for window in alerted], y=[window.negative_share for window in alerted],
            mode="markers", name="alert",
            marker={"symbol": "x", "size": 13, "color": page.ALERT_COLOR,
                    "line": {"width": 1, "color": "#ffffff"}},
            customdata=[[window.key, window.posts, _min_posts_text(window)]
                        for window in alerted],
            hovertemplate="alert: %{customdata[0]}<br>%{x}<br>negative share %{y:.1%} of "
                          "%{customdata[1]:,} posts (min posts %{customdata[2]})"
                          "<extra></extra>"))
    _threshold_lines(figure, alerted)
    figure.update_xaxes(title="window start (UTC)")
    drawn = [window for key in shown for window in windows.by_key[key] if window.start is not None]
    if len({window.start for window in drawn}) == 1:
        figure.update_xaxes(range=_range_around(drawn[0]))
    figure.update_yaxes(title="negative share", range=[0, 1.05], tickformat=".0%")
    return figure


def _min_posts_text(window: Window) -> str:
    value = as_count(window.alert.get("min_posts")) if window.alert else None
    return page.format_count(value)


def _range_around(window: Window) -> list[str]:
    """A time axis range centred on the window's start, one window length either side (Plotly
    zooms a lone point to a millisecond otherwise)."""
    length = (window.end - window.start if window.end is not None and window.end > window.start
              else datetime.timedelta(hours=1))
    return [(window.start + offset).strftime("%Y-%m-%d %H:%M:%S") for offset in (-length, length)]


def _negative_share_per_key(windows: WindowSet, shown: list[str]) -> go.Figure:
    latest = [windows.latest(key) for key in shown]
    figure = page.new_figure(f"Negative share per key ({ALL_TIME}: no time window)",
                             showlegend=False)
    figure.add_trace(go.Bar(
        x=shown, y=[window.negative_share for window in latest], name=ALL_TIME,
        marker={"color": [page.ALERT_COLOR if window.alert else page.KEY_COLORS[0]
                          for window in latest]},
        text=[("alert " if window.alert else "") + page.format_share(window.negative_share)
              for window in latest],
        customdata=[[window.posts, reach_text(window)] for window in latest],
        hovertemplate=f"%{{x}}, {ALL_TIME}<br>negative share %{{y:.1%}} of "
                      "%{customdata[0]:,} posts, reach %{customdata[1]}<extra></extra>"))
    _threshold_lines(figure, [window for window in latest if window.alert], "top right")
    figure.update_xaxes(title=f"key ({ALL_TIME})", type="category")
    figure.update_yaxes(title="negative share", range=[0, 1.05], tickformat=".0%")
    return figure


def _threshold_lines(figure: go.Figure, alerted: Iterable[Window],
                     position: str = "top left") -> None:
    """A dotted line per alert threshold; per key bars put its label on the right, over the
    lowest bars (alerted keys come first, on the left)."""
    values = {as_number(window.alert.get("threshold")) for window in alerted}
    for threshold in sorted(value for value in values if value is not None):
        figure.add_hline(y=threshold, line={"dash": "dot", "color": page.ALERT_COLOR},
                         annotation_text=f"alert threshold {threshold:.0%}",
                         annotation_position=position)


def single_window_note(windows: WindowSet) -> str:
    """A sentence naming the keys that have a single window ("" when there are none)."""
    single = [key for key, key_windows in windows.by_key.items() if len(key_windows) == 1]
    if not single:
        return ""
    names = ", ".join(single[:10]) + (f" and {len(single) - 10:,} more" if len(single) > 10
                                      else "")
    if len(single) == 1 == len(windows.by_key):
        return page.sentence(f"Key {names} has a single window: there is no trend or change to "
                             "show yet.")
    if len(single) == len(windows.by_key):
        return page.sentence(f"Every key has a single window ({names}): there is no trend or "
                             "change to show yet.")
    verb = "has" if len(single) == 1 else "have"
    return page.sentence(f"{len(single):,} of {len(windows.by_key):,} keys {verb} a single "
                         f"window, so there is no trend or change for them: {names}.")


def top_keys_tables(windows: WindowSet, limit: int = 10) -> str:
    """Two tables: keys by the negative share of their latest window (with its posts and reach),
    and by its change from the window before (a sentence instead when there are no times)."""
    latest = sorted((windows.latest(key) for key in windows.by_key),
                    key=lambda window: (-window.negative_share, window.key))
    share_rows = [(window.key, windows.label(window), window.posts, window.reach,
                   page.format_share(window.negative_share), "alert" if window.alert else "")
                  for window in latest[:limit]]
    heading = "latest window" if windows.timed else ALL_TIME
    parts = [f"<h3>Top keys by negative share ({heading})</h3>",
             page.table(["key", "window start (UTC)", "posts", "reach", "negative share",
                         "alert"], share_rows, table_id="table-top-negative-share")]
    if not windows.timed:
        parts.append(page.sentence("These aggregates have no time window, so there is no change "
                                   "over time to rank."))
        return "".join(parts)
    changing = sorted((key for key in windows.by_key if windows.change(key) is not None),
                      key=lambda key: (-abs(windows.change(key)), key))
    parts.append("<h3>Top keys by change (latest window vs the one before)</h3>")
    if changing:
        change_rows = [(key, page.format_share(windows.previous(key).negative_share),
                        page.format_share(windows.latest(key).negative_share),
                        f"{100 * windows.change(key):+.1f} points")
                       for key in changing[:limit]]
        parts.append(page.table(["key", "previous window", "latest window", "change"],
                                change_rows, table_id="table-top-change"))
    else:
        parts.append(page.sentence("No key has two windows yet, so there is no change to rank."))
    return "".join(parts)
