"""The app's widgets, driven as a user drives them: set values, press buttons, read the page."""

from __future__ import annotations

import base64
import io
import re
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from nba.app import (
    DERIVED,
    FIELD_GROUPS,
    UPLOAD_LIMIT,
    WHAT_IF,
    App,
    app_environment,
    build_app,
    derived_fields,
    voila_command,
)
from nba.data import schema, synth
from nba.data.validate import validate
from nba.errors import NbaError


@pytest.fixture(scope="module")
def app(app_files) -> App:
    built = build_app(app_files[0], app_files[1])
    assert isinstance(built, App)
    return built


def _text(html: str) -> str:
    """What a person reads: the HTML without tags, entities decoded, spaces collapsed."""
    import html as h

    return " ".join(h.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _record(app: App, key: int) -> dict:
    row = app.base.customers.loc[key]
    return {c: (v.item() if isinstance(v, np.generic) else v) for c, v in row.items()}


def test_a_synthetic_bundle_is_announced_loudly(app):
    assert "SYNTHETIC DATA" in app.banner.value
    assert "customers.csv" in app.banner.value
    assert app.tabs.titles == ("Customer", "Worklist", "Batch", "Segments", "Campaigns", "Model")


def _middling(app: App) -> int:
    """The customer whose churn probability is closest to 50 %."""
    return int((app.base.scores["churn_probability"] - 0.5).abs().idxmin())


def test_lookup_shows_the_customers_score_segment_actions_and_drivers(app, app_bundle):
    key = _middling(app)
    app.lookup_id.value = f" {key} "
    app.lookup_button.click()
    expected = app_bundle.recommend({c: _record(app, key)[c] for c in schema.REQUIRED[1:]})
    batch = app.base.scores.loc[key]
    assert expected["churn_probability"] == pytest.approx(batch["churn_probability"], abs=1e-12)
    card = _text(app.result.value)
    assert f"Customer {key}" in card
    assert f"{expected['churn_probability']:.1%}" in card
    assert f"{expected['risk_band']} risk" in card
    assert f"Segment: {expected['segment_name']}" in card
    assert app.current["action_1"] == expected["action_1"]
    assert app.catalogue.action(expected["action_1"]).name in card
    for k in (1, 2, 3):
        assert expected[f"driver_{k}"] in card
    assert app.segment_chart.value[:4] == b"\x89PNG"
    # the form now holds the customer, and the sliders start from its values
    assert app.fields["Total_Trans_Ct"].value == str(_record(app, key)["Total_Trans_Ct"])
    for name in WHAT_IF:
        assert app.what_if[name].value == _record(app, key)[name]
        assert not app.what_if[name].disabled


@pytest.mark.parametrize(
    ("text", "words"),
    [("abc", "must be a whole number"), ("", "must be a whole number"), ("12", "No customer 12")],
)
def test_a_bad_lookup_says_why_and_keeps_the_card(app, text, words):
    before = app.result.value
    app.lookup(text)
    assert words in _text(app.lookup_message.value)
    assert app.result.value == before


def test_what_if_rescores_live_and_reset_restores(app, app_bundle):
    key = _middling(app)
    app.lookup(str(key))
    base_p = app.current["churn_probability"]
    slider = app.what_if["Total_Trans_Ct"]
    slider.value = min(slider.max, slider.value + 60)  # many more transactions: less risk
    record = {c: _record(app, key)[c] for c in schema.REQUIRED[1:]}
    record["Total_Trans_Ct"] = slider.value
    expected = app_bundle.recommend(record)
    assert app.current["churn_probability"] == pytest.approx(expected["churn_probability"])
    assert app.current["churn_probability"] < base_p
    card = _text(app.result.value)
    assert "What-if" in card and f"→ {slider.value}" in card
    app.what_if_reset.click()
    assert app.current["churn_probability"] == base_p
    assert "What-if" not in _text(app.result.value)


def test_revolving_balance_what_if_keeps_the_balance_identities(app, app_bundle):
    key = int(app.base.scores.index[3])
    app.lookup(str(key))
    slider = app.what_if["Total_Revolving_Bal"]
    assert slider.max >= int(_record(app, key)["Credit_Limit"]) - 1
    slider.value = slider.max
    assert app.what_if_message.value == ""
    assert validate(pd.DataFrame([{schema.ID: 1, **app.what_if_record()}])).ok


def test_the_form_scores_a_hand_entered_customer(app, app_bundle):
    app.reset_form()
    app.fields["Customer_Age"].value = "29"
    app.fields["Months_Inactive_12_mon"].value = "5"
    app.score_button.click()
    assert "Scored" in _text(app.form_message.value)
    expected = app_bundle.recommend(app.form_record())
    assert app.current["churn_probability"] == pytest.approx(expected["churn_probability"])
    assert "Entered customer" in _text(app.result.value)


def test_bad_form_values_get_a_message_beside_the_field_and_clear_the_card(app):
    app.reset_form()
    app.score_button.click()
    assert app.current is not None  # a card is up
    app.fields["Customer_Age"].value = "-3"
    limit = float(app.fields["Credit_Limit"].value)
    app.fields["Total_Revolving_Bal"].value = str(int(limit) + 500)
    app.score_button.click()
    # friendly names, not column names
    assert "Age (years) -3 is below the minimum 18" in _text(
        app.field_messages["Customer_Age"].value
    )
    assert "Customer_Age" not in _text(app.field_messages["Customer_Age"].value)
    assert "between 0 and the credit limit" in _text(
        app.field_messages["Total_Revolving_Bal"].value
    )
    assert app.field_messages["Gender"].value == ""
    assert "Please correct" in _text(app.form_message.value)
    # the previous card is gone: it must not look like the answer to this entry
    assert app.current is None and "No result" in _text(app.result.value)
    assert app.segment_chart.layout.display == "none"
    assert all(s.disabled for s in app.what_if.values())
    app.reset_form()
    assert all(m.value == "" for m in app.field_messages.values())


@pytest.mark.parametrize(
    ("field", "typed", "words"),
    [
        ("Customer_Age", "abc", "Age (years) must be a number such as"),
        ("Credit_Limit", "12k", "Credit limit ($) must be a number such as"),
        ("Dependent_count", "2.5", "Dependants must be a whole number; got '2.5'."),
        ("Customer_Age", "", "Age (years) is empty"),
    ],
)
def test_the_form_never_changes_what_was_typed(app, field, typed, words):
    app.reset_form()
    app.score_button.click()
    app.fields[field].value = typed
    app.score_button.click()
    assert words in _text(app.field_messages[field].value)
    assert app.fields[field].value == typed  # kept as typed, not reverted or cut
    # no other field is blamed, and the old card is cleared
    blamed = [n for n, m in app.field_messages.items() if m.value]
    assert blamed == [field]
    assert app.current is None and "No result" in _text(app.result.value)
    app.reset_form()


def test_open_to_buy_and_utilisation_read_sensibly(app):
    app.reset_form()
    app.fields["Credit_Limit"].value = "1000"
    app.fields["Total_Revolving_Bal"].value = "1500"
    shown = _text(app.derived.value)
    assert "Open to buy ($): −$500 (the balance is above the limit)" in shown
    assert "Utilisation: 150.0%" in shown
    app.fields["Credit_Limit"].value = "0"
    assert "Utilisation: — (no credit limit)" in _text(app.derived.value)
    app.fields["Credit_Limit"].value = "12k"
    assert "enter a credit limit" in _text(app.derived.value)
    app.reset_form()


def test_the_chart_is_hidden_until_a_customer_is_shown(app_files):
    fresh = build_app(app_files[0], app_files[1])
    assert fresh.segment_chart.layout.display == "none"  # no broken-image icon
    fresh.lookup(str(_middling(fresh)))
    assert fresh.segment_chart.layout.display == ""
    assert "differs from the typical customer" in _text(fresh.segment_chart_title.value)


def test_card_reads_in_business_language(app):
    app.lookup(str(_middling(app)))
    card = _text(app.result.value)
    for column in schema.REQUIRED[1:]:
        assert column not in card, column  # friendly names only
    assert "no_action" not in card
    assert re.search(r"Churn risk (\d+\.\d%|< 0\.1%|> 99\.9%)", card)
    for k in (1, 2, 3):
        driver = app.current[f"driver_{k}"]
        assert re.search(r"\((typical|above the typical|below the typical|most common)", driver)
        assert driver.endswith(("raises risk", "lowers risk", "no effect"))


def test_a_high_risk_customer_without_action_is_told_why(app):
    s = app.base.scores
    left = s[(s["risk_band"] == "high") & (s["action_1"] == "no_action")]
    assert len(left) > 0, "the synthetic base has high-risk customers the engine leaves alone"
    app.lookup(str(int(left.index[0])))
    card = _text(app.result.value)
    assert "No action" in card
    assert re.search(r"No action: (every offer|under the value assumptions|the best offer)", card)


def test_a_customer_beyond_the_training_range_is_scored_and_the_card_says_so(app, app_bundle):
    app.reset_form()
    app.score_button.click()
    assert "Outside the range" not in _text(app.result.value)
    oldest = app_bundle.reference["training_range"]["Customer_Age"][1]
    app.fields["Customer_Age"].value = str(int(oldest) + 4)  # plausible, never seen in training
    app.score_button.click()
    assert "Scored" in _text(app.form_message.value)
    assert app.current["out_of_range"] == "Customer_Age"
    assert "Outside the range the model learnt from: Age" in _text(app.result.value)
    app.reset_form()


def test_field_problems_read_the_issues_column_and_rule():
    from nba.app import field_problems
    from nba.data.validate import ABOVE_MAXIMUM, Issue

    issues = [
        Issue(1, "Customer_Age", ABOVE_MAXIMUM, "Customer_Age 300 is above the maximum 110"),
        Issue(1, "Avg_Open_To_Buy", "open_to_buy_identity", "Avg_Open_To_Buy 5 is not …"),
        Issue(1, "Avg_Utilization_Ratio", "utilization_identity", "Avg_Utilization_Ratio …"),
        Issue(1, "Attrition_Flag", "not_allowed", "Attrition_Flag 'x' is not one of …"),
    ]
    got = field_problems(issues)
    assert got["Customer_Age"] == "Age (years) 300 is above the maximum 110"
    assert got["Total_Revolving_Bal"] == "Revolving balance must be between 0 and the credit limit."
    assert got[""] == "Attrition_Flag 'x' is not one of …"


def test_derived_fields_satisfy_the_validator():
    rng = np.random.default_rng(3)
    for _ in range(200):
        limit = float(rng.integers(1, 40_000))
        balance = int(rng.integers(0, int(limit) + 1))
        row = synth.generate(1, 0)[list(schema.REQUIRED)].iloc[0].to_dict()
        row.update(Credit_Limit=limit, Total_Revolving_Bal=balance)
        row.update(derived_fields(limit, balance))
        assert validate(pd.DataFrame([row])).ok, (limit, balance)


def _upload(app: App, name: str, content: bytes) -> None:
    """What the browser's FileUpload sends to the kernel."""
    app.upload.value = (
        {
            "name": name,
            "type": "text/csv",
            "size": len(content),
            "last_modified": datetime.now(UTC),
            "content": memoryview(content),
        },
    )


def test_upload_scores_good_rows_rejects_bad_ones_and_offers_the_download(app):
    df = synth.generate(40, 9)
    lines = synth.kaggle_csv_text(df).splitlines()
    lines[5] = lines[5].replace('"Blue"', '"Diamond"')  # an unknown card category
    _upload(app, "batch.csv", ("\n".join(lines) + "\n").encode())
    assert _text(app.batch_summary.value).startswith("40 rows in batch.csv: 39 scored, 1 rejected.")
    assert len(app.batch_scores) == 39 and len(app.batch_rejects) == 1
    rejects = _text(app.rejects_table.value)
    assert "Card_Category 'Diamond' is not one of" in rejects
    link = re.search(r"class='nba-download' [^>]*base64,([^']+)'", app.download.value)
    downloaded = pd.read_csv(io.BytesIO(base64.b64decode(link.group(1))))
    assert len(downloaded) == 39
    assert {"churn_probability", "segment_name", "action_1_reason"} <= set(downloaded.columns)
    assert set(downloaded[schema.ID]) == set(df[schema.ID]) - {int(df[schema.ID].iloc[4])}
    # rounded sensibly: 4 decimals for probabilities, cents for dollars
    text = base64.b64decode(link.group(1)).decode()
    assert "e-0" not in text
    assert (downloaded["churn_probability"] == downloaded["churn_probability"].round(4)).all()
    assert (downloaded["value_at_risk"] == downloaded["value_at_risk"].round(2)).all()
    # the rejected rows download too, with their reason
    bad = re.search(r"class='nba-download-rejects' [^>]*base64,([^']+)'", app.rejects_table.value)
    rejected = pd.read_csv(io.BytesIO(base64.b64decode(bad.group(1))))
    assert len(rejected) == 1 and "Diamond" in rejected["reason"].iloc[0]
    # the table: one line per customer, action names not codes, % and $
    table = app.batch_table.value
    assert "no_action" not in _text(table) and "reactivation_cashback" not in _text(table)
    assert "white-space:nowrap" in table and "text-overflow:ellipsis" in table
    first = app.batch_scores.iloc[0]
    from nba.app import percent

    assert percent(float(first["churn_probability"])) in _text(table)
    assert f"${first['value_at_risk']:,.0f}" in _text(table)


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("semi.csv", b"a;b;c\n1;2;3\n4;5;6\n", "semi.csv seems to be separated by semicolons"),
        ("empty.csv", b"", "empty.csv is empty"),
        ("cols.csv", b"CLIENTNUM,Customer_Age\n1,40\n", "cols.csv"),
        ("big.csv", b"x" * (UPLOAD_LIMIT + 1), "the app takes CSV files up to"),
        ("data.xlsx", b"PK\x03\x04", "is not a .csv file"),
        (
            "renamed.csv",
            b"PK\x03\x04" + b"\x00" * 40,
            "renamed.csv is an Excel workbook, not a CSV",
        ),
    ],
)
def test_unusable_uploads_get_one_line_next_to_the_upload(app, name, content, words):
    _upload(app, name, content)
    message = _text(app.upload_message.value)
    assert words in message
    assert "\n" not in message and "Traceback" not in message
    assert "/tmp" not in message  # the user's file is named, not the server's copy
    assert app.batch_scores is None and app.batch_table.value == ""


def test_all_rows_rejected_is_said_not_scored(app):
    df = synth.generate(3, 2)
    df["Customer_Age"] = 300
    _upload(app, "old.csv", synth.kaggle_csv_text(df).encode())
    assert "3 rows in old.csv: 0 scored, 3 rejected" in _text(app.batch_summary.value)
    assert "Nothing could be scored" in _text(app.batch_summary.value)
    assert app.download.value == ""


def test_segments_and_model_tabs_show_what_the_bundle_holds(app, app_bundle):
    segments = _text(app.segments_table.value)
    for name in app_bundle.segmenter.names_:
        assert name in segments
    card = _text(app.model_card.value)
    assert f"threshold {app_bundle.threshold:.3f}" in card
    assert "synthetic" in card.lower()
    assert "customers.csv" in card


def test_a_missing_bundle_gives_a_page_that_says_how_to_build_one(tmp_path):
    page = build_app(tmp_path / "none.bundle")
    assert not isinstance(page, App)
    assert "No bundle at" in page.value and "make run" in page.value


def test_serving_keeps_voilas_safe_defaults_and_a_preheated_kernel(tmp_path):
    cmd = " ".join(voila_command(8866))
    assert "--Voila.ip=127.0.0.1" in cmd and "--port=8866" in cmd
    assert "--preheat_kernel=True" in cmd and "--show_tracebacks=False" in cmd
    assert "--strip_sources=True" in cmd and "VoilaExecutor.timeout" in cmd
    assert "--VoilaExecutor.iopub_timeout=60" in cmd  # no empty page under load
    assert "cull" not in cmd  # Voila 0.5: never combined with preheating
    with pytest.raises(NbaError, match="No bundle at"):
        app_environment(tmp_path / "none.bundle")


def test_the_form_has_every_field_of_a_customer_once(app):
    grouped = [name for names in FIELD_GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(set(schema.REQUIRED[1:]) - set(DERIVED))
    assert set(app.fields) == set(grouped)
    assert FIELD_GROUPS["Profile"][0] == "Customer_Age"
    assert FIELD_GROUPS["Relationship"][0] == "Card_Category"
    assert FIELD_GROUPS["Card usage"][0] == "Credit_Limit"


def test_uploading_the_same_file_twice_scores_it_twice(app):
    content = synth.kaggle_csv_text(synth.generate(5, 21)).encode()
    _upload(app, "again.csv", content)
    first = app.batch_scores
    assert first is not None and app.upload.value == ()
    _upload(app, "again.csv", content)
    assert app.batch_scores is not first and len(app.batch_scores) == 5


def test_worklist_filters_sorts_and_exports_the_call_list(app):
    app.wl_band.value = "high"
    app.wl_segment.value = -1
    app.wl_action.value = ""
    app.wl_min_value.value = "0"
    app.wl_sort.value = "value_at_risk"
    app.wl_budget.value = app.wl_capacity.value = ""
    app.wl_button.click()
    s = app.base.scores
    expected = s[s["risk_band"].eq("high") & s["action_1"].ne("no_action")]
    got = app.worklist
    assert set(got.index) == set(expected.index)
    assert got["value_at_risk"].is_monotonic_decreasing
    assert f"{len(expected):,} customers to contact" in _text(app.wl_summary.value)
    link = re.search(r"base64,([^']+)'", app.wl_download.value)
    listed = pd.read_csv(io.BytesIO(base64.b64decode(link.group(1))))
    assert len(listed) == len(expected) and "action_1_name" in listed.columns
    # a contact capacity keeps the first customers of the sorted list
    app.wl_capacity.value = "7"
    app.wl_button.click()
    assert list(app.worklist.index) == list(got.index[:7])
    # a segment and an action filter
    seg = int(expected["segment"].iloc[0])
    app.wl_capacity.value = ""
    app.wl_segment.value = seg
    app.wl_button.click()
    assert (app.worklist["segment"] == seg).all() and len(app.worklist) > 0
    app.wl_segment.value = -1


def test_worklist_budget_uses_the_engines_budget_mode(app):
    from nba.actions import allocate_budget, budget_candidates

    app.wl_band.value = ""
    app.wl_segment.value = -1
    app.wl_action.value = ""
    app.wl_capacity.value = ""
    app.wl_budget.value = "2,000"
    app.wl_button.click()
    plan = allocate_budget(budget_candidates(app.base.scores, app.catalogue), 2000)
    assert list(app.worklist.index) == list(plan["customer"])
    costs = {a.id: a.cost for a in app.catalogue.actions}
    spent = app.worklist["action_1"].astype("str").map(costs).sum()
    assert 0 < spent <= 2000
    assert f"campaign cost ${spent:,.0f}" in _text(app.wl_summary.value)
    app.wl_budget.value = "lots"
    app.wl_button.click()
    assert "Budget must be a number" in _text(app.wl_message.value)
    assert app.worklist is None
    app.wl_budget.value = ""


def test_batch_summary_shows_totals_and_a_chart(app):
    content = synth.kaggle_csv_text(synth.generate(60, 4)).encode()
    _upload(app, "sixty.csv", content)
    scores = app.batch_scores
    totals = _text(app.batch_summary.value)
    assert f"Value at risk ${scores['value_at_risk'].sum():,.0f}" in totals
    acted = scores["action_1"].astype("str").ne("no_action")
    net = scores.loc[acted, "action_1_value"].sum()
    assert f"expected net value ${net:,.0f}" in totals
    assert app.batch_chart.value[:4] == b"\x89PNG" and app.batch_chart.layout.display == ""


def test_outcome_capture_records_the_contact_and_the_campaigns_tab_reports_it(app_files, tmp_path):
    from nba.campaigns.history import History

    history = tmp_path / "history.sqlite"
    desk = build_app(app_files[0], app_files[1], history=history)
    assert "No outcomes recorded yet" in _text(desk.campaigns_table.value)
    assert desk.outcome_box.layout.display == "none"  # nothing to record before a lookup
    s = desk.base.scores
    acted = s[s["action_1"].ne("no_action")]
    key = int(acted.index[0])
    desk.lookup(str(key))
    assert desk.outcome_box.layout.display == ""
    recommended = desk.current["action_1"]
    assert desk.oc_action.value == recommended
    # accept, reached, stayed
    desk.oc_result.value = 1
    desk.record_contact()
    assert "Recorded" in _text(desk.oc_message.value)
    # an override without a reason is refused, with one sentence
    other = next(a for a in desk.catalogue.ids if a not in (recommended, "no_action"))
    desk.oc_action.value = other
    desk.record_contact()
    assert "Say why you override" in _text(desk.oc_message.value)
    desk.oc_reason.value = "customer asked for a call back"
    desk.oc_user.value = ""  # and who overrides must be said too
    desk.record_contact()
    assert "Say who overrides" in _text(desk.oc_message.value)
    desk.oc_user.value = "maria.k"
    desk.oc_result.value = 2  # reached, left
    desk.record_contact()
    assert "overridden" in _text(desk.oc_message.value)
    with History(history) as h:
        got = h.interactions_with_overrides()
        overrides = h.overrides()
    assert len(got) == 2 and set(got["action"]) == {recommended, other}
    assert got.set_index("action").loc[recommended, "retained"] == 1
    assert got.set_index("action").loc[other, "retained"] == 0
    # the override is in the history, beside its decision: not a side file
    assert got.set_index("action")["overridden"].to_dict() == {recommended: 0, other: 1}
    assert len(overrides) == 1
    row = overrides.iloc[0]
    assert (row["CLIENTNUM"], row["campaign_id"]) == (key, "app-desk")
    assert (row["recommended"], row["action"]) == (recommended, other)
    assert (row["override_reason"], row["recorded_by"]) == (
        "customer asked for a call back",
        "maria.k",
    )
    assert not history.with_suffix(".decisions.csv").exists()
    # the Campaigns tab: the engine's decisions by action, the override apart with its reason
    report = _text(desk.campaigns_table.value)
    assert "2 outcomes recorded" in report
    assert desk.catalogue.action(recommended).name in report
    assert "needs a control group" in report
    assert "Overrides (1, latest first)" in report
    assert "customer asked for a call back" in report and "maria.k" in report
    assert "2 outcomes recorded, 1 of them of the engine's own decisions" in report
    assert "left out of the impact table above" in report
    assert "With a known result so far: 1." in report


def test_the_apps_former_override_file_is_migrated_into_the_history(app_files, tmp_path):
    from nba.campaigns.history import LEGACY_RECORDED_BY, History

    history = tmp_path / "history.sqlite"
    desk = build_app(app_files[0], app_files[1], history=history)
    key = int(desk.base.scores.index[0])
    desk.lookup(str(key))
    recommended = desk.baseline["action_1"]
    other = next(a for a in desk.catalogue.ids if a != recommended)
    desk.oc_action.value = other
    desk.oc_reason.value = "branch manager's call"
    desk.record_contact()
    with History(history) as h:
        decision_id = h.decisions()["decision_id"].iloc[0]
        h.conn.execute("DELETE FROM overrides")  # as a history written before schema 2 was
    old = history.with_suffix(".decisions.csv")
    pd.DataFrame(
        [
            {
                "decision_id": decision_id,
                "CLIENTNUM": key,
                "recommended": recommended,
                "action": other,
                "override_reason": "branch manager's call",
                "result": "not known yet",
                "recorded": "2026-11-30T09:00:00+00:00",
            }
        ]
    ).to_csv(old, index=False)
    again = build_app(app_files[0], app_files[1], history=history)  # the next start imports
    assert isinstance(again, App)
    with History(history) as h:
        overrides = h.overrides()
    assert overrides["override_reason"].tolist() == ["branch manager's call"]
    assert overrides["recorded_by"].tolist() == [LEGACY_RECORDED_BY]
    assert not old.exists() and old.with_suffix(".imported.csv").is_file()


def test_what_if_moves_the_customer_into_another_segment_without_changing_it(
    app_files, app_bundle, tmp_path
):
    from nba.app.widgets import SEGMENT_FIELDS, segment_move
    from nba.campaigns.history import History

    desk = build_app(app_files[0], app_files[1], history=tmp_path / "h.sqlite")
    s = desk.base.scores
    key = _middling(desk)
    desk.lookup(str(key))
    own = int(desk.baseline["segment"])
    record = dict(desk.record)
    form = {n: f.value for n, f in desk.fields.items()}
    assert not desk.what_if_segment.disabled
    assert desk.what_if_segment.options[0] == (
        f"its own segment ({desk.baseline['segment_name']})",
        -1,
    )
    changed_any = False
    for target in range(len(app_bundle.segmenter.names_)):
        if target == own:
            continue
        desk.what_if_segment.value = target
        moved = segment_move(app_bundle.segmenter, record, target)
        assert set(moved) <= set(SEGMENT_FIELDS) and moved  # only what segments are made of
        # the what-if customer: the moved fields (the balance on the slider's steps), the
        # derived ones recomputed, everything else the customer's own
        now = desk.what_if_record()
        step = desk.what_if["Total_Revolving_Bal"].step
        for name, value in moved.items():
            assert abs(now[name] - value) <= (step if name == "Total_Revolving_Bal" else 0)
        same = set(record) - set(moved) - set(DERIVED)
        assert {n: now[n] for n in same} == {n: record[n] for n in same}
        assert now["Avg_Open_To_Buy"] == now["Credit_Limit"] - now["Total_Revolving_Bal"]
        # the engine's answer for it, recomputed (trait rules, eligibility, save rates, risk)
        expected = app_bundle.recommend(now)
        assert desk.current["churn_probability"] == pytest.approx(expected["churn_probability"])
        assert [desk.current[f"action_{k}"] for k in (1, 2, 3)] == [
            expected[f"action_{k}"] for k in (1, 2, 3)
        ]
        card = _text(desk.result.value)
        name = app_bundle.segmenter.names_[target]
        assert f"What-if (as a typical customer of “{name}”" in card
        assert "A what-if only: the customer's record is unchanged" in card
        if int(desk.current["segment"]) == target:
            assert f"segment {desk.baseline['segment_name']} → {name}" in card
        changed_any |= desk.current["action_1"] != desk.baseline["action_1"] or (
            desk.current["action_1_value"] != desk.baseline["action_1_value"]
        )
        # nothing changed on the customer: record, form and the base's scores
        assert desk.record == record
        assert {n: f.value for n, f in desk.fields.items()} == form
        assert s.loc[key, "segment"] == own
    assert changed_any  # a segment move changes what the engine recommends or its value
    # a contact recorded during a what-if is the real customer's
    desk.oc_result.value = 1
    desk.record_contact()
    with History(tmp_path / "h.sqlite") as h:
        got = h.interactions()
    assert got["churn_probability"].iloc[0] == pytest.approx(desk.baseline["churn_probability"])
    assert int(got["segment"].iloc[0]) == own
    # back to its own segment: the card is the customer's again
    desk.what_if_segment.value = -1
    assert desk.current is desk.baseline
    assert "What-if" not in _text(desk.result.value)


def test_the_upload_button_reads_as_a_business_control(app):
    from nba.app.widgets import UPLOAD_CSS, UPLOAD_LABEL

    assert app.upload.description == UPLOAD_LABEL == "Upload customers (CSV)"
    assert app.upload.tooltip == UPLOAD_LABEL  # the page shows the title, not "(0)"
    assert "nba-upload" in app.upload._dom_classes and "attr(title)" in UPLOAD_CSS


def test_a_messy_upload_says_what_was_loaded_and_why_rows_were_rejected(app):
    df = synth.generate(30, 17)
    lines = synth.kaggle_csv_text(df).splitlines()
    header = lines[0].split(",")
    age = (
        header.index('"Customer_Age"')
        if '"Customer_Age"' in header
        else header.index("Customer_Age")
    )
    cells = lines[3].split(",")
    cells[age] = "abc"
    lines[3] = ",".join(cells)
    cells = lines[9].split(",")
    cells[age] = ""
    lines[9] = ",".join(cells)
    lines[12] = lines[12].replace('"Blue"', '"Diamond"')
    lines.insert(20, lines[15])  # a duplicate customer
    _upload(app, "messy.csv", ("\n".join(lines) + "\n").encode())
    summary = _text(app.batch_summary.value)
    n_in = len(lines) - 1
    scored, rejected = len(app.batch_scores), len(app.batch_rejects)
    assert scored + rejected == n_in == 31
    assert summary.startswith(f"{n_in} rows in messy.csv: {scored} scored, {rejected} rejected.")
    assert rejected >= 3
    reasons = app.batch_summary.value
    assert "nba-reject-reasons" in reasons
    assert "Customer_Age" in _text(reasons) and "Card_Category" in _text(reasons)


def test_every_problem_of_the_form_is_said_in_one_round(app):
    app.reset_form()
    app.fields["Customer_Age"].value = "abc"  # cannot be read
    app.fields["Months_on_book"].value = "1000"  # read, but out of range
    app.fields["Contacts_Count_12_mon"].value = "-2"
    app.fields["Credit_Limit"].value = "12k"  # cannot be read: the balance is still checked
    app.fields["Total_Revolving_Bal"].value = "-5"
    app.score_form()
    assert "below the minimum" in _text(app.field_messages["Total_Revolving_Bal"].value)
    assert "Age (years) must be a number such as" in _text(app.field_messages["Customer_Age"].value)
    assert f"such as {app.defaults['Customer_Age']}" in _text(
        app.field_messages["Customer_Age"].value
    )
    assert "above the maximum" in _text(app.field_messages["Months_on_book"].value)
    assert "below the minimum" in _text(app.field_messages["Contacts_Count_12_mon"].value)
    assert _text(app.form_message.value) == (
        "Please correct: Age (years), Months on book, Contacts (12 m), Credit limit ($), "
        "Revolving balance ($)."
    )
    assert app.current is None
    app.reset_form()


def test_learning_leaves_out_contacts_where_a_person_overrode_the_engine(app_files, tmp_path):
    from nba.campaigns.history import History
    from nba.campaigns.learn import learn_from_history

    desk = build_app(app_files[0], app_files[1], history=tmp_path / "h.sqlite")
    for i, key in enumerate(desk.base.scores.index[:4]):
        desk.lookup(str(key))
        if i % 2:  # every other contact overrides the recommendation
            best = desk.baseline["action_1"]
            desk.oc_action.value = next(a for a in desk.catalogue.ids if a != best)
            desk.oc_reason.value = "knows the customer"
        desk.oc_result.value = 1 + i  # each with a result
        desk.record_contact()
    with History(tmp_path / "h.sqlite") as history:
        assert len(history.interactions()) == 4
        result = learn_from_history(desk.bundle, history)
    assert result.lineage["outcomes"] == 2
    assert result.lineage["overridden_left_out"] == 2


def test_an_unreadable_history_is_one_sentence_on_its_tab_and_the_app_still_works(
    app_files, tmp_path
):
    history = tmp_path / "history.sqlite"
    history.write_text("not a database" * 200)
    desk = build_app(app_files[0], app_files[1], history=history)
    assert isinstance(desk, App)
    assert "is not a usable nba history" in _text(desk.campaigns_table.value)
    key = int(desk.base.scores.index[0])
    desk.lookup(str(key))
    assert f"Customer {key}" in _text(desk.result.value)
    desk.record_contact()  # the contact cannot be written: said beside the button
    assert "is not a usable nba history" in _text(desk.oc_message.value)
    desk.oc_action.value = next(a for a in desk.catalogue.ids if a != desk.baseline["action_1"])
    desk.oc_reason.value = "x" * 501
    desk.record_contact()
    assert "Keep the reason to 500 characters (it has 501)" in _text(desk.oc_message.value)


@pytest.mark.parametrize(
    ("budget", "capacity", "words"),
    [
        ("0", "", "0 customers to contact. Value at risk $0 · campaign cost $0"),
        ("", "0", "0 customers to contact. Value at risk $0 · campaign cost $0"),
    ],
)
def test_an_empty_call_list_is_said_not_an_error(app, budget, capacity, words):
    app.wl_band.value = ""
    app.wl_min_value.value = "0"
    app.wl_budget.value, app.wl_capacity.value = budget, capacity
    app.build_worklist()
    assert app.wl_message.value == ""
    assert words in _text(app.wl_summary.value)
    assert len(app.worklist) == 0
    app.wl_budget.value = app.wl_capacity.value = ""


def test_an_infinite_amount_is_not_a_number_for_the_worklist(app):
    app.wl_min_value.value = "1e309"
    app.build_worklist()
    assert "Value at risk from must be a number such as 5000" in _text(app.wl_message.value)
    app.wl_min_value.value = "0"
