"""The browser the app and the service's /docs are tested with, shared by
tests/app/test_browser.py, tests/serve/test_serve_docs_browser.py and bench/bench_app.py:
Debian's Chromium (never `playwright install`; `NBA_CHROMIUM` points elsewhere) and the flags
it needs in a sandbox without internet.

It lives with the tests, which own how the app is checked in a browser; the benchmark reuses
it (one line of `sys.path`), so the shipped package carries no test-machine paths."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: Set by .ci/run: a machine without the browser fails the browser tests instead of skipping.
REQUIRE_ENV = "NBA_REQUIRE_BROWSER"

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


def missing(why: str) -> None:
    """Skip a browser test on a machine without the browser; fail it where it must run."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{why}, and {REQUIRE_ENV}=1 says the browser test must run")
    pytest.skip(why)


def open_browser() -> Iterator[Any]:
    """A launched headless Chromium for the duration of a fixture (skips or fails as above)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright is not installed")
    if not CHROMIUM.is_file():
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        launched = launch(p)
        yield launched
        launched.close()
