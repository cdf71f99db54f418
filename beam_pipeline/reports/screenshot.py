"""A PNG of a report page as Chromium shows it (for the README):
``python -m beam_pipeline.reports.screenshot PAGE.html OUT.png [--width 1280]``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from beam_pipeline.reports.browser import (
    PAGE_WIDTH,
    BrowserUnavailable,
    chromium,
    open_page,
    save_screenshot,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m beam_pipeline.reports.screenshot",
                                     description="Save a full-page PNG of a report page.")
    parser.add_argument("page", type=Path, help="HTML file")
    parser.add_argument("output", type=Path, help="PNG file to write")
    parser.add_argument("--width", type=int, default=PAGE_WIDTH,
                        help="window width in pixels (default %(default)s)")
    args = parser.parse_args(argv)
    if not args.page.is_file():
        print(f"screenshot: error: {args.page} is not a file", file=sys.stderr)
        return 2
    try:
        with chromium(width=args.width) as driver:
            open_page(driver, args.page)
            save_screenshot(driver, args.output)
    except (BrowserUnavailable, TimeoutError) as error:
        print(f"screenshot: error: {error}", file=sys.stderr)
        return 2
    print(f"screenshot: wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
