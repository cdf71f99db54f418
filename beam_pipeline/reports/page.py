"""HTML building blocks of the report pages: one self-contained page (Plotly's bundle inlined
once, nothing fetched at view time), headline cards, tables, sentences, charts with stable ids,
embedded JSON, and the colours of labels and keys."""
from __future__ import annotations

import datetime
import functools
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import plotly.offline

LABEL_COLORS = {"negative": "#c8453b", "positive": "#2e8b57", "neutral": "#9a9a9a"}
OTHER_LABEL_COLORS = ("#3b6fb6", "#8e5bb5", "#d98a1d", "#2a9d9d", "#a0522d")
KEY_COLORS = ("#3b6fb6", "#d98a1d", "#8e5bb5", "#2a9d9d", "#b5547a", "#6b8e23", "#5c5c8a",
              "#a0522d", "#1f8fbf", "#c77c00")
ALERT_COLOR = "#b00020"
MUTED_COLOR = "#b8b8b8"
UNSCORED_COLOR = "#d6c49a"
DARK_COLOR = "#4a4a4a"
CHART_CONFIG = {"displaylogo": False, "responsive": True}
LEGEND_HEIGHT = 60

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       margin: 0; background: #f6f6f4; }
main { max-width: 1160px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.2rem; margin: 0 0 12px; }
h3 { font-size: 1rem; margin: 16px 0 8px; }
.subtitle { color: #555; margin: 0 0 16px; overflow-wrap: anywhere; }
section { background: #fff; border: 1px solid #e2e2dd; border-radius: 6px; padding: 16px 20px;
          margin: 16px 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px;
         margin: 12px 0; }
.card { background: #fff; border: 1px solid #e2e2dd; border-radius: 6px; padding: 10px 14px; }
.card .value { font-size: 1.45rem; font-weight: 600; overflow-wrap: anywhere; }
.card .label { color: #555; font-size: 0.85rem; }
.charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }
@media (max-width: 900px) { .charts { grid-template-columns: minmax(0, 1fr); } }
p { margin: 8px 0; line-height: 1.4; }
p.verdict { font-size: 1.1rem; font-weight: 600; }
p.note { color: #444; }
p.warning { background: #fff4e5; border-left: 4px solid #d98a1d; padding: 6px 10px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #e6e6e1; padding: 4px 10px; text-align: left;
         vertical-align: top; }
th { background: #f0f0ec; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
td.path { overflow-wrap: anywhere; max-width: 420px; }
ul { margin: 6px 0; }
footer { color: #666; font-size: 0.85rem; margin-top: 24px; }
"""


def label_colors(labels: Iterable[str]) -> dict[str, str]:
    """A colour per label: negative red, positive green, neutral grey, others from a palette."""
    colors: dict[str, str] = {}
    others = 0
    for label in labels:
        if label.lower() in LABEL_COLORS:
            colors[label] = LABEL_COLORS[label.lower()]
        else:
            colors[label] = OTHER_LABEL_COLORS[others % len(OTHER_LABEL_COLORS)]
            others += 1
    return colors


def key_colors(keys: Sequence[str]) -> dict[str, str]:
    """A colour per key (in the given order), cycling through the key palette."""
    return {key: KEY_COLORS[index % len(KEY_COLORS)] for index, key in enumerate(keys)}


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """``1 file``, ``3 files`` (thousands separated)."""
    return f"{count:,} {noun if count == 1 else plural_noun or noun + 's'}"


def format_count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def format_share(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f} %"


def format_number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def format_time(value: datetime.datetime | None) -> str:
    """A UTC time as people read it: ``2026-12-01 22:00`` (seconds only when not zero)."""
    if value is None:
        return "—"
    value = value.astimezone(datetime.UTC) if value.tzinfo else value
    return value.strftime("%Y-%m-%d %H:%M:%S" if value.second else "%Y-%m-%d %H:%M")


def parse_time(value: Any) -> datetime.datetime | None:
    """An RFC 3339 string (``...Z`` or with an offset) as an aware UTC datetime; None for None.
    Raises ValueError for anything else."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    parsed = datetime.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.astimezone(datetime.UTC)


def sentence(text: str, kind: str = "note") -> str:
    """A paragraph of plain text; ``kind`` is ``note``, ``verdict`` or ``warning``."""
    return f'<p class="{kind}">{html.escape(text)}</p>'


def bullet_list(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"


def cards(items: Iterable[tuple[str, str]]) -> str:
    """Headline numbers: (label, formatted value) pairs."""
    body = "".join(f'<div class="card"><div class="value">{html.escape(value)}</div>'
                   f'<div class="label">{html.escape(label)}</div></div>' for label, value in items)
    return f'<div class="cards">{body}</div>'


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
          table_id: str | None = None) -> str:
    """A table of plain cells: ints and floats are right-aligned (ints with thousands separators),
    strings that look like paths wrap anywhere; everything is escaped."""
    head = "".join(f"<th>{html.escape(header)}</th>" for header in headers)
    body = "".join("<tr>" + "".join(_cell(value) for value in row) + "</tr>" for row in rows)
    id_attribute = f' id="{html.escape(table_id)}"' if table_id else ""
    return f"<table{id_attribute}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None:
        return "<td>—</td>"
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, int):
        return f'<td class="number">{value:,}</td>'
    if isinstance(value, float):
        return f'<td class="number">{value:,.3f}</td>'
    text = str(value)
    kind = ' class="path"' if "/" in text else ""
    return f"<td{kind}>{html.escape(text)}</td>"


def section(title: str, *parts: str, section_id: str) -> str:
    return (f'<section id="{html.escape(section_id)}"><h2>{html.escape(title)}</h2>'
            + "".join(parts) + "</section>")


def charts_row(*parts: str) -> str:
    """Parts (a chart with its sentences, or a sentence) side by side, two to a row where the
    page is wide enough. The columns are fixed before the charts are drawn: Plotly sizes a chart
    to its container once, when it is drawn."""
    parts = tuple(part for part in parts if part)
    if len(parts) < 2:
        return "".join(parts)
    return '<div class="charts">' + "".join(f"<div>{part}</div>" for part in parts) + "</div>"


def new_figure(title: str, **layout: Any) -> go.Figure:
    """An empty figure with the reports' common look."""
    figure = go.Figure()
    figure.update_layout(
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        template="plotly_white", margin={"l": 60, "r": 20, "t": 60, "b": 50},
        font={"family": "system-ui, sans-serif", "size": 12},
        legend={"orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0,
                "x": 0, "xanchor": "left"},
        **layout)
    return figure


def chart(figure: go.Figure, chart_id: str, height: int = 340) -> str:
    """The figure as a div with the id ``chart_id`` (Plotly's bundle must be on the page); a
    legend goes below the plot, which grows to hold it."""
    showlegend = figure.layout.showlegend
    if showlegend or (showlegend is None and len(figure.data) > 1):
        height += LEGEND_HEIGHT
        figure.update_layout(margin={"b": 50 + LEGEND_HEIGHT})
    figure.update_layout(height=height)
    div = figure.to_html(full_html=False, include_plotlyjs=False, div_id=chart_id,
                         default_height=f"{height}px", config=CHART_CONFIG)
    return div


def json_block(element_id: str, value: Any) -> str:
    """``value`` as JSON in a ``<script type="application/json">`` element, for machines; NaN and
    infinities become null, and ``<``, ``>``, ``&`` are escaped so the text cannot end the tag."""
    text = json.dumps(_json_safe(value), ensure_ascii=False, default=str)
    text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return f'<script type="application/json" id="{html.escape(element_id)}">{text}</script>'


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


@functools.cache
def _plotly_js() -> str:
    """Plotly's offline bundle (read once: the stream command rewrites its page every N s)."""
    return plotly.offline.get_plotlyjs()


def document(title: str, subtitle: str, body: Iterable[str], data: Mapping[str, Any],
             refresh_seconds: int | None = None) -> str:
    """The whole page: head (refresh, CSS, Plotly's bundle when there is a chart), title, body
    parts, the embedded JSON blocks (element id -> value) and a footer."""
    body = list(body)
    has_charts = any("Plotly.newPlot(" in part for part in body)
    plotly_bundle = f'<script type="text/javascript">{_plotly_js()}</script>' if has_charts else ""
    refresh = (f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">'
               if refresh_seconds else "")
    generated = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    data_ids = ", ".join(f"#{element_id}" for element_id in data)
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        refresh,
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>",
        plotly_bundle,
        "</head><body><main>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="subtitle">{html.escape(subtitle)}</p>' if subtitle else "",
        *body,
        *(json_block(element_id, value) for element_id, value in data.items()),
        f"<footer>Generated {generated}. Self-contained page: it loads nothing from the network. "
        f"The data behind the charts is embedded as JSON ({html.escape(data_ids)}).</footer>",
        "</main></body></html>\n",
    ])
