"""Pages people look at: the batch report of a scoring run and the stream page of the streaming
aggregates, each one self-contained HTML file (Plotly inlined, data embedded as JSON)."""
from beam_pipeline.reports.batch import render_batch_report
from beam_pipeline.reports.stream import render_stream_page

__all__ = ["render_batch_report", "render_stream_page"]
