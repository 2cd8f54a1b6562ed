"""The app in a real browser: Playwright drives Debian's Chromium against a Voila server.

Skips only where a machine has no Chromium or Playwright; with NBA_REQUIRE_BROWSER=1 (set by
.ci/run) a missing browser is a failure. The web font Voila requests from a CDN cannot load on
a machine without internet; that console error is expected and ignored, every other one fails.
"""

from __future__ import annotations

import re

import pytest

from nba import config
from nba.app import Server, percent
from nba.campaigns.history import HISTORY_ENV, History
from nba.data import schema, synth
from nba.data.io import load

SESSIONS = 10
SCREENSHOT = config.REPORTS_DIR / "app" / "uat.png"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(app_files, tmp_path_factory, browser):
    folder = tmp_path_factory.mktemp("voila")
    with pytest.MonkeyPatch.context() as env:  # contacts go to a history of the test's own
        env.setenv(HISTORY_ENV, str(folder / "history.sqlite"))
        with Server(app_files[0], app_files[1], log_file=folder / "voila.log") as running:
            yield running


@pytest.fixture(scope="module")
def scored(app_bundle, app_files):
    """The customer base as the app scores it, by CLIENTNUM."""
    return app_bundle.score(load(app_files[1])).set_index(schema.ID)


def server_history():
    """The history the server's kernels record contacts into (set by the `server` fixture)."""
    import os

    return os.environ[HISTORY_ENV]


def _is_expected_noise(message) -> bool:
    """The CDN web font (no internet here) is the one console error allowed."""
    return (
        message.type != "error"
        or "ERR_NAME_NOT_RESOLVED" in message.text
        or ("fonts" in message.text.lower())
    )


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: None if _is_expected_noise(m) else problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url, wait_until="commit")
    return page, problems


def _ready(page) -> None:
    page.get_by_role("button", name="Look up").wait_for(timeout=240_000)


def _look_up(page, key: int) -> None:
    box = page.get_by_label("CLIENTNUM")
    box.fill(str(key))
    page.get_by_role("button", name="Look up").click()
    page.locator(".nba-card h3", has_text=f"Customer {key}").wait_for(timeout=60_000)


def test_a_business_user_walks_through_the_app(browser, server, scored, app_bundle, tmp_path):
    page, problems = _open(browser, server.url)
    _ready(page)
    assert "SYNTHETIC DATA" in page.locator(".nba-banner").first.inner_text()
    assert "Traceback" not in page.content()

    # look a customer up
    key = int((scored["churn_probability"] - 0.5).abs().idxmin())
    _look_up(page, key)
    expected = scored.loc[key]
    assert page.locator(".nba-probability").inner_text() == percent(expected["churn_probability"])
    assert page.locator(".nba-band").inner_text() == f"{expected['risk_band']} risk"
    assert page.locator(".nba-segment").inner_text() == expected["segment_name"]
    assert page.locator(".nba-drivers li").count() == 3

    # move a what-if slider: type a new value into its readout
    record = load(server.data).set_index(schema.ID).loc[key]
    # up by 40, within the slider (it reaches twice the customer's own count)
    new_ct = int(record["Total_Trans_Ct"]) + min(40, int(record["Total_Trans_Ct"]))
    readout = page.locator(".nba-what-if-Total_Trans_Ct .widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(new_ct))
    page.keyboard.press("Enter")
    what_if = page.locator(".nba-what-if")
    what_if.wait_for(timeout=30_000)
    assert f"→ {new_ct}" in what_if.inner_text()
    customer = {c: record[c] for c in schema.REQUIRED[1:]}
    customer["Total_Trans_Ct"] = new_ct
    moved = app_bundle.recommend(
        {k: (v.item() if hasattr(v, "item") else v) for k, v in customer.items()}
    )
    page.locator(".nba-probability", has_text=percent(moved["churn_probability"])).wait_for()

    # what-if: the same customer as a typical customer of another segment, saving nothing
    page.get_by_role("button", name="Reset what-if").click()
    page.locator(".nba-what-if").wait_for(state="detached", timeout=30_000)
    others = [n for n in app_bundle.segmenter.names_ if n != expected["segment_name"]]
    page.locator(".nba-what-if-segment select").select_option(label=others[0])
    moved_card = page.locator(".nba-what-if", has_text=f"as a typical customer of “{others[0]}”")
    moved_card.wait_for(timeout=30_000)
    assert "A what-if only: the customer's record is unchanged" in moved_card.inner_text()
    assert page.locator(".nba-field-Total_Trans_Ct input").input_value() == str(
        int(record["Total_Trans_Ct"])
    )  # the form still holds the customer as they are

    # record the contact, overriding the recommendation, with a reason
    page.locator(".nba-outcome select").first.select_option(index=1)
    page.get_by_role("button", name="Record contact").click()
    page.locator(".nba-outcome").get_by_text("Say why you override").wait_for(timeout=30_000)
    page.get_by_placeholder("needed when the action is not the recommended one").fill(
        "customer asked to be called by the branch"
    )
    page.get_by_role("button", name="Record contact").click()
    page.locator(".nba-outcome .nba-ok", has_text="(overridden)").wait_for(timeout=30_000)
    with History(server_history()) as history:
        overrides = history.overrides()
    assert overrides["override_reason"].tolist() == ["customer asked to be called by the branch"]
    assert overrides["CLIENTNUM"].tolist() == [key]
    assert overrides["recommended"].tolist() == [expected["action_1"]]
    page.locator(".lm-TabBar-tab", has_text="Campaigns").click()
    page.locator(".nba-overrides", has_text="Overrides (1").wait_for(timeout=30_000)
    page.locator(".lm-TabBar-tab", has_text="Customer").click()
    page.locator(".nba-what-if-segment select").select_option(index=0)
    page.locator(".nba-what-if").wait_for(state="detached", timeout=30_000)

    # enter a customer by hand: an odd age first, then a good one
    age = page.locator(".nba-field-Customer_Age input")
    age.fill("-3")
    age.press("Tab")
    page.get_by_role("button", name="Score this customer").click()
    message = page.locator(".nba-message-Customer_Age")
    message.get_by_text("below the minimum 18").wait_for(timeout=30_000)
    age.fill("45")
    age.press("Tab")
    page.get_by_role("button", name="Score this customer").click()
    page.locator(".nba-card h3", has_text="Entered customer").wait_for(timeout=30_000)
    assert message.inner_text().strip() == ""

    # upload a small CSV with one bad row
    df = synth.generate(25, 12)
    lines = synth.kaggle_csv_text(df).splitlines()
    lines[7] = re.sub(r'"(M|F)"', '"X"', lines[7], count=1)
    upload = tmp_path / "small batch.csv"
    upload.write_text("\n".join(lines) + "\n")
    page.locator(".lm-TabBar-tab", has_text="Batch").click()
    button = page.locator(".widget-upload")
    shown = "b => getComputedStyle(b, '::after').content + '|' + getComputedStyle(b).fontSize"
    assert button.evaluate(shown) == '"Upload customers (CSV)"|0px'  # not "Upload CSV (0)"
    with page.expect_file_chooser() as chooser:  # the upload button opens the file dialog
        button.click()
    chooser.value.set_files(str(upload))
    summary = page.locator(".nba-batch-summary")
    summary.wait_for(timeout=60_000)
    assert summary.inner_text() == "25 rows in small batch.csv: 24 scored, 1 rejected."
    assert page.locator(".nba-reject-reasons").inner_text() == "1 row: Gender not one of F, M"
    assert button.evaluate(shown) == '"Upload customers (CSV)"|0px'  # after an upload too
    rejects = page.locator(".nba-rejects ~ div").first.inner_text()
    assert "Gender 'X' is not one of F, M" in rejects
    link = page.locator("a.nba-download")
    assert link.get_attribute("download") == "small batch.scores.csv"

    # rejected rows can be downloaded too, and the table reads as a business table
    assert page.locator("a.nba-download-rejects").get_attribute("download") == (
        "small batch.rejects.csv"
    )
    assert "no_action" not in page.locator(".nba-batch").inner_text()

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.locator(".lm-TabBar-tab", has_text="Customer").click()
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000
    assert problems == []
    page.close()


def test_on_a_1280x800_laptop_the_first_action_is_visible_without_scrolling(
    browser, server, scored
):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(server.url, wait_until="commit")
    _ready(page)
    assert page.title() == "Retention desk"  # the tab's title, not "app"
    # before any lookup: no broken image, a full button label
    assert page.locator(".nba-app img").count() == 0 or all(
        not img.is_visible() for img in page.locator(".nba-app img").all()
    )
    button = page.get_by_role("button", name="Score this customer")
    assert button.evaluate("b => b.scrollWidth <= b.clientWidth")  # label not cut
    key = int((scored["churn_probability"] - 0.5).abs().idxmin())
    _look_up(page, key)
    first = page.locator(".nba-actions .nba-action").first
    box = first.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 800, box
    assert page.evaluate("window.scrollY") == 0
    shot = SCREENSHOT.with_name("uat-1280x800.png")
    page.screenshot(path=str(shot))  # the viewport only: what the user sees
    assert shot.stat().st_size > 10_000
    page.close()


def test_ten_concurrent_sessions_each_get_their_own_correct_result(browser, server, scored):
    keys = [int(k) for k in scored.sample(SESSIONS, random_state=3).index]
    pages = [_open(browser, server.url) for _ in range(SESSIONS)]  # all requested at once
    for page, _ in pages:
        _ready(page)
    for (page, _), key in zip(pages, keys, strict=True):
        page.get_by_label("CLIENTNUM").fill(str(key))
        page.get_by_role("button", name="Look up").click()
    for (page, problems), key in zip(pages, keys, strict=True):
        page.locator(".nba-card h3", has_text=f"Customer {key}").wait_for(timeout=120_000)
        shown = page.locator(".nba-probability").inner_text()
        assert shown == percent(scored.loc[key, "churn_probability"]), key
        assert page.locator(".nba-segment").inner_text() == scored.loc[key, "segment_name"]
        assert problems == []
        page.close()
