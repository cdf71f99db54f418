"""The stream page: the windowed aggregate and alert records of the streaming pipeline shown as
negative share per key over time (alerts marked), volume (posts and reach), mean probabilities
and language mix. A late pane replaces the earlier panes of its key and window. Records without
window times (batch aggregates of a run without a time column) are shown per key, "all time"."""
from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from beam_pipeline.reports import page
from beam_pipeline.reports.values import as_count, as_counts, as_numbers
from beam_pipeline.reports.windows import (
    ALL_TIME,
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
            "records with a key, posts, negative share and readable window times.", "warning"))
    return "".join(parts)


def _latest_note(windows: WindowSet) -> str | None:
    latest_start = _latest_start(windows)
    return f"latest window starts {page.format_time(latest_start)} UTC" if latest_start else None


def _latest_start(windows: WindowSet) -> datetime.datetime | None:
    return max((window.start for window in _timed(windows.windows)), default=None)


def _headline(windows: WindowSet) -> str:
    latest_start = _latest_start(windows)
    latest = [window for window in windows.windows if window.start == latest_start]
    which = "in the latest window" if windows.timed else f"({ALL_TIME})"
    reach = [window.reach for window in latest]
    items = [("keys", page.format_count(len(windows.by_key))),
             ("windows", page.format_count(len(windows.windows))),
             ("windows with alerts", page.format_count(len(windows.alerted))),
             (f"posts {which}", page.format_count(sum(window.posts for window in latest))),
             (f"reach {which}", page.format_count(None if None in reach else sum(reach))),
             ("late updates", page.format_count(windows.superseded_panes))]
    return page.cards(items)


def _timed(windows: Iterable[Window]) -> list[Window]:
    return [window for window in windows if window.start is not None]


def _alerts_table(windows: WindowSet) -> str:
    alerted = sorted(windows.alerted, key=time_order, reverse=True)
    if not alerted:
        return page.sentence("No alert so far.")
    rows = [(window.key, windows.label(window), page.format_share(window.negative_share),
             window.posts, window.reach, _plain_number(window.alert.get("threshold")),
             _plain_number(window.alert.get("min_posts")), window.pane_index)
            for window in alerted[:MAX_ALERTS_LISTED]]
    return ("<h3>Alerts (newest first)</h3>"
            + page.table(["key", "window start (UTC)", "negative share", "posts", "reach",
                          "threshold", "min posts", "pane"], rows, table_id="table-alerts"))


def _plain_number(value: Any) -> str:
    return "—" if value is None else str(value)


def _volume_part(windows: WindowSet) -> str:
    """Posts (solid) and reach (dashed) per window of the keys with the most posts in their
    latest window; per key bars ("all time") when the windows have no times."""
    keys = sorted(windows.by_key, key=lambda key: (-windows.latest(key).posts, key))
    charted = keys[:MAX_KEYS_CHARTED]
    if not windows.timed:
        return _volume_per_key(windows, charted)
    timed = _timed(windows.windows)
    has_reach = all(window.reach is not None for window in timed)
    colors = page.key_colors(charted)
    figure = page.new_figure("Posts and reach per window (dashed: reach)" if has_reach
                             else "Posts per window")
    series = [("posts", "solid", "")] + ([("reach", "dash", " reach")] if has_reach else [])
    for key in charted:
        key_windows = _timed(windows.by_key[key])
        for field, dash, suffix in series:
            figure.add_trace(go.Scatter(
                x=[window.x for window in key_windows],
                y=[getattr(window, field) for window in key_windows], name=key + suffix,
                mode="lines+markers", line={"color": colors[key], "dash": dash},
                hovertemplate=f"{key}<br>%{{x}}: %{{y:,}} {field}<extra></extra>"))
    figure.update_xaxes(title="window start (UTC)")
    figure.update_yaxes(title="posts and reach" if has_reach else "posts", rangemode="tozero")
    notes = [page.sentence("Posts are distinct scored posts (the shares count each once); reach "
                           "counts every scored record, copies included.")]
    if not has_reach:
        notes.append(page.sentence("Some windows carry no reach (older records), so volume shows "
                                   "posts only."))
    if len(charted) < len(keys):
        notes.append(page.sentence(f"Volume shows the {len(charted)} of {len(keys):,} keys with "
                                   "the most posts in their latest window."))
    return page.chart(figure, "chart-volume") + "".join(notes)


def _volume_per_key(windows: WindowSet, keys: list[str]) -> str:
    latest = [windows.latest(key) for key in keys]
    figure = page.new_figure(f"Posts and reach per key ({ALL_TIME})", barmode="group")
    figure.add_trace(go.Bar(x=keys, y=[window.posts for window in latest], name="posts",
                            marker={"color": page.KEY_COLORS[0]},
                            hovertemplate=f"%{{x}}, {ALL_TIME}: %{{y:,}} posts<extra></extra>"))
    if all(window.reach is not None for window in latest):
        figure.add_trace(go.Bar(x=keys, y=[window.reach for window in latest], name="reach",
                                marker={"color": page.KEY_COLORS[1]},
                                hovertemplate=f"%{{x}}, {ALL_TIME}: %{{y:,}} reach"
                                              "<extra></extra>"))
    figure.update_xaxes(title=f"key ({ALL_TIME})", type="category")
    figure.update_yaxes(title="posts and reach", rangemode="tozero")
    note = page.sentence("These windows have no times, so volume is one bar per key over the "
                         "whole run rather than over time.")
    return page.chart(figure, "chart-volume") + note


def _groups(windows: WindowSet) -> list[tuple[str, list[Window]]]:
    """What the probability and language charts put on their x axis: each window start (over
    all keys) when the windows have times, else each charted key ("all time")."""
    if windows.timed:
        starts: dict[datetime.datetime, list[Window]] = {}
        for window in _timed(windows.windows):
            starts.setdefault(window.start, []).append(window)
        return [(page.format_time(start), starts[start]) for start in sorted(starts)]
    keys = sorted(windows.by_key, key=lambda key: (-windows.latest(key).posts, key))
    return [(key, windows.by_key[key]) for key in keys[:MAX_KEYS_CHARTED]]


def _probabilities_part(windows: WindowSet) -> str:
    """Mean probability per label and window start, over all keys (weighted by posts); per key
    without times."""
    means: list[tuple[str, dict[str, float]]] = []
    labels: list[str] = []
    for name, group in _groups(windows):
        sums: dict[str, float] = {}
        total = 0
        for window in group:
            probabilities = as_numbers(window.record.get("mean_probabilities"))
            if not probabilities or not window.posts:
                continue
            labels += [label for label in probabilities if label not in labels]
            total += window.posts
            for label, probability in probabilities.items():
                sums[label] = sums.get(label, 0.0) + probability * window.posts
        if total:
            means.append((name, {label: value / total for label, value in sums.items()}))
    if not means:
        return page.sentence("These records carry no mean probabilities.")
    colors = page.label_colors(labels)
    x = [name for name, _ in means]
    if windows.timed:
        figure = page.new_figure("Mean probability per label (all keys)")
        for label in labels:
            figure.add_trace(go.Scatter(
                x=x, y=[mean.get(label, 0.0) for _, mean in means], name=label,
                mode="lines+markers", line={"color": colors[label]},
                hovertemplate=f"{label}<br>%{{x}}: %{{y:.3f}}<extra></extra>"))
        figure.update_xaxes(title="window start (UTC)")
    else:
        figure = page.new_figure(f"Mean probability per label and key ({ALL_TIME})",
                                 barmode="group")
        for label in labels:
            figure.add_trace(go.Bar(
                x=x, y=[mean.get(label, 0.0) for _, mean in means], name=label,
                marker={"color": colors[label]},
                hovertemplate=f"{label}<br>%{{x}}, {ALL_TIME}: %{{y:.3f}}<extra></extra>"))
        figure.update_xaxes(title=f"key ({ALL_TIME})", type="category")
    figure.update_yaxes(title="mean probability", range=[0, 1.05])
    return page.chart(figure, "chart-probabilities")


def _languages_part(windows: WindowSet) -> str:
    """Records per language and window start over all keys (stacked), and the
    unsupported-language count; the windows are categories, so each bar is labelled with its
    start. Per key ("all time") without times."""
    groups = _groups(windows)
    mixes: list[dict[str, int]] = []
    unsupported: list[int | None] = []
    for _, group in groups:
        mix: dict[str, int] = {}
        for window in group:
            for code, count in as_counts(window.record.get("languages")).items():
                mix[code] = mix.get(code, 0) + count
        mixes.append(mix)
        counted = [count for count in (as_count(window.record.get("unsupported_language"))
                                       for window in group) if count is not None]
        unsupported.append(sum(counted) if counted else None)
    totals: dict[str, int] = {}
    for mix in mixes:
        for code, count in mix.items():
            totals[code] = totals.get(code, 0) + count
    has_unsupported = any(count is not None for count in unsupported)
    if not totals and not has_unsupported:
        return page.sentence("These records carry no language counts (written by a pipeline "
                             "that does not count languages).")
    categories = [name for name, _ in groups]
    ranked = sorted(totals, key=lambda code: (-totals[code], code))
    charted, other = ranked[:MAX_LANGUAGES_CHARTED], ranked[MAX_LANGUAGES_CHARTED:]
    colors = page.key_colors(charted)
    per = "window" if windows.timed else f"key ({ALL_TIME})"
    figure = page.new_figure(f"Records per language and {per}" +
                             (" (all keys)" if windows.timed else ""), barmode="stack")
    bars = [(code, [mix.get(code, 0) for mix in mixes], colors[code]) for code in charted]
    if other:
        bars.append(("other", [sum(mix.get(code, 0) for code in other) for mix in mixes],
                     page.MUTED_COLOR))
    for name, values, color in bars:
        figure.add_trace(go.Bar(x=categories, y=values, name=name, marker={"color": color},
                                hovertemplate=f"{name}<br>%{{x}}: %{{y:,}}<extra></extra>"))
    if has_unsupported:
        figure.add_trace(go.Scatter(
            x=categories, y=[count or 0 for count in unsupported],
            name="unsupported language (not scored)", mode="lines+markers",
            line={"color": page.DARK_COLOR, "dash": "dot"},
            hovertemplate="unsupported language<br>%{x}: %{y:,}<extra></extra>"))
    figure.update_xaxes(title="window start (UTC)" if windows.timed else f"key ({ALL_TIME})",
                        type="category")
    figure.update_yaxes(title="records", rangemode="tozero")
    summed = sum(count or 0 for count in unsupported)
    note = (page.sentence(f"{summed:,} records were in a language the model does not score"
                          + (" (summed over windows)." if windows.timed else "."))
            if has_unsupported else "")
    return page.chart(figure, "chart-languages", height=360) + note


def _latest_table(windows: WindowSet) -> str:
    keys = list(windows.by_key)[:MAX_KEYS_LISTED]
    latest = [windows.latest(key) for key in keys]
    corrected = sorted({field for window in latest for field in window.record
                        if field.startswith(CORRECTED_PREFIX)
                        and not field.endswith(("_low", "_high"))})
    headers = ["key", "window start (UTC)", "pane", "posts", "reach", "negative share",
               "change", *(f"corrected {field[len(CORRECTED_PREFIX):]} share"
                           for field in corrected),
               "languages", "unsupported language", "alert"]
    rows = []
    for window in latest:
        change = windows.change(window.key)
        rows.append((
            window.key, windows.label(window), window.pane_index, window.posts, window.reach,
            page.format_share(window.negative_share),
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
