"""The user-acceptance app behind `app.ipynb` (served by Voila): widgets and their callbacks.

`build_app()` returns one widget with a loud data banner and four tabs:

- **Customer**: look a customer up by CLIENTNUM in the scored base, or enter one in a form
  (every field, grouped, defaults from the base, checked by the same validator as batch
  scoring); a result card with churn probability and risk band, segment, top-3 actions with
  value and reasons, and the customer's risk drivers; what-if sliders on actionable fields.
- **Batch**: upload a CSV, see scored and rejected rows (with reasons), download the scores.
- **Segments**: sizes, churn rates and profiles of all segments.
- **Model**: the model card, threshold and value assumptions.

All work happens in `nba` (bundle, validation, scoring); this module lays it out with the
HTML of `nba.app.views`. Every callback shows problems as a message next to the field or table,
never a traceback; an invalid form is explained field by field from the validator's issues
(column, rule), never by reading its sentences. Serving the page: `nba.app.server`.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd

from nba import config
from nba.app.server import READY_LINE, bundle_path
from nba.app.views import (
    banner_html,
    batch_table_html,
    campaign_figures,
    card_html,
    download_link,
    escape,
    message,
    money,
    number,
    png,
    rounded_scores,
    summary_chart,
    table_html,
)
from nba.data import schema
from nba.data.validate import Issue, RecordError
from nba.errors import NbaError
from nba.report import atomic_write_bytes

log = logging.getLogger(__name__)

#: Largest CSV the Batch tab takes (bytes); bigger batches belong to `nba score`.
UPLOAD_LIMIT = 2 * 2**20
#: The upload button's words, and the style that shows them in place of FileUpload's label
#: with its file count (the button's title holds the same words).
UPLOAD_LABEL = "Upload customers (CSV)"
UPLOAD_CSS = (
    "<style>.nba-upload{font-size:0 !important}"
    ".nba-upload::after{content:attr(title);font-size:var(--jp-widgets-font-size,13px)}"
    ".nba-upload i{font-size:var(--jp-widgets-font-size,13px);margin-right:6px}</style>"
)
#: The campaign id under which contacts recorded on a customer's card go into the history.
APP_CAMPAIGN = "app-desk"
#: Longest override reason kept (characters): a sentence or two, not a case file.
REASON_LIMIT = 500
#: Kinds of problem listed under an upload's summary (the rejected rows' table has them all).
REASONS_SHOWN = 6
#: Rows of the scored table shown on the page (the download has all of them).
SHOWN_ROWS = 100

#: The form's fields, grouped as a relationship manager thinks of a customer. The two derived
#: columns (open to buy, utilisation) are computed from credit limit and revolving balance.
DERIVED = ("Avg_Open_To_Buy", "Avg_Utilization_Ratio")
_FORM = tuple(c for c in schema.REQUIRED[1:] if c not in DERIVED)  # the schema's order
FIELD_GROUPS: dict[str, tuple[str, ...]] = {
    "Profile": _FORM[:6],  # age, gender, dependants, education, marital status, income
    "Relationship": _FORM[6:11],  # card, tenure, products, inactivity, contacts
    "Card usage": _FORM[11:],  # limit, balance, spend and transactions with their Q4/Q1 change
}
LABELS: dict[str, str] = {
    "Customer_Age": "Age (years)",
    "Gender": "Gender",
    "Dependent_count": "Dependants",
    "Education_Level": "Education",
    "Marital_Status": "Marital status",
    "Income_Category": "Income band",
    "Card_Category": "Card",
    "Months_on_book": "Months on book",
    "Total_Relationship_Count": "Products held",
    "Months_Inactive_12_mon": "Inactive months (12 m)",
    "Contacts_Count_12_mon": "Contacts (12 m)",
    "Credit_Limit": "Credit limit ($)",
    "Total_Revolving_Bal": "Revolving balance ($)",
    "Total_Trans_Amt": "Spend, 12 months ($)",
    "Total_Trans_Ct": "Transactions, 12 months",
    "Total_Amt_Chng_Q4_Q1": "Spend change Q4/Q1",
    "Total_Ct_Chng_Q4_Q1": "Transaction change Q4/Q1",
    "Avg_Open_To_Buy": "Open to buy ($)",
    "Avg_Utilization_Ratio": "Utilisation",
}
#: Actionable fields with a what-if slider: what a retention action can change.
WHAT_IF = (
    "Total_Trans_Ct",
    "Months_Inactive_12_mon",
    "Contacts_Count_12_mon",
    "Total_Relationship_Count",
    "Total_Revolving_Bal",
)
_STYLE = {"description_width": "190px"}
_FIELD_WIDTH = "400px"


def derived_fields(credit_limit: float, revolving_balance: float) -> dict[str, float]:
    """Open to buy and utilisation as the card system computes them (Kaggle rounds the ratio to
    3 decimals), so a hand-entered customer always satisfies the balance identities."""
    ratio = revolving_balance / credit_limit if credit_limit > 0 else 0.0
    return {
        "Avg_Open_To_Buy": float(credit_limit - revolving_balance),
        "Avg_Utilization_Ratio": round(ratio, 3),
    }


#: What the segmentation is made of (`nba.segments`): moving a customer into another segment
#: moves these to that segment's typical values; every other field stays the customer's own.
SEGMENT_FIELDS = ("Total_Trans_Amt", "Total_Trans_Ct", "Total_Revolving_Bal")


def segment_move(segmenter: Any, record: dict[str, Any], segment: int) -> dict[str, Any]:
    """The fields that change when `record` is moved into `segment`, as {field: new value}:
    spend and transactions to the segment's medians; the revolving balance only when the
    customer's borrowing differs from the segment's (a transactor moved among revolvers gets
    the segment's median balance, within the credit limit; a revolver moved among transactors
    a zero balance). Open to buy and utilisation follow from the balance (`derived_fields`)."""
    from nba.segments.space import REVOLVER

    p = segmenter.profile()
    target = {
        "Total_Trans_Amt": int(round(float(p.median[segment, p.col("Total_Trans_Amt")]))),
        "Total_Trans_Ct": int(round(float(p.median[segment, p.col("Total_Trans_Ct")]))),
    }
    revolves = float(p.mean[segment, p.col(REVOLVER)]) >= 0.5
    balance = int(record["Total_Revolving_Bal"])
    if revolves and balance <= 0:
        typical = float(p.median[segment, p.col("Total_Revolving_Bal")])
        target["Total_Revolving_Bal"] = int(min(max(round(typical), 1), record["Credit_Limit"]))
    elif not revolves and balance > 0:
        target["Total_Revolving_Bal"] = 0
    return {k: v for k, v in target.items() if v != record[k]}


def parse_field(name: str, text: Any, example: Any = None) -> tuple[Any, str]:
    """A form field's text as its value, or None and one sentence (with the field's friendly
    name and, when given, `example` of a good value) saying what is wrong: nothing typed is
    ever changed silently ("12k" is not 12, "2.5" dependants is not 2). Thousands separators
    ("12,000") are accepted. Ranges are the validator's to check."""
    label = LABELS[name]
    if name in schema.CATEGORIES:
        return text, ""
    raw = str(text).strip().replace(",", "")
    lo, hi = schema.BOUNDS[name]
    if not raw:
        return None, f"{label} is empty: enter a number from {number(lo)} to {number(hi)}."
    try:
        value = float(raw)
    except ValueError:
        such = number(example if example is not None else lo)
        return None, f"{label} must be a number such as {such}; got '{text}'."
    if not np.isfinite(value):
        return None, f"{label} must be a number; got '{text}'."
    if name in schema.INTEGERS:
        if not value.is_integer():
            return None, f"{label} must be a whole number; got '{text}'."
        return int(value), ""
    return value, ""


def field_text(value: Any) -> str:
    """A value as the form shows it: 46, 12691, 0.7 (no trailing .0, no exponent)."""
    if isinstance(value, str):
        return value
    v = float(value)
    return str(int(v)) if v.is_integer() else f"{v:g}"


def _guard(report: Callable[[str], None]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run a callback; a problem becomes one sentence through `report`, never a traceback."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except NbaError as exc:
                report(str(exc))
            except Exception as exc:  # noqa: BLE001 - a page must never show a traceback
                log.exception("app callback %s failed", fn.__name__)
                report(f"Something went wrong ({type(exc).__name__}: {exc}).")
            return None

        return run

    return wrap


@dataclass
class Base:
    """The scored customer base the app looks customers up in."""

    source: dict[str, Any]
    customers: pd.DataFrame  # clean records, indexed by CLIENTNUM
    scores: pd.DataFrame  # score rows, indexed by CLIENTNUM
    rejected: int


def load_base(bundle: Any, data_path: str | Path | None = None) -> Base:
    """The customers to look up: `data_path`, else the file the bundle learnt from when it is
    still there unchanged, else data discovery; validated and scored with the bundle."""
    from nba.data.discover import describe, discover
    from nba.data.io import sha256, validate_file

    trained_on = bundle.metadata.get("data", {})
    if data_path:
        source = discover(data_path)
    elif (
        trained_on.get("path")
        and Path(trained_on["path"]).is_file()
        and sha256(trained_on["path"]) == trained_on.get("sha256")
    ):
        source = describe(Path(trained_on["path"]), trained_on.get("origin", "bundle"))
    else:
        source = discover()
    checked = validate_file(source.path)
    customers = checked.clean.set_index(schema.ID, drop=False)
    scores = bundle.score(checked.clean).set_index(schema.ID, drop=False)
    return Base(source.to_dict(), customers, scores, len(checked.rejects))


class App(w.VBox):
    """The whole app: a banner and four tabs. Its widgets are attributes, so tests (and a
    notebook) can set values and press buttons exactly as a user does."""

    def __init__(
        self,
        bundle: Any,
        base: Base,
        chart_cache: Path | None = None,
        history: str | Path | None = None,
    ) -> None:
        from nba.campaigns.history import default_history_path

        self.bundle, self.base, self.chart_cache = bundle, base, chart_cache
        self.history_path = Path(history) if history else default_history_path()
        self.customer_id: int | None = None  # CLIENTNUM of the card's customer, when looked up
        self.catalogue = bundle.action_catalogue
        self.defaults = self._defaults()
        self._charts: dict[int, bytes] = {}
        self.record: dict[str, Any] | None = None  # the customer on the card (before what-if)
        self.label: str = ""
        self.outcome: str | None = None  # what the data says happened to a looked-up customer
        self.current: dict[str, Any] | None = None  # the card's score row (after what-if)
        self.baseline: dict[str, Any] | None = None  # the score row before what-if
        self.batch_scores: pd.DataFrame | None = None
        self.batch_rejects: pd.DataFrame | None = None
        banners = [banner_html(bundle.metadata.get("data", {}), "the model learnt from")]
        if base.source.get("sha256") != bundle.metadata.get("data", {}).get("sha256"):
            banners.append(banner_html(base.source, "customers to look up:"))
        self._syncing = False  # True while sliders are set from a record (no re-scoring)
        self._import_override_log()
        self.banner = w.HTML("".join(banners))
        self.tabs = w.Tab(
            children=[
                self._customer_tab(),
                self._worklist_tab(),
                self._batch_tab(),
                self._segments_tab(),
                self._campaigns_tab(),
                self._model_tab(),
            ]
        )
        self.tabs.titles = ("Customer", "Worklist", "Batch", "Segments", "Campaigns", "Model")
        # the page's heading and purpose are app.ipynb's first cell: not repeated here
        super().__init__([self.banner, self.tabs])
        self.add_class("nba-app")

    # ------------------------------------------------------------------ customer tab
    def _defaults(self) -> dict[str, Any]:
        """Form defaults: the base's median customer (most common value for categories)."""
        c = self.base.customers
        out: dict[str, Any] = {}
        for group in FIELD_GROUPS.values():
            for f in group:
                if f in schema.CATEGORIES:
                    out[f] = str(c[f].mode().iloc[0])
                elif f in schema.INTEGERS:
                    out[f] = int(round(float(c[f].median())))
                else:
                    out[f] = round(float(c[f].median()), 3)
        return out

    def _field(self, name: str) -> w.Widget:
        label, value = LABELS[name], self.defaults[name]
        common = {"description": label, "style": _STYLE, "layout": w.Layout(width=_FIELD_WIDTH)}
        if name in schema.CATEGORIES:
            return w.Dropdown(options=list(schema.CATEGORIES[name]), value=value, **common)
        # Text, not a number box: the browser's number boxes silently revert "abc" and cut
        # "12k" to 12; here what was typed is parsed and, if wrong, explained beside the field.
        # The range is shown (tooltip) and checked by the validator, not clamped silently.
        lo, hi = schema.BOUNDS[name]
        common["tooltip"] = f"{label}: {number(lo)} to {number(hi)}"
        return w.Text(value=field_text(value), continuous_update=False, **common)

    def _customer_tab(self) -> w.Widget:
        self.example_id = int(self.base.scores.index[0]) if len(self.base.scores) else 0
        self.lookup_id = w.Text(
            description="CLIENTNUM",
            placeholder=f"e.g. {self.example_id}",
            continuous_update=False,
            style={"description_width": "90px"},
            layout=w.Layout(width="300px"),
        )
        self.lookup_button = w.Button(description="Look up", button_style="primary")
        self.lookup_message = w.HTML()
        self.lookup_button.on_click(lambda _: self.lookup(self.lookup_id.value))
        # Enter (or leaving the box) looks up too: the value is sent only then
        self.lookup_id.observe(lambda _: self.lookup(self.lookup_id.value), names="value")
        lookup = w.VBox(
            [
                w.HTML(
                    f"<b>Look up</b> one of the {len(self.base.scores):,} customers of the "
                    "scored base"
                ),
                w.HBox([self.lookup_id, self.lookup_button, self.lookup_message]),
            ]
        )

        self.fields: dict[str, w.Widget] = {}
        self.field_messages: dict[str, w.HTML] = {}
        groups = []
        for group, names in FIELD_GROUPS.items():
            rows = []
            for name in names:
                self.fields[name] = self._field(name)
                self.field_messages[name] = w.HTML()
                self.fields[name].add_class(f"nba-field-{name}")
                self.field_messages[name].add_class(f"nba-message-{name}")
                rows.append(w.HBox([self.fields[name], self.field_messages[name]]))
            groups.append(w.VBox([w.HTML(f"<b>{group}</b>"), *rows]))
        self.derived = w.HTML()
        for name in ("Credit_Limit", "Total_Revolving_Bal"):
            self.fields[name].observe(lambda _: self._show_derived(), names="value")
        self._show_derived()
        self.score_button = w.Button(
            description="Score this customer",
            button_style="primary",
            layout=w.Layout(width="auto", min_width="170px"),
        )
        self.new_button = w.Button(
            description="Reset form", layout=w.Layout(width="auto", min_width="100px")
        )
        self.form_message = w.HTML()
        self.score_button.on_click(lambda _: self.score_form())
        self.new_button.on_click(lambda _: self.reset_form())
        form = w.VBox(
            [
                w.HTML("<b>…or enter a customer</b> (defaults: the base's median customer)"),
                *groups,
                self.derived,
                w.HBox([self.score_button, self.new_button, self.form_message]),
            ]
        )

        self.result = w.HTML(
            "<p class='nba-empty'>Look a customer up or score the form to see the result.</p>"
        )
        # hidden until a customer is shown: an empty image is a broken-image icon
        self.segment_chart_title = w.HTML()
        self.segment_chart = w.Image(
            format="png", layout=w.Layout(max_width="560px", width="100%", display="none")
        )
        self.what_if: dict[str, w.IntSlider] = {}
        for name in WHAT_IF:
            self.what_if[name] = w.IntSlider(
                description=LABELS[name],
                min=0,
                max=10,
                continuous_update=False,
                style=_STYLE,
                layout=w.Layout(width="480px"),
                disabled=True,
            )
            self.what_if[name].add_class(f"nba-what-if-{name}")
            self.what_if[name].observe(lambda _: self.apply_what_if(), names="value")
        self.what_if_segment = w.Dropdown(
            description="As a customer of",
            options=[("its own segment", -1)]
            + [(n, i) for i, n in enumerate(self.bundle.segmenter.names_)],
            value=-1,
            disabled=True,
            style=_STYLE,
            layout=w.Layout(width="480px"),
        )
        self.what_if_segment.add_class("nba-what-if-segment")
        self.what_if_segment.observe(lambda _: self.move_to_segment(), names="value")
        self.moved: dict[str, Any] = {}  # fields set by a segment move that have no slider
        self.what_if_reset = w.Button(
            description="Reset what-if", disabled=True, layout=w.Layout(width="auto")
        )
        self.what_if_reset.on_click(lambda _: self._reset_what_if())
        self.what_if_message = w.HTML()
        what_if = w.VBox(
            [
                w.HTML(
                    "<b>What-if</b>: move a slider, or put the customer in another segment, to "
                    "see how risk and actions would change (nothing is saved: the customer's "
                    "record stays as it is)"
                ),
                self.what_if_segment,
                *self.what_if.values(),
                w.HBox([self.what_if_reset, self.what_if_message]),
            ]
        )
        left = w.VBox([lookup, w.HTML("<hr>"), form], layout=w.Layout(width="50%"))
        right = w.VBox(
            [
                self.result,
                self._outcome_box(),
                what_if,
                self.segment_chart_title,
                self.segment_chart,
            ],
            layout=w.Layout(width="50%"),
        )
        # the result first: on a 1280×800 screen the card and its actions are above the fold
        return w.HBox([right, left])

    def _show_derived(self) -> None:
        limit, bad_limit = parse_field("Credit_Limit", self.fields["Credit_Limit"].value)
        balance, bad_bal = parse_field(
            "Total_Revolving_Bal", self.fields["Total_Revolving_Bal"].value
        )
        if bad_limit or bad_bal:
            shown = "— (enter a credit limit and a revolving balance)"
        else:
            d = derived_fields(float(limit), float(balance))
            open_to_buy = d["Avg_Open_To_Buy"]
            otb = (
                f"−{money(-open_to_buy)} (the balance is above the limit)"
                if open_to_buy < 0
                else money(open_to_buy)
            )
            util = (
                "— (no credit limit)" if limit <= 0 else f"{balance / limit:.1%}"
            )  # the true share shown; the record keeps the card system's 3-decimal ratio
            shown = (
                f"{LABELS['Avg_Open_To_Buy']}: {otb} · {LABELS['Avg_Utilization_Ratio']}: {util}"
            )
        self.derived.value = (
            f"<span class='nba-derived' style='color:#555'>{escape(shown)} "
            "(computed from limit and balance)</span>"
        )

    def form_values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The form's values as typed, parsed, and a sentence per field that cannot be read."""
        record: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for name, widget in self.fields.items():
            record[name], problem = parse_field(name, widget.value, self.defaults[name])
            if problem:
                problems[name] = problem
        if not problems.keys() & {"Credit_Limit", "Total_Revolving_Bal"}:
            record.update(
                derived_fields(float(record["Credit_Limit"]), float(record["Total_Revolving_Bal"]))
            )
        return record, problems

    def form_record(self) -> dict[str, Any]:
        """The customer the form describes, with the derived columns computed (NbaError naming
        the fields that cannot be read)."""
        record, problems = self.form_values()
        if problems:
            raise NbaError(" ".join(problems.values()))
        return record

    def clear_card(self, why: str) -> None:
        """No result on show (after a failed entry the previous card must not look like the
        answer): the card says `why`, what-if and the chart are off."""
        self.record = self.current = self.baseline = None
        self.result.value = f"<p class='nba-empty'>{escape(why)}</p>"
        self.segment_chart.layout.display = "none"
        self.segment_chart_title.value = ""
        for slider in self.what_if.values():
            slider.disabled = True
        self._syncing = True
        try:
            self.what_if_segment.value = -1
        finally:
            self._syncing = False
        self.moved = {}
        self.what_if_segment.disabled = True
        self.what_if_reset.disabled = True
        self.outcome_box.layout.display = "none"

    def _report_form(self, text: str) -> None:
        self.form_message.value = message(text)

    def score_form(self) -> None:
        """Score the customer in the form; each invalid field gets its message beside it."""
        _guard(self._report_form)(self._score_form)()

    def _score_form(self) -> None:
        for widget in self.field_messages.values():
            widget.value = ""
        self.form_message.value = ""
        record, problems = self.form_values()
        if not problems:
            try:  # recommend validates: one check, and its issues say which field is wrong
                self.customer_id = None  # an entered customer has no CLIENTNUM to record
                self.show_customer(record, "Entered customer")
            except RecordError as exc:
                problems = field_problems(exc.issues)
        else:  # the fields that could be read are checked too: every problem in one round
            merged = {**self._range_problems(record, problems), **problems}
            problems = {n: merged[n] for n in self.fields if n in merged}  # the form's order
        if problems:
            for name, text in problems.items():
                if name:
                    self.field_messages[name].value = message(text)
            names = ", ".join(LABELS[n] for n in problems if n)
            other = problems.get("", "")
            self.form_message.value = message(
                " ".join(t for t in (f"Please correct: {names}." if names else "", other) if t)
            )
            self.clear_card("No result: the entered customer could not be scored (see the form).")
            return
        self.form_message.value = message("Scored.", "ok")

    def _range_problems(self, record: dict[str, Any], unread: dict[str, str]) -> dict[str, str]:
        """The validator's problems with the fields that were read, while others (`unread`)
        could not be: those stand in with values that break no rule (the form's defaults; for
        an unread credit limit the largest allowed, so a balance is only checked against its
        own range) and their problems are left out."""
        from nba.data.validate import validate

        filled = {n: self.defaults[n] if n in unread else record[n] for n in self.fields}
        if "Credit_Limit" in unread:
            filled["Credit_Limit"] = schema.BOUNDS["Credit_Limit"][1]
        if "Total_Revolving_Bal" in unread:
            filled["Total_Revolving_Bal"] = 0
        filled.update(
            derived_fields(float(filled["Credit_Limit"]), float(filled["Total_Revolving_Bal"]))
        )
        checked = validate(pd.DataFrame([{schema.ID: 1, **filled}]))
        found = field_problems(checked.issues_in(1)) if not checked.ok else {}
        return {n: t for n, t in found.items() if n and n not in unread}

    def reset_form(self) -> None:
        for name, widget in self.fields.items():
            widget.value = field_text(self.defaults[name])
            self.field_messages[name].value = ""
        self.form_message.value = ""

    def _report_lookup(self, text: str) -> None:
        self.lookup_message.value = message(text)

    def lookup(self, text: Any) -> None:
        """Find a customer by CLIENTNUM, fill the form with its record and show its card."""
        _guard(self._report_lookup)(self._lookup)(text)

    def _lookup(self, text: Any) -> None:
        self.lookup_message.value = ""
        raw = str(text).strip()
        if not raw.isdigit():
            self.lookup_message.value = message(
                f"CLIENTNUM must be a whole number such as {self.example_id}; got '{raw}'."
            )
            return
        key = int(raw)
        if key not in self.base.customers.index:
            self.lookup_message.value = message(
                f"No customer {key} among the {len(self.base.customers):,} customers of "
                f"{Path(self.base.source.get('path', '?')).name}."
            )
            return
        row = self.base.customers.loc[key]
        record = {c: _plain(row[c]) for c in schema.REQUIRED[1:]}
        for name, widget in self.fields.items():
            widget.value = field_text(record[name])
            self.field_messages[name].value = ""
        self.form_message.value = ""
        outcome = None
        if schema.TARGET in row.index and pd.notna(row[schema.TARGET]):
            outcome = "left (attrited)" if int(row[schema.TARGET]) == 1 else "stayed (existing)"
        self.customer_id = key
        self.show_customer(record, f"Customer {key}", outcome)
        self.lookup_message.value = message(f"Found customer {key}.", "ok")

    def show_customer(
        self, record: dict[str, Any], label: str, outcome: str | None = None
    ) -> dict[str, Any]:
        """Score a customer, show the card and set the what-if sliders to its values."""
        scored = self.bundle.recommend(record)
        self.record, self.label, self.outcome = dict(record), label, outcome
        self.baseline = self.current = scored
        self._offer_outcome(scored)
        self._set_sliders(record)
        self._render(scored)
        return scored

    # ------------------------------------------------------------------ what-if
    def _set_sliders(self, record: dict[str, Any]) -> None:
        self._syncing = True
        try:
            for name, slider in self.what_if.items():
                value = int(record[name])
                if name == "Total_Revolving_Bal":
                    top = int(record["Credit_Limit"])
                    slider.step = max(1, top // 200)
                elif name == "Months_Inactive_12_mon":
                    top = 12
                elif name == "Total_Relationship_Count":
                    slider.min = 1
                    top = max(8, value)
                else:
                    # room to try a real change (the slider clamps what is typed beyond it)
                    top = max(2 * value, value + 100, 10)
                slider.max = max(top, value)
                slider.value = value
                slider.disabled = False
            own = f"its own segment ({self.baseline['segment_name']})" if self.baseline else None
            if own and self.what_if_segment.options[0][0] != own:
                self.what_if_segment.options = [(own, -1), *self.what_if_segment.options[1:]]
            self.what_if_segment.value = -1
            self.what_if_segment.disabled = False
            self.moved = {}
            self.what_if_reset.disabled = False
        finally:
            self._syncing = False
        self.what_if_message.value = ""

    def move_to_segment(self) -> None:
        """What-if: the card's customer as a typical customer of the chosen segment (its spend,
        transactions and, where borrowing differs, revolving balance: `segment_move`), re-scored
        so that the engine's trait-based rules, eligibility and save rates apply anew. The
        sliders show the moved values; the customer's record is not changed."""
        if self._syncing or self.record is None:
            return
        _guard(self._report_what_if)(self._move_to_segment)()

    def _move_to_segment(self) -> None:
        target = int(self.what_if_segment.value)
        if target < 0:  # back to its own segment: the sliders as they were
            self._reset_what_if()
            return
        moved = segment_move(self.bundle.segmenter, self.record, target)
        if "Total_Revolving_Bal" in moved:  # on the slider's steps (the browser snaps to them)
            step = max(1, int(self.what_if["Total_Revolving_Bal"].step))
            if moved["Total_Revolving_Bal"] > 0:
                snapped = max(step, round(moved["Total_Revolving_Bal"] / step) * step)
                moved["Total_Revolving_Bal"] = min(snapped, int(self.record["Credit_Limit"]))
        self._syncing = True
        try:
            for name, slider in self.what_if.items():
                value = int(moved.get(name, self.record[name]))
                slider.max = max(int(slider.max), value)
                slider.value = value
        finally:
            self._syncing = False
        self.moved = {k: v for k, v in moved.items() if k not in self.what_if}
        self._apply_what_if()
        name = self.bundle.segmenter.names_[target]
        if int(self.current["segment"]) != target:
            self.what_if_message.value = message(
                f"The typical spend and transactions of “{name}” place this customer in "
                f"“{self.current['segment_name']}” (other fields differ from that segment's).",
                "info",
            )

    def _reset_what_if(self) -> None:
        if self.record is not None:
            self._set_sliders(self.record)
            self.current = self.baseline
            self._render(self.baseline)

    def _report_what_if(self, text: str) -> None:
        self.what_if_message.value = message(text)

    def what_if_record(self) -> dict[str, Any]:
        """The card's customer with the what-if in place: the slider values and the fields a
        segment move set (derived columns recomputed). `self.record` itself never changes."""
        assert self.record is not None
        record = {**self.record, **self.moved}
        for name, slider in self.what_if.items():
            record[name] = int(slider.value)
        record.update(derived_fields(float(record["Credit_Limit"]), record["Total_Revolving_Bal"]))
        return record

    def apply_what_if(self) -> None:
        """Re-score the card's customer with the slider values: risk and actions update."""
        if self._syncing or self.record is None:
            return
        _guard(self._report_what_if)(self._apply_what_if)()

    def _apply_what_if(self) -> None:
        self.what_if_message.value = ""
        self.current = self.bundle.recommend(self.what_if_record())
        self._render(self.current)

    # ------------------------------------------------------------------ the result card
    def _changes(self) -> list[str]:
        if self.record is None:
            return []
        now = self.what_if_record()
        fields = [
            f"{LABELS[n]} {self.record[n]:,} → {now[n]:,}"
            for n in dict.fromkeys([*SEGMENT_FIELDS, *WHAT_IF])
            if int(now[n]) != int(self.record[n])
        ]
        target = int(self.what_if_segment.value)
        if target < 0 or self.baseline is None:
            return fields
        name = self.bundle.segmenter.names_[target]
        return [f"as a typical customer of “{name}”", *fields]

    def _render(self, scored: dict[str, Any]) -> None:
        segment = int(scored["segment"])
        changes = self._changes()
        self.result.value = card_html(
            scored,
            label=self.label,
            threshold=self.bundle.threshold,
            description=self.bundle.segmenter.descriptions_[segment],
            action_names={a: self.catalogue.action(a).name for a in self.catalogue.ids},
            changes=changes,
            before=float(self.baseline["churn_probability"]) if self.baseline else None,
            outcome=self.outcome,
            segment_before=str(self.baseline["segment_name"]) if self.baseline else None,
            labels=LABELS,
        )
        self.segment_chart.value = self.chart(segment)
        self.segment_chart.layout.display = ""
        self.segment_chart_title.value = (
            f"<h4 style='margin:8px 0 2px 0'>How segment “{escape(scored['segment_name'])}” "
            "differs from the typical customer</h4>"
        )

    def chart(self, segment: int) -> bytes:
        """A segment's profile chart as PNG, drawn once per bundle: kept in memory and, when
        the bundle came from a file, in a cache folder keyed by the file's sha256 (drawing five
        charts is most of a kernel's page-building time; every Voila kernel shares them)."""
        if segment not in self._charts:
            cached = self.chart_cache / f"segment-{segment}.png" if self.chart_cache else None
            if cached is not None and cached.is_file():
                self._charts[segment] = cached.read_bytes()
            else:
                self._charts[segment] = png(self.bundle.segmenter.profile_chart(segment))
                if cached is not None:
                    atomic_write_bytes(cached, self._charts[segment])
        return self._charts[segment]

    # ------------------------------------------------------------------ outcome capture
    RESULTS = (
        ("not known yet", None),
        ("reached; customer stayed", (1, 1)),
        ("reached; customer left", (1, 0)),
        ("not reached; customer stayed", (0, 1)),
        ("not reached; customer left", (0, 0)),
    )

    def _outcome_box(self) -> w.Widget:
        style = {"description_width": "120px"}
        self.oc_action = w.Dropdown(description="Action taken", style=style)
        self.oc_reason = w.Text(
            description="Why override",
            placeholder="needed when the action is not the recommended one",
            style=style,
            layout=w.Layout(width="460px"),
        )
        self.oc_result = w.Dropdown(
            description="Result",
            options=[(label, i) for i, (label, _) in enumerate(self.RESULTS)],
            style=style,
        )
        self.oc_user = w.Text(
            description="Recorded by",
            value=_user_name(),
            style=style,
            layout=w.Layout(width="460px"),
        )
        self.oc_button = w.Button(description="Record contact", layout=w.Layout(width="auto"))
        self.oc_button.on_click(lambda _: self.record_contact())
        self.oc_message = w.HTML()
        self.outcome_box = w.VBox(
            [
                w.HTML("<h4 style='margin:8px 0 2px 0'>Record the contact</h4>"),
                self.oc_action,
                self.oc_reason,
                self.oc_user,
                self.oc_result,
                w.HBox([self.oc_button, self.oc_message]),
            ],
            layout=w.Layout(display="none"),
        )
        self.outcome_box.add_class("nba-outcome")
        return self.outcome_box

    def _offer_outcome(self, scored: dict[str, Any]) -> None:
        """Offer the recommended action first ("accept"), every other action as an override."""
        names = self._action_names()
        best = str(scored.get("action_1") or "")
        others = [a for a in self.catalogue.ids if a != best]
        self.oc_action.options = [
            (f"accept: {names.get(best, best)}", best),
            *[(f"override: {names[a]}", a) for a in others],
        ]
        self.oc_action.value = best
        self.oc_reason.value = ""
        self.oc_result.value = 0
        self.oc_message.value = ""
        self.outcome_box.layout.display = "" if self.customer_id is not None else "none"

    def _report_outcome(self, text: str) -> None:
        self.oc_message.value = message(text)

    def record_contact(self) -> None:
        """Write the contact (accepted or overridden action) and, when known, its result into
        the interaction history of `nba.campaigns`, so save rates can be measured."""
        _guard(self._report_outcome)(self._record_contact)()

    def _record_contact(self) -> None:
        import uuid

        from nba.campaigns.history import History
        from nba.campaigns.policy import bundle_id

        if self.baseline is None or self.customer_id is None:
            self.oc_message.value = message("Look a customer up first.")
            return
        # the customer as they are, never a what-if on show: the record, risk and
        # recommendation the contact was made on
        scored, chosen = self.baseline, str(self.oc_action.value)
        recommended = str(scored.get("action_1") or "")
        reason = str(self.oc_reason.value).strip()
        who = str(self.oc_user.value).strip()
        overridden = chosen != recommended
        if overridden and not reason:
            self.oc_message.value = message(
                "Say why you override the recommendation (Why override)."
            )
            return
        if len(reason) > REASON_LIMIT:
            self.oc_message.value = message(
                f"Keep the reason to {REASON_LIMIT} characters (it has {len(reason):,})."
            )
            return
        if overridden and not who:
            self.oc_message.value = message("Say who overrides the recommendation (Recorded by).")
            return
        value = next(
            (scored[f"action_{k}_value"] for k in (1, 2, 3) if scored.get(f"action_{k}") == chosen),
            np.nan,
        )
        decision_id = f"app:{self.customer_id}:{uuid.uuid4().hex[:12]}"
        decision = pd.DataFrame(
            [
                {
                    "decision_id": decision_id,
                    schema.ID: self.customer_id,
                    "campaign_id": APP_CAMPAIGN,
                    "channel": "api",
                    "group": "treatment",
                    "action": chosen,
                    "propensity": 1.0,
                    "churn_probability": float(scored["churn_probability"]),
                    "segment": int(scored["segment"]),
                    "expected_value": float(value),
                    "bundle_id": bundle_id(self.bundle),
                    "value_at_risk": float(scored.get("value_at_risk", np.nan)),
                    "cost": float(self.catalogue.action(chosen).cost),
                }
            ]
        )
        customer = pd.DataFrame([{c: self.record[c] for c in schema.REQUIRED[1:]}])
        result = self.RESULTS[int(self.oc_result.value)][1]
        # the decision, its override and its response in one transaction: a decision never
        # stands in the history without the override that says a person chose it
        with History(self.history_path) as history, history.transaction():
            history.record_decisions(decision, customer)
            if overridden:  # in the history beside the decision: impact and learning see it
                _, refused = history.record_overrides(
                    pd.DataFrame(
                        [
                            {
                                "decision_id": decision_id,
                                "recommended": recommended,
                                "override_reason": reason,
                                "recorded_by": who,
                            }
                        ]
                    )
                )
                if len(refused):
                    raise NbaError(f"The override was not recorded: {refused['reason'].iloc[0]}.")
            if result is not None:
                history.record_responses(
                    pd.DataFrame(
                        [
                            {
                                "decision_id": decision_id,
                                "responded": result[0],
                                "retained": result[1],
                            }
                        ]
                    )
                )
        kind = "overridden" if overridden else "accepted"
        self.oc_message.value = message(
            f"Recorded: {self._action_names()[chosen]} ({kind}) for customer {self.customer_id}"
            + ("" if result is None else f", {self.RESULTS[int(self.oc_result.value)][0]}")
            + ".",
            "ok",
        )
        self.refresh_campaigns()

    def _import_override_log(self) -> None:
        """The app once kept override reasons in a side file beside the history
        (`<history>.decisions.csv`): import them into the history's overrides table, then
        rename the file `<history>.decisions.imported.csv` (kept, never deleted). Rows that
        cannot be imported leave the file where it is, with a warning in the log."""
        from nba.campaigns.history import History

        old = self.history_path.with_suffix(".decisions.csv")
        if not old.is_file() or not self.history_path.is_file():
            return
        try:
            with History(self.history_path) as history:
                n, rejected = history.import_override_log(old)
        except NbaError as exc:
            log.warning("override log %s not imported: %s", old, exc)
            return
        left = rejected[~rejected["reason"].str.startswith("already recorded")]
        if len(left):
            log.warning(
                "override log %s: %d rows not imported (first: %s)",
                old,
                len(left),
                left["reason"].iloc[0],
            )
            return
        old.rename(old.with_suffix(".imported.csv"))
        log.info("override log %s: %d overrides imported into the history", old, n)

    # ------------------------------------------------------------------ campaigns tab
    def _campaigns_tab(self) -> w.Widget:
        self.campaigns_table = w.HTML()
        refresh = w.Button(description="Refresh", layout=w.Layout(width="120px"))
        refresh.on_click(lambda _: self.refresh_campaigns())
        self.refresh_campaigns()
        return w.VBox(
            [
                w.HTML(
                    "<p>What the recorded contacts and their results say: per action, customers "
                    "treated and held out as control, the share retained in each, the lift with "
                    "its 95 % interval and the net value per treated customer. Contacts recorded "
                    "on a customer's card count as treated, except overridden ones (listed "
                    f"apart). History: "
                    f"<code>{escape(self.history_path)}</code>.</p>"
                ),
                refresh,
                self.campaigns_table,
            ]
        )

    def _report_campaigns(self, text: str) -> None:
        self.campaigns_table.value = message(text)

    def refresh_campaigns(self) -> None:
        """The impact report of `nba.campaigns` over the history's recorded outcomes (the
        engine's decisions: overridden ones are left out and said so), and the overrides. A
        history that cannot be read is one sentence on this tab; the rest of the app works."""
        _guard(self._report_campaigns)(self._refresh_campaigns)()

    def _refresh_campaigns(self) -> None:
        from nba.campaigns.history import History
        from nba.campaigns.impact import impact_table

        if not self.history_path.is_file():
            self.campaigns_table.value = message(
                "No outcomes recorded yet: record a contact on a customer's card, or "
                "`nba campaign record` a campaign's results.",
                "info",
            )
            return
        with History(self.history_path) as history:
            interactions = history.interactions_with_overrides()
            overrides = history.overrides()
        table = impact_table(interactions) if len(interactions) else pd.DataFrame()
        names = self._action_names()
        overridden = int(interactions["overridden"].sum()) if len(interactions) else 0
        parts = []
        if table.empty:
            parts.append(
                message(
                    "No outcomes of the engine's decisions recorded yet (contacts without a "
                    "known result, and overridden ones, do not count).",
                    "info",
                )
            )
        else:

            def pct(v: float) -> str:
                return "—" if pd.isna(v) else f"{v:.1%}"

            shown = pd.DataFrame(
                {
                    "action": table["action"].map(lambda a: names.get(a, a)),
                    "treated": table["treated"].astype(int),
                    "control": table["control"].astype(int),
                    "retained (treated)": table["retention_treated"].map(pct),
                    "retained (control)": table["retention_control"].map(pct),
                    "lift (95 % interval)": [
                        "— (needs a control group)"
                        if pd.isna(v)
                        else f"{v * 100:+.1f} pts ({lo * 100:+.1f} to {hi * 100:+.1f})"
                        for v, lo, hi in zip(
                            table["lift"], table["lift_low"], table["lift_high"], strict=True
                        )
                    ],
                    "net value per treated customer": table["net_value"].map(
                        lambda v: "—" if pd.isna(v) else money(v)
                    ),
                }
            )
            parts.append(
                f"<p class='nba-impact'>{len(interactions):,} outcomes recorded, "
                f"{len(interactions) - overridden:,} of them of the engine's own decisions "
                "(the table counts those).</p>" + table_html(shown)
            )
        if len(overrides):
            by = overrides.assign(
                recommended=overrides["recommended"].map(lambda a: names.get(a, a)),
                action=overrides["action"].map(lambda a: names.get(a, a)),
            ).iloc[::-1]
            shown = pd.DataFrame(
                {
                    "customer": by[schema.ID],
                    "recommended": by["recommended"],
                    "chosen instead": by["action"],
                    "why": by["override_reason"],
                    "recorded by": by["recorded_by"],
                    "when (UTC)": by["recorded"].str.replace("T", " ").str.slice(0, 16),
                }
            )
            parts.append(
                f"<h4 class='nba-overrides'>Overrides ({len(overrides):,}, latest first)</h4>"
                "<p>A person chose another action than the engine recommended. Overridden "
                "contacts are not the engine's decisions: they are left out of the impact "
                "table above, and the engine does not learn from them (<code>nba campaign "
                f"learn</code>). With a known result so far: {overridden:,}.</p>"
                + table_html(shown, max_height="260px")
            )
        self.campaigns_table.value = "".join(parts)

    # ------------------------------------------------------------------ worklist tab
    def _action_names(self) -> dict[str, str]:
        return {a: self.catalogue.action(a).name for a in self.catalogue.ids}

    def _worklist_tab(self) -> w.Widget:
        names = self._action_names()
        style = {"description_width": "150px"}
        wide = w.Layout(width="340px")
        self.wl_band = w.Dropdown(
            description="Risk band",
            options=[("all", ""), ("high", "high"), ("medium", "medium"), ("low", "low")],
            value="high",
            style=style,
            layout=wide,
        )
        segments = self.bundle.segmenter.names_
        self.wl_segment = w.Dropdown(
            description="Segment",
            options=[("all", -1), *[(n, i) for i, n in enumerate(segments)]],
            style=style,
            layout=wide,
        )
        self.wl_action = w.Dropdown(
            description="Best action",
            options=[("all", ""), *[(names[a], a) for a in self.catalogue.ids]],
            style=style,
            layout=wide,
        )
        self.wl_min_value = w.Text(
            description="Value at risk from ($)", value="0", style=style, layout=wide
        )
        self.wl_sort = w.Dropdown(
            description="Sort by",
            options=[
                ("value at risk", "value_at_risk"),
                ("churn risk", "churn_probability"),
                ("expected net value", "action_1_value"),
            ],
            style=style,
            layout=wide,
        )
        self.wl_budget = w.Text(
            description="Budget ($)", placeholder="no cap", style=style, layout=wide
        )
        self.wl_capacity = w.Text(
            description="Contacts we can make", placeholder="no cap", style=style, layout=wide
        )
        self.wl_button = w.Button(
            description="Build the call list", button_style="primary", layout=w.Layout(width="auto")
        )
        self.wl_button.on_click(lambda _: self.build_worklist())
        self.wl_message = w.HTML()
        self.wl_summary = w.HTML()
        self.wl_table = w.HTML()
        self.wl_download = w.HTML()
        self.worklist: pd.DataFrame | None = None
        return w.VBox(
            [
                w.HTML(
                    f"<p>Choose whom to call among the {len(self.base.scores):,} customers of "
                    "the scored base. With a budget, customers are taken by expected net value "
                    "per $ of their best action until the budget is spent (the engine's budget "
                    "mode); a contact capacity keeps the first customers of the sorted list.</p>"
                ),
                w.HBox(
                    [
                        w.VBox([self.wl_band, self.wl_segment, self.wl_action, self.wl_min_value]),
                        w.VBox([self.wl_sort, self.wl_budget, self.wl_capacity, self.wl_button]),
                    ]
                ),
                self.wl_message,
                self.wl_summary,
                self.wl_download,
                self.wl_table,
            ]
        )

    def _report_worklist(self, text: str) -> None:
        self.wl_message.value = message(text)

    def build_worklist(self) -> None:
        """Filter, sort and cap the scored base into a call list, with totals and a CSV."""
        _guard(self._report_worklist)(self._build_worklist)()

    def _amount(self, widget: w.Text, what: str) -> tuple[float | None, str]:
        raw = str(widget.value).strip().replace(",", "").lstrip("$")
        if not raw:
            return None, ""
        try:
            value = float(raw)
        except ValueError:
            return None, f"{what} must be a number such as 5000; got '{widget.value}'."
        if not np.isfinite(value):
            return None, f"{what} must be a number such as 5000; got '{widget.value}'."
        if value < 0:
            return None, f"{what} must be 0 or more; got '{widget.value}'."
        return value, ""

    def _build_worklist(self) -> None:
        from nba.actions import NO_ACTION, allocate_budget, budget_candidates

        for widget in (self.wl_message, self.wl_summary, self.wl_table, self.wl_download):
            widget.value = ""
        self.worklist = None
        floor, bad_floor = self._amount(self.wl_min_value, "Value at risk from")
        budget, bad_budget = self._amount(self.wl_budget, "Budget")
        capacity, bad_capacity = self._amount(self.wl_capacity, "Contacts we can make")
        if capacity is not None and not float(capacity).is_integer():
            bad_capacity = f"Contacts we can make must be a whole number; got '{capacity:g}'."
        problems = [p for p in (bad_floor, bad_budget, bad_capacity) if p]
        if problems:
            self.wl_message.value = message(" ".join(problems))
            return
        s = self.base.scores
        keep = pd.Series(True, index=s.index)
        if self.wl_band.value:
            keep &= s["risk_band"].astype("str").eq(self.wl_band.value)
        if self.wl_segment.value >= 0:
            keep &= s["segment"].eq(self.wl_segment.value)
        if self.wl_action.value:
            keep &= s["action_1"].astype("str").eq(self.wl_action.value)
        if floor:
            keep &= s["value_at_risk"].ge(floor)
        chosen = s[keep.to_numpy()].sort_values(self.wl_sort.value, ascending=False, kind="stable")
        note = ""
        if budget is not None:
            plan = allocate_budget(budget_candidates(chosen, self.catalogue), budget)
            chosen = chosen.loc[plan["customer"].to_numpy()]
            note = f" Budget ${budget:,.0f}: {len(chosen):,} customers fit, by value per $."
        elif self.wl_action.value != NO_ACTION:
            chosen = chosen[chosen["action_1"].astype("str").ne(NO_ACTION)]
        if capacity is not None:
            chosen = chosen.head(int(capacity))
            note += f" Capacity {int(capacity):,} contacts."
        self.worklist = chosen
        names = self._action_names()
        costs = {a.id: a.cost for a in self.catalogue.actions}
        totals = campaign_figures(chosen, names, costs)
        self.wl_summary.value = (
            f"<p class='nba-worklist-summary'><b>{len(chosen):,} customers to contact.</b> "
            f"Value at risk {money(totals['value_at_risk'])} · campaign cost "
            f"{money(totals['campaign_cost'])} · expected net value "
            f"{money(totals['expected_net_value'])}.{escape(note)}</p>"
        )
        if len(chosen):
            self.wl_table.value = batch_table_html(chosen.head(SHOWN_ROWS), names)
            listed = chosen.assign(
                action_1_name=chosen["action_1"].astype("str").map(names),
                action_1_cost=chosen["action_1"].astype("str").map(costs),
            )
            columns = [
                c
                for c in (
                    schema.ID,
                    "churn_probability",
                    "risk_band",
                    "segment_name",
                    "action_1",
                    "action_1_name",
                    "action_1_cost",
                    "action_1_value",
                    "value_at_risk",
                    "action_1_reason",
                )
                if c in listed.columns
            ]
            self.wl_download.value = download_link(
                rounded_scores(listed[columns]), "call-list.csv", "nba-worklist-download"
            )

    # ------------------------------------------------------------------ batch tab
    def _batch_tab(self) -> w.Widget:
        # FileUpload's own label always ends in a file count ("Upload CSV (0)"); the page
        # shows the button's title instead (UPLOAD_CSS), which is the same business wording
        self.upload = w.FileUpload(
            accept=".csv",
            multiple=False,
            description=UPLOAD_LABEL,
            tooltip=UPLOAD_LABEL,
            icon="upload",
            button_style="primary",
            layout=w.Layout(width="auto"),
        )
        self.upload.add_class("nba-upload")
        self.upload.observe(self._on_upload, names="value")
        self.upload_message = w.HTML()
        self.batch_summary = w.HTML()
        self.batch_chart = w.Image(format="png", layout=w.Layout(display="none", max_width="900px"))
        self.batch_table = w.HTML()
        self.rejects_table = w.HTML()
        self.download = w.HTML()
        limit = UPLOAD_LIMIT / 2**20
        return w.VBox(
            [
                w.HTML(
                    f"<p>Upload a CSV with the BankChurners columns (any order; "
                    f"<code>Attrition_Flag</code>, the Naive_Bayes columns and extra columns "
                    f"are ignored), up to {limit:.0f} MB (about "
                    f"{UPLOAD_LIMIT // 160:,} customers). For bigger files use "
                    "<code>nba score</code>.</p>"
                ),
                w.HTML(UPLOAD_CSS),
                w.HBox([self.upload, self.upload_message]),
                self.batch_summary,
                self.batch_chart,
                self.download,
                self.batch_table,
                self.rejects_table,
            ]
        )

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        item = files[0]
        self.score_upload(str(item["name"]), bytes(item["content"]))
        self.upload.value = ()  # so that uploading the same file again scores it again

    def _report_upload(self, text: str) -> None:
        self.upload_message.value = message(text)

    def score_upload(self, name: str, content: bytes) -> None:
        """Score an uploaded CSV: summary, scored table, rejected rows with reasons, download."""
        _guard(self._report_upload)(self._score_upload)(name, content)

    def _score_upload(self, name: str, content: bytes) -> None:
        from nba.data.io import read_table
        from nba.data.validate import validate

        for widget in (
            self.upload_message,
            self.batch_summary,
            self.batch_table,
            self.rejects_table,
            self.download,
        ):
            widget.value = ""
        self.batch_scores = self.batch_rejects = None
        self.batch_chart.layout.display = "none"
        safe = Path(name).name or "upload.csv"
        if len(content) > UPLOAD_LIMIT:
            self.upload_message.value = message(
                f"{safe} is {len(content) / 2**20:.1f} MB; the app takes CSV files up to "
                f"{UPLOAD_LIMIT / 2**20:.0f} MB. Score bigger files with `nba score`."
            )
            return
        if not safe.lower().endswith(".csv"):
            self.upload_message.value = message(f"{safe} is not a .csv file.")
            return
        if content[:4] in (b"PK\x03\x04", b"\xd0\xcf\x11\xe0"):  # zip (xlsx) or old .xls
            self.upload_message.value = message(
                f"{safe} is an Excel workbook, not a CSV: in Excel, Save As → CSV "
                "(comma delimited), then upload that file."
            )
            return
        with tempfile.TemporaryDirectory(prefix="nba-upload-") as folder:
            path = Path(folder) / safe
            path.write_bytes(content)
            try:
                checked = validate(read_table(path))
            except NbaError as exc:  # name the user's file, not the temporary copy
                raise type(exc)(str(exc).replace(str(path), safe)) from None
        rejects = checked.rejects
        scores = self.bundle.score(checked.clean) if len(checked.clean) else None
        scored = 0 if scores is None else len(scores)
        assert scored + len(rejects) == checked.n_in  # rows in = scored + rejected
        self.batch_scores, self.batch_rejects = scores, rejects
        summary = f"{checked.n_in:,} rows in {safe}: {scored:,} scored, {len(rejects):,} rejected."
        self.batch_summary.value = (
            f"<p class='nba-batch-summary'><b>{escape(summary)}</b></p>"
            if scored
            else message(summary + " Nothing could be scored: see the reasons below.")
        )
        if len(rejects):  # why, by rule broken (every row's own reasons are in the table)
            shown_problems = checked.problems[:REASONS_SHOWN]
            more = len(checked.problems) - len(shown_problems)
            self.batch_summary.value += (
                "<ul class='nba-reject-reasons' style='margin:0'>"
                + "".join(f"<li>{escape(p)}</li>" for p in shown_problems)
                + (
                    f"<li>… and {more} more kinds of problem: each rejected row's reasons are "
                    "in the table below and its download.</li>"
                    if more > 0
                    else ""
                )
                + "</ul>"
            )
        if scores is not None:
            names = self._action_names()
            totals = campaign_figures(scores, names, {a.id: a.cost for a in self.catalogue.actions})
            self.batch_summary.value += (
                f"<p class='nba-batch-totals'>Value at risk {money(totals['value_at_risk'])} · "
                f"contacting the {_customers(totals['contacted'])} with an action costs "
                f"{money(totals['campaign_cost'])} · expected net value "
                f"{money(totals['expected_net_value'])}</p>"
            )
            self.batch_chart.value = png(summary_chart(scores, names))
            self.batch_chart.layout.display = ""
            shown = scores.head(SHOWN_ROWS)
            more = f" (first {SHOWN_ROWS} of {scored:,})" if scored > SHOWN_ROWS else ""
            names = {a: self.catalogue.action(a).name for a in self.catalogue.ids}
            self.batch_table.value = f"<h4>Scored customers{more}</h4>" + batch_table_html(
                shown, names
            )
            self.download.value = download_link(
                rounded_scores(scores), f"{Path(safe).stem}.scores.csv", "nba-download"
            )
        if len(rejects):
            first = [c for c in ("row", schema.ID, "reason") if c in rejects.columns]
            rest = [c for c in rejects.columns if c not in first and c not in schema.LEAKAGE]
            self.rejects_table.value = (
                f"<h4 class='nba-rejects'>Rejected rows ({len(rejects):,}): not scored, with "
                "the reason</h4>"
                + download_link(
                    rejects[first + rest], f"{Path(safe).stem}.rejects.csv", "nba-download-rejects"
                )
                + table_html(rejects[first + rest], max_height="260px")
            )

    # ------------------------------------------------------------------ segments tab
    def _segments_tab(self) -> w.Widget:
        seg = self.bundle.segmenter
        table = seg.profiles_[["segment", "name", "size", "share", "churn_rate"]].copy()
        counts = self.base.scores.groupby("segment").agg(
            base_customers=(schema.ID, "size"), mean_churn_probability=("churn_probability", "mean")
        )
        table = table.join(counts, on="segment")
        shown = pd.DataFrame(
            {
                "segment": table["segment"],
                "name": table["name"],
                "customers (training)": table["size"].map("{:,}".format),
                "share": table["share"].map("{:.1%}".format),
                "churn rate (training)": table["churn_rate"].map("{:.1%}".format),
                "customers (scored base)": table["base_customers"]
                .fillna(0)
                .astype(int)
                .map("{:,}".format),
                "mean churn probability (scored base)": table["mean_churn_probability"].map(
                    "{:.1%}".format
                ),
            }
        )
        self.segments_table = w.HTML(table_html(shown))
        panels = []
        for s in table["segment"]:
            text = w.HTML(f"<p>{escape(seg.descriptions_[int(s)])}</p>")
            panels.append(w.VBox([text, w.Image(value=self.chart(int(s)), format="png")]))
        accordion = w.Accordion(children=panels)
        for i, name in enumerate(table["name"]):
            accordion.set_title(i, f"{name}")
        return w.VBox(
            [
                w.HTML(
                    f"<p>{len(table)} segments from spend, transactions and revolving "
                    "behaviour; churn rates are those of the customers the segmentation learnt "
                    "from.</p>"
                ),
                self.segments_table,
                w.HTML("<b>Profiles</b> (open a segment)"),
                accordion,
            ]
        )

    # ------------------------------------------------------------------ model tab
    def _model_tab(self) -> w.Widget:
        import mistune  # markdown → HTML; light (nbconvert's import costs seconds)

        from nba.report import model_card

        card = model_card(
            self.bundle.metadata, self.bundle.segmenter.profiles_, self.bundle.threshold
        )
        settings = self.bundle.run_settings
        assumptions = pd.DataFrame(
            [
                ("interchange rate (share of spend)", f"{settings.interchange_rate:.2%}"),
                ("interest margin on revolving balances", f"{settings.interest_margin:.1%}"),
                (
                    "annual fee Blue / Silver / Gold / Platinum",
                    (
                        f"${settings.annual_fee_blue:,.0f} / ${settings.annual_fee_silver:,.0f} / "
                        f"${settings.annual_fee_gold:,.0f} / ${settings.annual_fee_platinum:,.0f}"
                    ),
                ),
                ("yearly servicing cost", f"${settings.servicing_cost:,.0f}"),
                ("years of value a saved customer brings", f"{settings.value_horizon_years:g}"),
            ],
            columns=["value assumption", "value"],
        )
        self.model_card = w.HTML(
            f"<div class='nba-model-card'>{mistune.create_markdown(escape=True, plugins=['table'])(card)}</div>"
        )
        actions = self.catalogue.table()[["id", "name", "channel", "cost", "save_rate_default"]]
        return w.VBox(
            [
                self.model_card,
                w.HTML("<h3>Value assumptions</h3>" + table_html(assumptions)),
                w.HTML("<h3>Action catalogue</h3>" + table_html(actions)),
            ]
        )


def field_problems(issues: Iterable[Issue]) -> dict[str, str]:
    """The validator's issues with a record, by form field (from each issue's column): the
    derived columns' problems (balance above the limit) go beside the revolving balance, the
    field a person sets, as one sentence; issues of columns that are not form fields go under
    the form (key ""). Each field's messages are joined in the validator's order."""
    out: dict[str, str] = {}
    for issue in issues:
        name, sentence = issue.column, issue.message
        if name in LABELS and name not in DERIVED:  # the form's name, not the column's
            sentence = sentence.replace(name, LABELS[name], 1)
        if name in DERIVED:
            name = "Total_Revolving_Bal"
            sentence = "Revolving balance must be between 0 and the credit limit."
            if out.get(name, "").endswith(sentence):
                continue
        elif name not in LABELS:
            name = ""  # not a form field: shown under the form
        out[name] = f"{out[name]} {sentence}" if name in out else sentence
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _customers(n: float) -> str:
    """ "1 customer", "2,345 customers"."""
    return f"{n:,.0f} customer" + ("" if n == 1 else "s")


def _user_name() -> str:
    """Who is using the app, as far as the server knows (JupyterHub's user, else the account
    the server runs as): the default of "Recorded by", which the person can correct."""
    import getpass

    try:
        return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()
    except (KeyError, OSError):  # no user name for this process's uid
        return ""


def build_app(
    bundle: str | Path | Any | None = None,
    data: str | Path | None = None,
    history: str | Path | None = None,
) -> w.Widget:
    """The app for Voila or a notebook: the bundle at `bundle` (default `NBA_BUNDLE`, else
    models/nba.bundle) and the customers at `data` (default: the file the bundle learnt from,
    else data discovery). A missing or unreadable bundle gives a page that says how to build
    one, not a traceback."""
    import time

    from nba.bundle import load_bundle
    from nba.data.io import sha256

    start = time.perf_counter()
    try:
        if hasattr(bundle, "recommend"):
            loaded, cache = bundle, None
        else:
            path = Path(bundle or bundle_path())
            loaded = load_bundle(path)
            cache = config.cache_dir() / "app-charts" / sha256(path)[:16]
        app = App(loaded, load_base(loaded, data), cache, history)
        if os.environ.get("VOILA_APP_PORT"):  # inside Voila: say so in the server's log
            print(f"{READY_LINE} in {time.perf_counter() - start:.1f} s", file=sys.__stderr__)
        return app
    except NbaError as exc:
        return w.HTML(
            "<div class='nba-banner' style='background:#c62828;color:white;padding:10px'>"
            f"<b>The app cannot start:</b> {escape(exc)}<br>Run <code>make run</code> (it trains "
            "a bundle through the pipeline) or <code>nba train --out models/nba.bundle</code>."
            "</div>"
        )
