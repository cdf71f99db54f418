"""The batch report: one self-contained HTML page from a scoring run's summary
(``PREFIX-summary.json``), optionally with its per key and window aggregates, and a "what changed"
section against an earlier run (``--compare_to``)."""
from __future__ import annotations

import dataclasses
import datetime
import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from beam_pipeline.reports import page
from beam_pipeline.reports.values import (
    as_count,
    as_counts,
    as_mapping,
    as_number,
    as_numbers,
    as_text,
    as_texts,
)
from beam_pipeline.reports.windows import (
    WindowSet,
    collect_windows,
    negative_share_parts,
    top_keys_tables,
)

SCORED_COLOR = "#3b6fb6"
CONFIDENCE_COLOR = "#3b6fb6"
EARLIER_COLOR = "#9a9a9a"
MAX_FILES_CHARTED = 25
MAX_FILES_LISTED = 200
MAX_KEYS_COMPARED = 15


@dataclasses.dataclass(frozen=True)
class Histogram:
    """Bin edges and counts; with as many counts as edges the last bin is open (>= last edge)."""

    edges: list[float]
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def closed(self) -> bool:
        return len(self.edges) == len(self.counts) + 1

    def bin_labels(self, digits: int) -> list[str]:
        edges = [f"{edge:.{digits}f}" for edge in self.edges]
        labels = [f"{low}–{high}" for low, high in zip(edges, edges[1:])]
        return labels if self.closed else labels + [f"≥ {edges[-1]}"]

    @property
    def centers(self) -> list[float]:
        return [(low + high) / 2 for low, high in zip(self.edges, self.edges[1:])]

    @property
    def widths(self) -> list[float]:
        return [high - low for low, high in zip(self.edges, self.edges[1:])]


def read_histogram(value: Any) -> Histogram | None:
    """A ``{"bin_edges": [...], "counts": [...]}`` mapping as a Histogram (a last edge of null,
    as `batch.stats` writes it, is an open last bin); None when absent or inconsistent (edges not
    increasing, counts not matching the edges)."""
    fields = as_mapping(value)
    raw_edges = _list(fields.get("bin_edges"))
    if raw_edges and raw_edges[-1] is None:
        raw_edges = raw_edges[:-1]
    edges = [as_number(edge) for edge in raw_edges]
    counts = [as_count(count) for count in _list(fields.get("counts"))]
    if not counts or None in edges or None in counts:
        return None
    if len(edges) not in (len(counts), len(counts) + 1):
        return None
    if any(high <= low for low, high in zip(edges, edges[1:])):
        return None
    return Histogram(edges, counts)


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


class RunSummary:
    """Read access to a summary dict; every field may be missing (files of older versions)."""

    def __init__(self, raw: Any):
        self.raw = as_mapping(raw)
        self.run = as_mapping(self.raw.get("run"))
        self.model = as_mapping(self.raw.get("model"))
        self.counts = as_mapping(self.raw.get("counts"))
        self.sentiment = as_mapping(self.raw.get("sentiment"))
        self.confidence = as_mapping(self.raw.get("confidence"))
        self.text_length = as_mapping(self.raw.get("text_length"))
        self.aggregates = as_mapping(self.raw.get("aggregates"))

    def count(self, name: str) -> int | None:
        return as_count(self.counts.get(name))

    @property
    def rows_read(self) -> int | None:
        return self.count("rows_read")

    @property
    def scored(self) -> int | None:
        return self.count("scored")

    @property
    def unscored(self) -> int | None:
        return self.count("unscored")

    @property
    def dead_lettered(self) -> int | None:
        return self.count("dead_lettered")

    @functools.cached_property
    def labels(self) -> list[str]:
        """The model's labels in class order, then any other label the counts name."""
        labels = as_texts(self.model.get("labels"))
        extra = [label for label in as_counts(self.sentiment.get("counts")) if label not in labels]
        return labels + extra

    @functools.cached_property
    def sentiment_counts(self) -> dict[str, int]:
        counts = as_counts(self.sentiment.get("counts"))
        return {label: counts[label] for label in self.labels if label in counts}

    @property
    def sentiment_total(self) -> int:
        return sum(self.sentiment_counts.values())

    @property
    def mean_probabilities(self) -> dict[str, float]:
        return as_numbers(self.sentiment.get("mean_probabilities"))

    @functools.cached_property
    def confidence_histogram(self) -> Histogram | None:
        return read_histogram(self.confidence)

    @property
    def mean_confidence(self) -> float | None:
        return as_number(self.confidence.get("mean"))

    @functools.cached_property
    def length_histogram(self) -> Histogram | None:
        return read_histogram(self.text_length)

    @property
    def languages(self) -> dict[str, int]:
        return dict(sorted(as_counts(self.raw.get("languages")).items(),
                           key=lambda item: (-item[1], item[0])))

    @property
    def files(self) -> list[Mapping[str, Any]]:
        files = self.raw.get("files")
        return [as_mapping(entry) for entry in files if as_text(as_mapping(entry).get("path"))
                ] if isinstance(files, list) else []

    @property
    def skipped_files(self) -> list[str]:
        return as_texts(self.raw.get("skipped_files"))

    @property
    def dead_letter_reasons(self) -> dict[str, int]:
        return as_counts(self.counts.get("dead_letter_reasons"))

    @property
    def unscored_statuses(self) -> dict[str, int]:
        return as_counts(self.counts.get("unscored_statuses"))

    @property
    def started_at(self) -> datetime.datetime | None:
        try:
            return page.parse_time(as_text(self.run.get("started_at")))
        except ValueError:
            return None

    @property
    def model_version(self) -> str | None:
        return as_text(self.model.get("model_version"))

    def share(self, count: int | None) -> float | None:
        """``count`` as a share of the rows read."""
        if count is None or not self.rows_read:
            return None
        return count / self.rows_read


def render_batch_report(summary: Mapping[str, Any], aggregates: Sequence[Mapping] | None = None,
                        previous: Mapping[str, Any] | None = None, *,
                        previous_aggregates: Sequence[Mapping] | None = None) -> str:
    """The report page of a run: ``summary`` as ``sentiment-score`` writes it, the run's aggregate
    and alert records, and an earlier run's summary (with its aggregates, for the per key
    comparison). Returns one self-contained HTML document."""
    run = RunSummary(summary)
    windows = collect_windows(aggregates) if aggregates is not None else None
    body = [_headline(run), _rows_section(run), _sentiment_section(run), _texts_section(run),
            _files_section(run)]
    if windows is not None or run.aggregates:
        body.append(_keys_section(run, windows))
    if previous is not None:
        earlier_windows = (collect_windows(previous_aggregates)
                           if previous_aggregates is not None else None)
        body.append(_comparison_section(run, RunSummary(previous), windows, earlier_windows))
    body.append(_model_section(run))
    data: dict[str, Any] = {"summary-data": summary}
    if aggregates is not None:
        data["aggregates-data"] = list(aggregates)
    if previous is not None:
        data["previous-data"] = previous
    if previous_aggregates is not None:
        data["previous-aggregates-data"] = list(previous_aggregates)
    output = as_text(run.run.get("output_prefix"))
    title = f"Scoring report: {output}" if output else "Scoring report"
    return page.document(title, _subtitle(run), body, data)


def _subtitle(run: RunSummary) -> str:
    parts = []
    if run.started_at:
        parts.append(f"run started {page.format_time(run.started_at)} UTC")
    for field in ("input", "runner"):
        if as_text(run.run.get(field)):
            parts.append(f"{field} {run.run[field]}")
    return " · ".join(parts)


def verdict(run: RunSummary) -> str:
    """One sentence saying what the run did with its rows (summaries older than the unscored
    status have no ``unscored``: they had none)."""
    read, scored = run.rows_read, run.scored
    unscored, dead = run.unscored or 0, run.dead_lettered or 0
    skipped = len(run.skipped_files)
    skipped_note = (f" {page.plural(skipped, 'input file')} could not be read and "
                    f"{'was' if skipped == 1 else 'were'} skipped." if skipped else "")
    if read is None:
        return ("This summary holds no row counts." if scored is None
                else f"{scored:,} rows scored (rows read not recorded).")
    if read == 0:
        return "This run read no rows: there is nothing to chart." + skipped_note
    if not scored and dead == read:
        return f"Every row read ({read:,}) was dead-lettered: no row was scored." + skipped_note
    if not scored:
        return (f"No row was scored: of {read:,} rows read, {unscored:,} were left unscored and "
                f"{dead:,} dead-lettered." + skipped_note)
    return (f"{scored:,} of {read:,} rows scored ({page.format_share(scored / read)}); "
            f"{unscored:,} unscored, {dead:,} dead-lettered." + skipped_note)


def _headline(run: RunSummary) -> str:
    seconds = as_number(run.run.get("seconds"))
    version = run.model_version
    precision = as_text(run.model.get("precision"))
    model = " ".join(part for part in (version[:8] if version else None, precision) if part)
    items = [("rows read", page.format_count(run.rows_read)),
             ("scored", page.format_count(run.scored)),
             ("unscored", page.format_count(run.unscored)),
             ("dead-lettered", page.format_count(run.dead_lettered)),
             ("records / s", page.format_number(as_number(run.run.get("records_per_second")), 1)),
             ("run time", "—" if seconds is None else f"{seconds:,.1f} s"),
             ("model", model or "—")]
    return page.sentence(verdict(run), "verdict") + page.cards(items)


def _rows_section(run: RunSummary) -> str:
    title = "Where the rows went"
    if not run.rows_read:
        return page.section(title, page.sentence("No rows were read, so there is nothing to break "
                                                 "down."), section_id="rows")
    outcomes = _outcomes(run)
    figure = page.new_figure("Rows read, by outcome")
    figure.add_trace(go.Bar(
        y=[name for name, _, _ in outcomes], x=[count for _, count, _ in outcomes],
        orientation="h", marker={"color": [color for _, _, color in outcomes]},
        text=[f"{count:,}" for _, count, _ in outcomes], textposition="auto",
        hovertemplate="%{y}: %{x:,}<extra></extra>", name="rows"))
    figure.update_yaxes(autorange="reversed")
    figure.update_xaxes(title="rows")
    figure.update_layout(margin={"l": 220})
    rows = [(name, count, page.format_share(run.share(count))) for name, count, _ in outcomes]
    return page.section(
        title, page.chart(figure, "chart-rows", height=120 + 34 * len(outcomes)),
        page.table(["outcome", "rows", "share of rows read"], rows, table_id="table-rows"),
        section_id="rows")


def _outcomes(run: RunSummary) -> list[tuple[str, int, str]]:
    """(name, rows, colour) for scored rows, each unscored status and each dead-letter reason; a
    total that its breakdown does not cover shows as "not recorded"."""
    outcomes = [("scored", run.scored or 0, SCORED_COLOR)]
    for prefix, total, breakdown, color in (
            ("unscored", run.unscored or 0, run.unscored_statuses, page.UNSCORED_COLOR),
            ("dead-lettered", run.dead_lettered or 0, run.dead_letter_reasons, page.DARK_COLOR)):
        outcomes += [(f"{prefix}: {name}", count, color) for name, count in breakdown.items()]
        if total > sum(breakdown.values()):
            outcomes.append((f"{prefix}: not recorded", total - sum(breakdown.values()), color))
    return [outcome for outcome in outcomes if outcome[1] or outcome[0] == "scored"]


def _skipped_files(run: RunSummary) -> str:
    if not run.skipped_files:
        return ""
    return (page.sentence(f"Skipped (unreadable): {page.plural(len(run.skipped_files), 'file')}",
                          "warning") + page.bullet_list(run.skipped_files))


def _sentiment_section(run: RunSummary) -> str:
    title = "Sentiment and confidence"
    if not run.sentiment_total:
        return page.section(title, page.sentence(
            "No row was scored, so there is no sentiment distribution or confidence to show."
            if not run.scored else "This summary records no label counts."), section_id="sentiment")
    colors = page.label_colors(run.labels)
    counts = run.sentiment_counts
    figure = page.new_figure("Rows per predicted label", showlegend=False)
    figure.add_trace(go.Bar(
        x=list(counts), y=list(counts.values()), name="rows",
        marker={"color": [colors[label] for label in counts]},
        text=[page.format_share(count / run.sentiment_total) for count in counts.values()],
        textposition="auto", hovertemplate="%{x}: %{y:,} rows<extra></extra>"))
    figure.update_yaxes(title="rows")
    charts = [page.chart(figure, "chart-sentiment")]
    histogram = run.confidence_histogram
    if histogram and histogram.total:
        charts.append(page.chart(_confidence_figure(histogram, run.mean_confidence),
                                 "chart-confidence"))
    probabilities = run.mean_probabilities
    rows = [(label, count, page.format_share(count / run.sentiment_total),
             page.format_number(probabilities.get(label), 3)) for label, count in counts.items()]
    notes = []
    if run.mean_confidence is not None:
        notes.append(page.sentence(f"Mean confidence (probability of the predicted label): "
                                   f"{run.mean_confidence:.3f}."))
    if not (histogram and histogram.total):
        notes.append(page.sentence("This summary records no confidence histogram."))
    return page.section(title, page.charts_row(*charts), *notes,
                        page.table(["label", "rows", "share", "mean probability"], rows,
                                   table_id="table-sentiment"), section_id="sentiment")


def _confidence_figure(histogram: Histogram, mean: float | None) -> go.Figure:
    figure = page.new_figure("Confidence (probability of the predicted label)", showlegend=False)
    figure.add_trace(_histogram_bar(histogram, histogram.counts, "rows", CONFIDENCE_COLOR))
    if mean is not None and histogram.closed:
        figure.add_vline(x=mean, line={"dash": "dash"}, annotation_text=f"mean {mean:.3f}")
    figure.update_xaxes(title="confidence")
    figure.update_yaxes(title="rows")
    return figure


def _histogram_bar(histogram: Histogram, values: list[float], name: str, color: str,
                   **bar: Any) -> go.Bar:
    """Bars at the bins' centres and widths (closed bins) or at their labels (open last bin)."""
    if histogram.closed:
        position = {"x": histogram.centers, "width": histogram.widths}
    else:
        position = {"x": histogram.bin_labels(2)}
    return go.Bar(y=values, name=name, marker={"color": color}, **position,
                  customdata=histogram.counts, **bar)


def _texts_section(run: RunSummary) -> str:
    return page.section("Texts: length and language", page.charts_row(
        _length_part(run), _languages_part(run)), section_id="texts")


def _length_part(run: RunSummary) -> str:
    histogram = run.length_histogram
    if not run.scored:
        return page.sentence("No row was scored, so there are no text lengths to show.")
    if not histogram or not histogram.total:
        return page.sentence("This summary records no text length histogram.")
    unit = as_text(run.text_length.get("unit")) or "tokens"
    figure = page.new_figure(f"Text length ({unit})", showlegend=False)
    figure.add_trace(go.Bar(x=histogram.bin_labels(0), y=histogram.counts, name="rows",
                            marker={"color": SCORED_COLOR},
                            hovertemplate=f"%{{x}} {unit}: %{{y:,}} rows<extra></extra>"))
    figure.update_xaxes(title=unit, type="category")
    figure.update_yaxes(title="rows")
    return page.chart(figure, "chart-text-length") + page.sentence(_long_text_note(run, histogram))


def _long_text_note(run: RunSummary, histogram: Histogram) -> str:
    truncated = as_count(run.text_length.get("truncated"))
    chunked = as_count(run.text_length.get("chunked"))
    max_length = as_count(run.model.get("max_length"))
    mode = as_text(run.model.get("long_text"))
    limit = f" {max_length:,}-token" if max_length else ""
    parts = [f"{count:,} rows ({page.format_share(count / histogram.total)}) {what}"
             for count, what in ((truncated, "truncated"), (chunked, "scored in windows"))
             if count is not None]
    if not parts:
        return "This summary does not record how many texts were truncated or chunked."
    setting = f" (long_text = {mode})" if mode else ""
    return f"Texts longer than the{limit} limit: " + "; ".join(parts) + setting + "."


def _languages_part(run: RunSummary) -> str:
    languages = run.languages
    if not languages:
        return page.sentence("This summary records no language counts.")
    supported = as_texts(run.model.get("languages"))
    figure = page.new_figure("Rows per language", showlegend=False)
    figure.add_trace(go.Bar(
        x=list(languages), y=list(languages.values()), name="rows",
        marker={"color": [SCORED_COLOR if not supported or code in supported else page.MUTED_COLOR
                          for code in languages]},
        hovertemplate="%{x}: %{y:,} rows<extra></extra>"))
    figure.update_xaxes(title="language", type="category")
    figure.update_yaxes(title="rows")
    note = ""
    if supported:
        unsupported = run.unscored_statuses.get("unsupported_language")
        note = page.sentence(
            f"The model scores {', '.join(supported)}; other languages (grey) are left unscored"
            + (f" ({unsupported:,} rows)." if unsupported is not None else "."))
    return page.chart(figure, "chart-languages") + note


def _files_section(run: RunSummary) -> str:
    title = "Input files"
    files = run.files
    if not files:
        return page.section(title, page.sentence("This summary has no per-file counts."),
                            _skipped_files(run), section_id="files")
    names = _file_names([str(entry["path"]) for entry in files])
    charted = sorted(range(len(files)), key=lambda index: -(as_count(files[index].get(
        "rows_read")) or 0))[:MAX_FILES_CHARTED]
    file_sentiment = [as_counts(entry.get("sentiment")) for entry in files]
    labels = _union(run.labels, sorted({label for counts in file_sentiment for label in counts}))
    colors = page.label_colors(labels)
    figure = page.new_figure("Rows per input file", barmode="stack", showlegend=True)
    segments = [(label, [file_sentiment[index].get(label, 0) for index in charted], colors[label])
                for label in labels]
    segments += [(name, [as_count(files[index].get(field)) or 0 for index in charted], color)
                 for name, field, color in (("unscored", "unscored", page.UNSCORED_COLOR),
                                            ("dead-lettered", "dead_lettered", page.DARK_COLOR))]
    for name, values, color in segments:
        if any(values):
            figure.add_trace(go.Bar(y=[names[index] for index in charted], x=values, name=name,
                                    orientation="h", marker={"color": color},
                                    hovertemplate=f"%{{y}}<br>{name}: %{{x:,}}<extra></extra>"))
    figure.update_yaxes(autorange="reversed", type="category")
    figure.update_xaxes(title="rows")
    figure.update_layout(margin={"l": 200})
    notes = []
    if len(files) > MAX_FILES_CHARTED:
        notes.append(page.sentence(f"The chart shows the {MAX_FILES_CHARTED} largest of "
                                   f"{len(files):,} files."))
    rows = [(str(entry["path"]), as_count(entry.get("rows_read")), as_count(entry.get("scored")),
             as_count(entry.get("unscored")), as_count(entry.get("dead_lettered")),
             *(file_sentiment[index].get(label) for label in labels))
            for index, entry in enumerate(files[:MAX_FILES_LISTED])]
    if len(files) > MAX_FILES_LISTED:
        notes.append(page.sentence(f"The table lists the first {MAX_FILES_LISTED} of "
                                   f"{len(files):,} files; every file is in #summary-data."))
    return page.section(
        title, page.chart(figure, "chart-files", height=130 + 30 * len(charted)), *notes,
        page.table(["file", "rows read", "scored", "unscored", "dead-lettered", *labels], rows,
                   table_id="table-files"),
        _skipped_files(run), section_id="files")


def _file_names(paths: list[str]) -> list[str]:
    """Base names where they are unique, else the whole paths (chart categories must differ)."""
    names = [os.path.basename(path.rstrip("/")) or path for path in paths]
    return names if len(set(names)) == len(names) else paths


def _keys_section(run: RunSummary, windows: WindowSet | None) -> str:
    title = "Keys and windows"
    settings = _aggregate_settings(run)
    if windows is None:
        return page.section(title, page.sentence(
            "This run wrote per key aggregates, but they were not given to this report."),
            settings, section_id="keys")
    if not windows.by_key:
        return page.section(title, page.sentence("The aggregates hold no windows: no key scored "
                                                 "any row."), settings, section_id="keys")
    reach = [window.reach for window in windows.windows]
    items = [("keys", page.format_count(len(windows.by_key))),
             ("windows", page.format_count(len(windows.windows))),
             ("windows with alerts", page.format_count(len(windows.alerted))),
             ("posts", page.format_count(sum(window.posts for window in windows.windows))),
             ("reach", page.format_count(None if None in reach else sum(reach)))]
    return page.section(title, settings, page.cards(items), page.sentence(
        "Shares are over posts (distinct scored posts: copies of a post count once); reach "
        "counts every scored record, copies included."), *negative_share_parts(windows),
                        top_keys_tables(windows), section_id="keys")


def _aggregate_settings(run: RunSummary) -> str:
    aggregates = run.aggregates
    key_column = as_text(aggregates.get("key_column"))
    time_column = as_text(aggregates.get("time_column"))
    window_seconds = as_number(aggregates.get("window_seconds"))
    parts = []
    if key_column:
        parts.append(f"keyed by {key_column}")
    if time_column and window_seconds:
        parts.append(f"windows of {_duration(window_seconds)} on {time_column}")
    elif "time_column" in aggregates and time_column is None:
        parts.append("no time column (one window per key over the whole run)")
    if as_text(aggregates.get("files")):
        parts.append(f"written to {aggregates['files']}")
    return page.sentence("Aggregates " + ", ".join(parts) + ".") if parts else ""


def _duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}" + ("s" if count > 1 else "")
    return f"{seconds:g} s"


def _comparison_section(run: RunSummary, earlier: RunSummary, windows: WindowSet | None,
                        earlier_windows: WindowSet | None) -> str:
    when = page.format_time(earlier.started_at) if earlier.started_at else None
    name = as_text(earlier.run.get("output_prefix"))
    since = " ".join(part for part in (name, f"({when} UTC)" if when else None) if part)
    title = f"What changed since {since or 'the earlier run'}"
    parts = [_comparison_table(run, earlier)]
    charts = []
    if run.sentiment_total and earlier.sentiment_total:
        charts.append(page.chart(_label_mix_figure(run, earlier), "chart-compare-sentiment"))
    else:
        which = "either run" if not (run.sentiment_total or earlier.sentiment_total) else (
            "this run" if not run.sentiment_total else "the earlier run")
        parts.append(page.sentence(f"No label mix to compare: {which} scored no rows."))
    now_histogram, then_histogram = run.confidence_histogram, earlier.confidence_histogram
    if now_histogram and then_histogram and now_histogram.total and then_histogram.total:
        charts.append(page.chart(_confidence_overlay(now_histogram, then_histogram),
                                 "chart-compare-confidence"))
    else:
        parts.append(page.sentence("No confidence histograms to overlay: a run has none."))
    parts.append(page.charts_row(*charts))
    parts.append(_key_comparison(windows, earlier_windows))
    return page.section(title, *parts, section_id="comparison")


def _comparison_table(run: RunSummary, earlier: RunSummary) -> str:
    def counted(summary: RunSummary, name: str) -> str:
        """The count, with its share of the rows read."""
        count, share = summary.count(name), summary.share(summary.count(name))
        return page.format_count(count) + (f" ({page.format_share(share)})" if share is not None
                                           else "")

    rows = [("started (UTC)", page.format_time(earlier.started_at),
             page.format_time(run.started_at)),
            ("rows read", page.format_count(earlier.rows_read), page.format_count(run.rows_read))]
    for name in ("scored", "unscored", "dead_lettered"):
        rows.append((name.replace("_", " "), counted(earlier, name), counted(run, name)))
    for label in _union(run.labels, earlier.labels):
        rows.append((f"share {label}", _label_share(earlier, label), _label_share(run, label)))
    rows.append(("mean confidence", page.format_number(earlier.mean_confidence, 3),
                 page.format_number(run.mean_confidence, 3)))
    for name in ("model_version", "precision"):
        rows.append((name.replace("_", " "), as_text(earlier.model.get(name)) or "—",
                     as_text(run.model.get(name)) or "—"))
    return page.table(["", "earlier run", "this run"], rows, table_id="table-comparison")


def _label_share(run: RunSummary, label: str) -> str:
    if not run.sentiment_total:
        return "—"
    return page.format_share(run.sentiment_counts.get(label, 0) / run.sentiment_total)


def _union(first: list[str], second: list[str]) -> list[str]:
    return first + [item for item in second if item not in first]


def _label_mix_figure(run: RunSummary, earlier: RunSummary) -> go.Figure:
    labels = _union(run.labels, earlier.labels)
    colors = page.label_colors(labels)
    figure = page.new_figure("Label mix, earlier run vs this run", barmode="group")
    for name, summary, style in (
            ("earlier run", earlier, {"opacity": 0.5, "pattern": {"shape": "/"}}),
            ("this run", run, {})):
        counts = [summary.sentiment_counts.get(label, 0) for label in labels]
        figure.add_trace(go.Bar(
            x=labels, y=[count / summary.sentiment_total for count in counts], name=name,
            customdata=counts, marker={"color": [colors[label] for label in labels], **style},
            hovertemplate=f"{name}<br>%{{x}}: %{{y:.1%}} (%{{customdata:,}} rows)<extra></extra>"))
    figure.update_yaxes(title="share of scored rows", tickformat=".0%")
    return figure


def _confidence_overlay(now: Histogram, then: Histogram) -> go.Figure:
    figure = page.new_figure("Confidence, earlier run vs this run", barmode="overlay")
    for name, histogram, color in (("earlier run", then, EARLIER_COLOR),
                                   ("this run", now, CONFIDENCE_COLOR)):
        figure.add_trace(_histogram_bar(
            histogram, [count / histogram.total for count in histogram.counts], name, color,
            opacity=0.55, hovertemplate=f"{name}: %{{y:.1%}} (%{{customdata:,}} rows)"
                                        "<extra></extra>"))
    figure.update_xaxes(title="confidence")
    figure.update_yaxes(title="share of scored rows", tickformat=".0%")
    return figure


def _key_comparison(windows: WindowSet | None, earlier_windows: WindowSet | None) -> str:
    if windows is None or earlier_windows is None:
        return page.sentence("Per key comparison needs the aggregates of both runs.")
    common = [key for key in windows.by_key if key in earlier_windows.by_key]
    only = len(set(windows.by_key) ^ set(earlier_windows.by_key))
    note = page.sentence(f"{only:,} keys appear in only one of the two runs.") if only else ""
    if not common:
        return page.sentence("No key appears in both runs, so there is no per key comparison.")
    change = {key: windows.run_negative_share(key)[0] - earlier_windows.run_negative_share(key)[0]
              for key in common}
    shown = sorted(common, key=lambda key: (-abs(change[key]), key))[:MAX_KEYS_COMPARED]
    figure = page.new_figure("Negative share per key, earlier run vs this run", barmode="group")
    for name, source, color in (("earlier run", earlier_windows, EARLIER_COLOR),
                                ("this run", windows, page.LABEL_COLORS["negative"])):
        shares = [source.run_negative_share(key) for key in shown]
        figure.add_trace(go.Bar(
            x=shown, y=[share for share, _ in shares], name=name, marker={"color": color},
            customdata=[posts for _, posts in shares],
            hovertemplate=f"{name}<br>%{{x}}: %{{y:.1%}} of %{{customdata:,}} posts"
                          "<extra></extra>"))
    figure.update_xaxes(type="category")
    figure.update_yaxes(title="negative share", tickformat=".0%", range=[0, 1.05])
    shown_note = (page.sentence(f"Showing the {len(shown)} of {len(common):,} keys whose "
                                "negative share changed most.") if len(common) > len(shown) else "")
    return page.chart(figure, "chart-compare-keys") + shown_note + note


def _model_section(run: RunSummary) -> str:
    model_fields = ("bundle", "model_version", "precision", "device", "labels", "base_model",
                    "max_length", "long_text", "text_normalization", "languages")
    run_fields = ("started_at", "seconds", "records_per_second", "runner", "input",
                  "output_prefix", "compare_to")
    parts = []
    for heading, fields, values, table_id in (("Model", model_fields, run.model, "table-model"),
                                              ("Run", run_fields, run.run, "table-run")):
        rows = [(name, _plain(values[name])) for name in fields if values.get(name) is not None]
        parts.append(f"<h3>{heading}</h3>" + (
            page.table(["setting", "value"], rows, table_id=table_id) if rows
            else page.sentence(f"This summary does not record the {heading.lower()}.")))
    return page.section("Model and run", *parts, section_id="model")


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)
