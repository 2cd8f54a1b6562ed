"""The browser the app and the service's /docs are tested with, shared by
tests/app/test_browser.py, tests/serve/test_serve_docs_browser.py and bench/bench_app.py:
Debian's Chromium (never `playwright install`; `NBA_CHROMIUM` points elsewhere) and the flags
it needs in a sandbox without internet.

It lives with the tests, which own how the app is checked in a browser; the benchmark reuses
it (one line of `sys.path`), so the shipped package carries no test-machine paths."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("NBA_CHROMIUM", "/usr/lib/chromium/chromium"))
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def launch(playwright: Any) -> Any:
    """A headless Chromium browser from a started Playwright (`sync_playwright().start()`)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
