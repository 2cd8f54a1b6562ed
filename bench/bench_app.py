"""How fast the app is for a person, in a real browser (Debian's Chromium via Playwright).

Targets, on the 2-core reference machine:
  (a) page interactive ≤ 4 s after navigation with the preheated kernel (the "Look up" button
      usable), median over --pages navigations, each made once the pool has refilled;
  (b) a what-if change reflected on the page ≤ 200 ms (slider moved with the keyboard until the
      card shows the new value), median over --changes moves;
  (c) 10 concurrent sessions, each looking up a different customer: time until all show their
      (checked) result, and the peak memory of the server (Voila + all kernels).
Run: `.venv/bin/python bench/bench_app.py [--bundle models/nba.bundle] [--data FILE]`
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the browser the app is tested with: one definition, beside the browser test
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from machine import PeakMemory, describe  # noqa: E402

from nba.app import Server, percent  # noqa: E402
from nba.bundle import load_bundle  # noqa: E402
from nba.data import schema  # noqa: E402
from nba.data.io import load  # noqa: E402

from chromium import launch  # noqa: E402

GIB = 2**30


def page_interactive(browser, server: Server, pages: int) -> list[float]:
    times = []
    for i in range(pages):
        server.wait_for_pages(i + 1)
        page = browser.new_page()
        start = time.perf_counter()
        page.goto(server.url, wait_until="commit")
        page.get_by_role("button", name="Look up").wait_for(timeout=120_000)
        times.append(time.perf_counter() - start)
        page.close()
    server.wait_for_pages(pages + 1)
    return times


def what_if_latency(browser, server: Server, key: int, changes: int) -> list[float]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server.url)
    page.get_by_role("button", name="Look up").wait_for(timeout=120_000)
    page.get_by_label("CLIENTNUM").fill(str(key))
    page.get_by_role("button", name="Look up").click()
    page.locator(".nba-card h3", has_text=f"Customer {key}").wait_for()
    handle = page.locator(".nba-what-if-Total_Trans_Ct .noUi-handle")
    start_value = int(float(handle.get_attribute("aria-valuenow")))
    times = []
    for i in range(1, changes + 1):
        handle.focus()
        start = time.perf_counter()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "n => { const e = document.querySelector('.nba-what-if');"
            " return e && e.innerText.includes('→ ' + n + ')'); }",
            arg=str(start_value + i),
            polling="raf",
        )
        times.append(time.perf_counter() - start)
    page.close()
    return times


def concurrent_sessions(browser, server: Server, keys: list[int], expected) -> float:
    start = time.perf_counter()
    pages = []
    for _ in keys:
        page = browser.new_page()
        page.goto(server.url, wait_until="commit")
        pages.append(page)
    for page, key in zip(pages, keys, strict=True):
        page.get_by_role("button", name="Look up").wait_for(timeout=300_000)
        page.get_by_label("CLIENTNUM").fill(str(key))
        page.get_by_role("button", name="Look up").click()
    for page, key in zip(pages, keys, strict=True):
        page.locator(".nba-card h3", has_text=f"Customer {key}").wait_for(timeout=120_000)
        shown = page.locator(".nba-probability").inner_text()
        if shown != percent(expected.loc[key, "churn_probability"]):
            raise SystemExit(f"session for {key} shows {shown}: wrong result")
    total = time.perf_counter() - start
    for page in pages:
        page.close()
    return total


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="models/nba.bundle")
    parser.add_argument("--data", help="customers to look up (default: the bundle's own data)")
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=10)
    args = parser.parse_args()

    print(f"machine: {describe()}")
    bundle = load_bundle(args.bundle)
    data = args.data or bundle.metadata["data"]["path"]
    scored = bundle.score(load(data)).set_index(schema.ID)
    print(f"bundle: {args.bundle}; customers: {data} ({len(scored):,})")
    keys = [int(k) for k in scored.sample(args.sessions + 1, random_state=1).index]
    with (
        Server(args.bundle, data) as server,
        PeakMemory(server.process.pid) as memory,
        sync_playwright() as p,
    ):
        browser = launch(p)
        times = page_interactive(browser, server, args.pages)
        print(
            f"(a) page interactive after navigation, preheated kernel: median "
            f"{statistics.median(times):.2f} s, max {max(times):.2f} s over {args.pages} pages"
        )
        lat = sorted(what_if_latency(browser, server, keys[-1], args.changes))
        print(
            f"(b) what-if change reflected on the page: median {statistics.median(lat) * 1000:.0f}"
            f" ms, slowest {lat[-1] * 1000:.0f} ms over {args.changes} slider moves"
        )
        total = concurrent_sessions(browser, server, keys[: args.sessions], scored)
        print(
            f"(c) {args.sessions} concurrent sessions, each with its own correct result: all "
            f"done in {total:.1f} s (one kernel preheated, the rest started on demand)"
        )
        browser.close()
    print(
        f"(c) peak memory of the server (Voila + kernels, summed RSS sampled every 0.2 s): "
        f"{memory.peak / GIB:.2f} GiB"
    )


if __name__ == "__main__":
    main()
