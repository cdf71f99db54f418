"""``sentiment-report``: the stream page from the aggregate and alert JSON-lines files.

Writes the page once, or with ``--refresh_seconds N`` rewrites it every N seconds until Ctrl-C or
SIGTERM (exit 0). Lines that are not JSON objects are skipped and counted on the page; no
matching file, an unreadable file or files without one readable line end with one
``sentiment-report: error: ...`` line and exit status 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_pipeline.reports.stream import DEFAULT_TITLE, render_stream_page


class ReportError(Exception):
    """The page cannot be made from the input; printed as one line."""


@dataclasses.dataclass(frozen=True)
class StreamInput:
    records: list[dict]
    files: int
    unreadable_lines: list[str]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentiment-report",
        description="Render the stream page (negative share per key, alerts, volume, languages) "
                    "from the streaming pipeline's aggregate and alert JSON-lines files.")
    parser.add_argument("--aggregates", required=True,
                        help="glob of JSON-lines files, local or a Beam file system (gs://)")
    parser.add_argument("--output", required=True, help="HTML file to write (replaced atomically)")
    parser.add_argument("--refresh_seconds", type=_positive_int,
                        help="keep running: re-read the files and rewrite the page every N "
                             "seconds (the page reloads itself as often) until Ctrl-C/SIGTERM")
    parser.add_argument("--title", default=DEFAULT_TITLE, help="page title (default %(default)s)")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def read_records(pattern: str) -> StreamInput:
    """Every JSON object of the files matching ``pattern`` (in path order); other lines are
    returned as "path:line: why"."""
    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception as error:  # Beam raises BeamIOError, or ValueError for an unknown scheme
        raise ReportError(f"cannot list {pattern}: {_first_line(error)}") from error
    if not matched:
        raise ReportError(f"no file matches {pattern}")
    records: list[dict] = []
    unreadable: list[str] = []
    for path in sorted(metadata.path for metadata in matched):
        try:
            with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as handle:
                content = handle.read()
        except Exception as error:  # OSError, BeamIOError, a corrupt compressed file
            raise ReportError(f"cannot read {path}: {_first_line(error)}") from error
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as error:  # also UnicodeDecodeError
                unreadable.append(f"{path}:{number}: {_first_line(error)}")
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                unreadable.append(f"{path}:{number}: not a JSON object")
    if unreadable and not records:
        raise ReportError(f"no readable record in {len(matched):,} file(s) matching {pattern}: "
                          f"{len(unreadable):,} unreadable line(s), first {unreadable[0]}")
    return StreamInput(records, len(matched), unreadable)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def write_atomically(path: str, text: str) -> None:
    """Writes ``text`` to a temporary name beside ``path``, then renames it over ``path``."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with FileSystems.create(temporary, mime_type="text/html",
                                compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            handle.write(text.encode("utf-8"))
        FileSystems.rename([temporary], [path])
    except Exception as error:  # OSError or BeamIOError
        if FileSystems.exists(temporary):
            FileSystems.delete([temporary])
        raise ReportError(f"cannot write {path}: {_first_line(error)}") from error


def refresh_page(args: argparse.Namespace) -> StreamInput:
    """Reads the records and (re)writes the page once."""
    stream = read_records(args.aggregates)
    write_atomically(args.output, render_stream_page(
        stream.records, args.refresh_seconds, args.title, source=args.aggregates,
        unreadable_lines=stream.unreadable_lines))
    return stream


def _report(args: argparse.Namespace, stream: StreamInput) -> None:
    print(f"sentiment-report: wrote {args.output}: {len(stream.records):,} record(s) from "
          f"{stream.files:,} file(s)", file=sys.stderr)
    if stream.unreadable_lines:
        print(f"sentiment-report: warning: skipped {len(stream.unreadable_lines):,} unreadable "
              f"line(s) (first {stream.unreadable_lines[0]})", file=sys.stderr)


def keep_refreshing(args: argparse.Namespace) -> int:
    """Rewrites the page every ``--refresh_seconds`` until SIGINT or SIGTERM; a failure after the
    first page is reported and the previous page kept."""
    stop = threading.Event()
    handlers = {signum: signal.signal(signum, lambda *_: stop.set())
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        stream = refresh_page(args)
        _report(args, stream)
        while not stop.wait(args.refresh_seconds):
            try:
                latest = refresh_page(args)
            except ReportError as error:
                print(f"sentiment-report: warning: {error}; keeping the previous page",
                      file=sys.stderr)
                continue
            if (len(latest.records), latest.unreadable_lines) != (
                    len(stream.records), stream.unreadable_lines):
                _report(args, latest)
            stream = latest
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the exit status (0 done or stopped, 2 for an error)."""
    args = build_parser().parse_args(argv)
    try:
        if args.refresh_seconds:
            return keep_refreshing(args)
        _report(args, refresh_page(args))
    except ReportError as error:
        print(f"sentiment-report: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
