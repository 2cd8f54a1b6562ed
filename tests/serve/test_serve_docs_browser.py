"""/docs in a real browser: Playwright drives Debian's Chromium against `nba serve`.

The Swagger UI's script and style come from the `fastapi-offline` package, served by the
service itself, so the page needs no internet: every request the page makes must succeed and
the console must stay free of errors. Skips only where a machine has no Chromium or
Playwright; with NBA_REQUIRE_BROWSER=1 (set by .ci/run) a missing browser is a failure.
"""

from __future__ import annotations

import pytest

from nba import config
from nba.serve.server import Running

SCREENSHOT = config.REPORTS_DIR / "serve" / "docs.png"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(serve_bundles, tmp_path_factory, browser):
    folder = tmp_path_factory.mktemp("docs")
    with Running(
        serve_bundles[0],
        ["--history", str(folder / "history.sqlite")],
        env={"NBA_API_KEY": ""},
        log=folder / "serve.log",
    ) as running:
        yield running


def test_the_docs_page_works_offline_and_can_call_the_service(browser, server):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("requestfailed", lambda r: problems.append(f"{r.url}: {r.failure}"))
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))

    page.goto(f"{server.url}/docs")
    operation = page.locator("#operations-default-decide_v1_decisions_post")
    operation.wait_for(timeout=60_000)
    assert "nba decision service" in page.locator(".info .title").inner_text()
    assert page.locator(".opblock-summary-path", has_text="/v1/responses").count() == 1
    assert page.locator(".opblock-summary-path", has_text="/health").count() == 1

    # open the operation: every documented status code is listed
    operation.locator(".opblock-summary").click()
    codes = operation.locator(".responses-table .response-col_status")
    codes.first.wait_for(timeout=30_000)
    shown = {c.strip() for c in codes.all_inner_texts()}
    assert {"200", "400", "401", "413", "415", "500", "503"} <= shown

    # try it: the documented example customer goes to the real service and is decided
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    live = operation.locator(".live-responses-table tr.response .response-col_status")
    live.first.wait_for(timeout=60_000)
    assert live.first.inner_text().strip() == "200"
    answer = operation.locator(".live-responses-table").inner_text()
    assert '"decision_id"' in answer and '"rejected": []' in answer

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=False)
    assert all(url.startswith(server.url) for url in requested), requested
    assert problems == []
    page.close()
