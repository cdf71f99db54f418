"""The stream page: the windowed aggregate and alert records of the streaming pipeline shown as
negative share per key over time (alerts marked), volume, mean probabilities and language mix.
A late pane replaces the earlier panes of its key and window."""
from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from beam_pipeline.reports import page
from beam_pipeline.reports.values import as_count, as_counts, as_numbers
from beam_pipeline.reports.windows import (
    Window,
    WindowSet,
    collect_windows,
    negative_share_parts,
    time_order,
    top_keys_tables,
)

DEFAULT_TITLE = "Sentiment stream"
MAX_KEYS_CHARTED = 8
MAX_LANGUAGES_CHARTED = 8
MAX_KEYS_LISTED = 50
MAX_ALERTS_LISTED = 20
CORRECTED_PREFIX = "corrected_share_"


def render_stream_page(records: Iterable[Mapping[str, Any]], refresh_seconds: int | None = None,
                       title: str = DEFAULT_TITLE, *, source: str | None = None,
                       unreadable_lines: Sequence[str] = ()) -> str:
    """The page for ``records`` (aggregate and alert records; others are counted and ignored).
    With ``refresh_seconds`` the browser reloads it that often. ``source`` names where the
    records came from; ``unreadable_lines`` ("path:line: why") are reported on the page."""
    records = list(records)
    windows = collect_windows(records)
    body = [_status(windows, refresh_seconds, unreadable_lines)]
    if windows.by_key:
        body += [_headline(windows),
                 page.section("Negative share per key", *negative_share_parts(
                     windows, MAX_KEYS_CHARTED), _alerts_table(windows), top_keys_tables(windows),
                     section_id="negative-share"),
                 page.section("Volume and probabilities", page.charts_row(
                     _volume_part(windows), _probabilities_part(windows)), section_id="volume"),
                 page.section("Languages", _languages_part(windows), section_id="languages"),
                 page.section("Latest window per key", _latest_table(windows),
                              section_id="latest")]
    subtitle = " · ".join(part for part in (f"from {source}" if source else None,
                                            _latest_note(windows)) if part)
    return page.document(title, subtitle, body, {"stream-data": records}, refresh_seconds)


def _status(windows: WindowSet, refresh_seconds: int | None,
            unreadable_lines: Sequence[str]) -> str:
    parts = []
    if not windows.by_key:
        parts.append(page.sentence("No aggregate or alert records yet: the charts appear when the "
                                   "first window closes.", "verdict"))
    if refresh_seconds:
        parts.append(page.sentence(f"This page reloads itself every {refresh_seconds} s."))
    if unreadable_lines:
        parts.append(page.sentence(
            f"Skipped {page.plural(len(unreadable_lines), 'unreadable line')} of the input "
            f"(first: {unreadable_lines[0]}).", "warning"))
    if windows.ignored_records:
        parts.append(page.sentence(
            f"Ignored {page.plural(windows.ignored_records, 'record')}: not aggregate or alert "
            "records with a key, count, negative share and readable window times.", "warning"))
    return "".join(parts)


def _latest_note(windows: WindowSet) -> str | None:
    latest_start = _latest_start(windows)
    return f"latest window starts {page.format_time(latest_start)} UTC" if latest_start else None


def _latest_start(windows: WindowSet) -> datetime.datetime | None:
    return max((window.start for window in _timed(windows.windows)), default=None)


def _headline(windows: WindowSet) -> str:
    latest_start = _latest_start(windows)
    latest = [window for window in windows.windows if window.start == latest_start]
    items = [("keys", page.format_count(len(windows.by_key))),
             ("windows", page.format_count(len(windows.windows))),
             ("windows with alerts", page.format_count(len(windows.alerted))),
             ("scored in the latest window", page.format_count(sum(w.count for w in latest))),
             ("late updates", page.format_count(windows.superseded_panes))]
    return page.cards(items)


def _timed(windows: Iterable[Window]) -> list[Window]:
    return [window for window in windows if window.start is not None]


def _alerts_table(windows: WindowSet) -> str:
    alerted = sorted(windows.alerted, key=time_order, reverse=True)
    if not alerted:
        return page.sentence("No alert so far.")
    rows = [(window.key, page.format_time(window.start), page.format_share(window.negative_share),
             window.count, _plain_number(window.alert.get("threshold")),
             _plain_number(window.alert.get("min_count")), window.pane_index)
            for window in alerted[:MAX_ALERTS_LISTED]]
    return ("<h3>Alerts (newest first)</h3>"
            + page.table(["key", "window start (UTC)", "negative share", "scored", "threshold",
                          "min count", "pane"], rows, table_id="table-alerts"))


def _plain_number(value: Any) -> str:
    return "—" if value is None else str(value)


def _volume_part(windows: WindowSet) -> str:
    timed = _timed(windows.windows)
    if not timed:
        return page.sentence("These windows have no times, so there is no volume over time.")
    has_posts = all(window.number("posts") is not None for window in timed)
    has_reach = has_posts and all(window.number("reach") is not None for window in timed)
    measure = "posts" if has_posts else "count"
    keys = sorted(windows.by_key, key=lambda key: (-(windows.latest(key).number(measure) or 0),
                                                   key))[:MAX_KEYS_CHARTED]
    colors = page.key_colors(keys)
    figure = page.new_figure("Posts per window" + (" (dashed: reach)" if has_reach else "")
                             if has_posts else "Scored records per window")
    series = [(measure, "solid", "")] + ([("reach", "dash", " reach")] if has_reach else [])
    for key in keys:
        key_windows = _timed(windows.by_key[key])
        for field, dash, suffix in series:
            figure.add_trace(go.Scatter(
                x=[window.x for window in key_windows],
                y=[window.number(field) for window in key_windows], name=key + suffix,
                mode="lines+markers", line={"color": colors[key], "dash": dash},
                hovertemplate=f"{key}{suffix}<br>%{{x}}: %{{y:,}}<extra></extra>"))
    figure.update_xaxes(title="window start (UTC)")
    figure.update_yaxes(title="posts" if has_posts else "scored records", rangemode="tozero")
    note = ("" if has_posts else page.sentence(
        "Some windows carry no post counts (older records), so volume shows scored records."))
    if len(keys) < len(windows.by_key):
        note += page.sentence(f"Volume shows the {len(keys)} keys with the most {measure} in "
                              "their latest window.")
    return page.chart(figure, "chart-volume") + note


def _probabilities_part(windows: WindowSet) -> str:
    """Mean probability per label and window start, over all keys (weighted by count)."""
    totals: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    labels: list[str] = []
    for window in _timed(windows.windows):
        probabilities = as_numbers(window.record.get("mean_probabilities"))
        if not probabilities or not window.count:
            continue
        labels += [label for label in probabilities if label not in labels]
        counts[window.x] = counts.get(window.x, 0) + window.count
        for label, probability in probabilities.items():
            sums = totals.setdefault(window.x, {})
            sums[label] = sums.get(label, 0.0) + probability * window.count
    if not totals:
        return page.sentence("These records carry no mean probabilities.")
    starts = sorted(totals)
    colors = page.label_colors(labels)
    figure = page.new_figure("Mean probability per label (all keys)")
    for label in labels:
        figure.add_trace(go.Scatter(
            x=starts, y=[totals[start].get(label, 0.0) / counts[start] for start in starts],
            name=label, mode="lines+markers", line={"color": colors[label]},
            hovertemplate=f"{label}<br>%{{x}}: %{{y:.3f}}<extra></extra>"))
    figure.update_xaxes(title="window start (UTC)")
    figure.update_yaxes(title="mean probability", range=[0, 1.05])
    return page.chart(figure, "chart-probabilities")


def _languages_part(windows: WindowSet) -> str:
    """Posts per language and window start over all keys (stacked), and the unsupported-language
    count; the windows are categories, so each bar is labelled with its start."""
    per_start: dict[datetime.datetime, dict[str, int]] = {}
    unsupported: dict[datetime.datetime, int] = {}
    for window in _timed(windows.windows):
        mix = per_start.setdefault(window.start, {})
        for code, count in as_counts(window.record.get("languages")).items():
            mix[code] = mix.get(code, 0) + count
        unsupported_count = as_count(window.record.get("unsupported_language"))
        if unsupported_count is not None:
            unsupported[window.start] = unsupported.get(window.start, 0) + unsupported_count
    totals: dict[str, int] = {}
    for mix in per_start.values():
        for code, count in mix.items():
            totals[code] = totals.get(code, 0) + count
    if not totals and not unsupported:
        return page.sentence("These records carry no language counts (written by a pipeline "
                             "that does not count languages).")
    starts = sorted(per_start)
    categories = [page.format_time(start) for start in starts]
    ranked = sorted(totals, key=lambda code: (-totals[code], code))
    charted, other = ranked[:MAX_LANGUAGES_CHARTED], ranked[MAX_LANGUAGES_CHARTED:]
    colors = page.key_colors(charted)
    figure = page.new_figure("Posts per language and window (all keys)", barmode="stack")
    bars = [(code, [per_start[start].get(code, 0) for start in starts], colors[code])
            for code in charted]
    if other:
        bars.append(("other", [sum(per_start[start].get(code, 0) for code in other)
                               for start in starts], page.MUTED_COLOR))
    for name, values, color in bars:
        figure.add_trace(go.Bar(x=categories, y=values, name=name, marker={"color": color},
                                hovertemplate=f"{name}<br>%{{x}}: %{{y:,}}<extra></extra>"))
    if unsupported:
        figure.add_trace(go.Scatter(
            x=categories, y=[unsupported.get(start, 0) for start in starts],
            name="unsupported language (not scored)", mode="lines+markers",
            line={"color": page.DARK_COLOR, "dash": "dot"},
            hovertemplate="unsupported language<br>%{x}: %{y:,}<extra></extra>"))
    figure.update_xaxes(title="window start (UTC)", type="category")
    figure.update_yaxes(title="posts", rangemode="tozero")
    note = (page.sentence(f"{sum(unsupported.values()):,} posts were in a language the model "
                          "does not score (summed over windows).") if unsupported else "")
    return page.chart(figure, "chart-languages", height=360) + note


def _latest_table(windows: WindowSet) -> str:
    keys = list(windows.by_key)[:MAX_KEYS_LISTED]
    latest = [windows.latest(key) for key in keys]
    corrected = sorted({field for window in latest for field in window.record
                        if field.startswith(CORRECTED_PREFIX)
                        and not field.endswith(("_low", "_high"))})
    headers = ["key", "window start (UTC)", "pane", "posts", "reach", "scored", "negative share",
               "change", *(f"corrected {field[len(CORRECTED_PREFIX):]} share"
                           for field in corrected),
               "languages", "unsupported language", "alert"]
    rows = []
    for window in latest:
        change = windows.change(window.key)
        rows.append((
            window.key, page.format_time(window.start), window.pane_index,
            as_count(window.record.get("posts")), as_count(window.record.get("reach")),
            window.count, page.format_share(window.negative_share),
            "—" if change is None else f"{100 * change:+.1f} points",
            *(_corrected_share(window, field) for field in corrected),
            _language_mix(window), as_count(window.record.get("unsupported_language")),
            "alert" if window.alert else ""))
    note = (page.sentence(f"The table lists the first {MAX_KEYS_LISTED} of "
                          f"{len(windows.by_key):,} keys.")
            if len(windows.by_key) > MAX_KEYS_LISTED else "")
    return page.table(headers, rows, table_id="table-latest") + note


def _corrected_share(window: Window, field: str) -> str:
    share, low, high = (window.number(field + suffix) for suffix in ("", "_low", "_high"))
    if share is None:
        return "—"
    interval = (f" ({page.format_share(low)} – {page.format_share(high)})"
                if low is not None and high is not None else "")
    return page.format_share(share) + interval


def _language_mix(window: Window) -> str:
    languages = as_counts(window.record.get("languages"))
    total = sum(languages.values())
    if not total:
        return "—"
    ranked = sorted(languages.items(), key=lambda item: (-item[1], item[0]))[:3]
    return ", ".join(f"{code} {page.format_share(count / total, 0)}" for code, count in ranked)
