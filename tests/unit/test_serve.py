"""The decision service's parts without a server: request parsing, the customers frame the
validator checks, the sticky challenger split, the history writer (on a real history file)
and the generated customer schema."""

from __future__ import annotations

import json
import queue
import threading
import time

import numpy as np
import pandas as pd
import pytest

from nba.campaigns.history import History, HistoryError
from nba.data import schema, synth
from nba.serve.app import check_responses
from nba.serve.decisions import (
    MAX_CUSTOMERS,
    RequestError,
    challenger_mask,
    check_batch,
    check_customers,
    customers_frame,
    parse_body,
)
from nba.serve.openapi import customer_schema
from nba.serve.writer import HistoryWriter


def _customers(n: int, seed: int = 3) -> list[dict]:
    df = synth.generate(n, seed)[list(schema.REQUIRED)]
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in df.to_dict("records")
    ]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 400, "empty"),
        (b"   ", 400, "empty"),
        (b"{", 400, "not valid JSON"),
        (b"\xff", 400, "not UTF-8"),
        (b"[1, 2]", 400, "not a list"),
        (b"7", 400, "not a number"),
        (b'{"other": []}', 400, 'no "customers"'),
        (b'{"customers": null}', 400, "not null"),
        (b'{"customers": {}}', 400, "not an object"),
        (b'{"customers": []}', 400, "empty"),
        (json.dumps({"customers": [{}] * (MAX_CUSTOMERS + 1)}).encode(), 413, "1,000"),
    ],
)
def test_a_body_that_is_not_a_list_of_customers_is_one_sentence(body, status, words):
    with pytest.raises(RequestError) as err:
        parse_body(body, "customers")
    assert err.value.status == status
    assert words in err.value.detail and err.value.detail.endswith(".")


def test_non_standard_json_numbers_become_values_the_validator_rejects():
    customers = parse_body(b'{"customers": [{"a": NaN, "b": -Infinity, "c": 1e400}]}', "customers")
    assert np.isnan(customers[0]["a"]) and customers[0]["b"] == -np.inf
    assert customers[0]["c"] == np.inf


def test_the_frame_has_one_row_per_customer_in_order_and_only_the_record_fields():
    sent = _customers(3)
    sent[1]["extra"] = "ignored"
    frame, not_objects = customers_frame(sent)
    assert list(frame.columns) == list(schema.REQUIRED) and not not_objects
    assert frame[schema.ID].tolist() == [c[schema.ID] for c in sent]
    assert frame["Gender"].dtype == "str" and frame["Customer_Age"].dtype == np.float64
    sent.insert(2, "not a customer")
    frame, not_objects = customers_frame(sent)
    assert frame[schema.ID].tolist()[2] is None and len(frame) == 4
    assert list(not_objects) == [2] and "a string" in not_objects[2]


def test_checked_customers_in_equal_clean_plus_rejected():
    sent = _customers(6)
    sent[1]["Customer_Age"] = "old"
    sent[3] = [1, 2]
    sent[4]["Total_Trans_Amt"] = 10**400  # beyond any float: out of range, not a crash
    sent[5]["Gender"] = {"x": [1]}
    checked = check_customers(sent)
    assert checked.positions.tolist() == [0, 2]
    reasons = {r["index"]: r["reason"] for r in checked.rejected}
    assert set(reasons) == {1, 3, 4, 5}
    assert "Customer_Age 'old' is not a number" in reasons[1]
    assert "not a JSON object" in reasons[3]
    assert "Total_Trans_Amt" in reasons[4] and "maximum" in reasons[4]
    assert "Gender" in reasons[5]
    assert len(checked.clean) + len(checked.rejected) == len(sent)


def test_the_challenger_split_is_sticky_and_near_its_share():
    ids = np.arange(700_000_000, 700_020_000)
    mask = challenger_mask(ids, 0.1, 42)
    assert 0.09 < mask.mean() < 0.11  # 20,000 draws: sd 0.002
    # the same customer, the same side, whatever the order or company
    shuffled = np.random.default_rng(0).permutation(ids)
    assert (challenger_mask(shuffled, 0.1, 42) == mask[shuffled - ids[0]]).all()
    assert (challenger_mask(ids[:5], 0.1, 42) == mask[:5]).all()
    # another seed, another split; a larger share keeps everyone the smaller one had
    assert (challenger_mask(ids, 0.1, 7) != mask).any()
    assert (challenger_mask(ids, 0.3, 42) | ~mask).all()
    assert not challenger_mask(ids, 0.0, 42).any()


def _history_columns(ids: list[str], clients: list[int]) -> dict[str, list]:
    n = len(ids)
    return {
        "decision_id": ids,
        schema.ID: clients,
        "campaign_id": ["api"] * n,
        "channel": ["api"] * n,
        "group": ["treatment"] * n,
        "action": ["no_action"] * n,
        "propensity": [1.0] * n,
        "churn_probability": [0.1] * n,
        "segment": [1] * n,
        "expected_value": [0.0] * n,
        "bundle_id": ["b"] * n,
    }


def _customer_columns(customers: list[dict]) -> dict[str, list]:
    return {c: [x[c] for x in customers] for c in schema.REQUIRED[1:]}


def test_the_writer_batches_decisions_and_writes_them_before_later_responses(tmp_path):
    path = tmp_path / "h.sqlite"
    calls: list[int] = []

    class Counting(History):
        def record_decisions(self, decisions, customers=None):
            calls.append(len(decisions))
            return super().record_decisions(decisions, customers)

    writer = HistoryWriter(lambda: Counting(path), linger=0.5).start()
    customers = _customers(30)
    for k in range(10):  # ten requests of three decisions, queued at once
        part = customers[3 * k : 3 * k + 3]
        ids = [f"d{3 * k + j}" for j in range(3)]
        writer.add_decisions(
            _history_columns(ids, [c[schema.ID] for c in part]), _customer_columns(part)
        )
    # responses wait for every decision queued before them, then are committed
    done = writer.record_responses(
        pd.DataFrame(
            {"decision_id": ["d0", "d29", "nope"], "responded": [1, 0, 1], "retained": [1, 1, 0]}
        )
    )
    recorded, rejected = done.result(timeout=60)
    assert recorded == 2 and rejected["decision_id"].tolist() == ["nope"]
    assert sum(calls) == 30 and len(calls) < 10  # batched, not one write per request
    writer.stop()
    with History(path) as h:
        joined = h.interactions(with_customers=True)
        assert h.counts()["decisions"] == 30 and h.counts()["customers"] == 30
    assert sorted(joined["decision_id"]) == ["d0", "d29"]
    assert (
        joined.set_index("decision_id").loc["d29", "Customer_Age"] == customers[29]["Customer_Age"]
    )


def test_stop_flushes_what_is_queued(tmp_path):
    path = tmp_path / "h.sqlite"
    writer = HistoryWriter(lambda: History(path), linger=30).start()  # would wait 30 s
    writer.add_decisions(_history_columns(["a", "b"], [1, 2]), None)
    writer.stop()
    assert writer.written == 2 and writer.lost == 0
    with History(path) as h:
        assert h.decisions()["decision_id"].tolist() == ["a", "b"]


def test_a_history_that_cannot_open_stops_the_start(tmp_path):
    bad = tmp_path / "not-a-db.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError):
        HistoryWriter(lambda: History(bad)).start()


def test_a_failing_write_is_retried_then_counted_lost(tmp_path):
    path = tmp_path / "h.sqlite"
    lost: list[int] = []
    writer = HistoryWriter(lambda: History(path), linger=0.01, retries=2)
    writer.on_lost = lost.append
    writer.start()
    bad = _history_columns(["x", "x"], [1, 2])  # a duplicate id: the history refuses it
    writer.add_decisions(bad, None)
    writer.add_decisions(_history_columns(["y"], [3]), None)
    writer.stop()
    # the bad request's decisions are lost (and counted), the good one's are written
    assert writer.lost == 2 and lost == [2] and writer.written == 1
    with History(path) as h:
        assert h.decisions()["decision_id"].tolist() == ["y"]


def test_responses_are_checked_for_shape_before_the_history():
    frame, rejected = check_responses(
        [
            {"decision_id": "a", "responded": 1, "retained": 0},
            {"decision_id": "b", "responded": True, "retained": False},
            {"decision_id": " ", "responded": 1, "retained": 1},
            {"decision_id": "c", "responded": 1.0, "retained": 1},
            {"decision_id": "d", "responded": "1", "retained": 1},
            {"decision_id": "e", "responded": 1},
            [],
            {"decision_id": "f", "responded": json.loads("[" * 600 + "]" * 600), "retained": 1},
        ]
    )
    assert frame["decision_id"].tolist() == ["a", "b"]
    assert frame["position"].tolist() == [0, 1]
    assert frame["responded"].tolist() == [1, 1] and frame["retained"].tolist() == [0, 0]
    reasons = {r["index"]: r["reason"] for r in rejected}
    assert set(reasons) == {2, 3, 4, 5, 6, 7}
    assert "decision_id" in reasons[2] and "responded 1.0" in reasons[3]
    assert "responded '1'" in reasons[4] and "retained null" in reasons[5]
    assert "responded" in reasons[7]


def test_the_customer_schema_is_the_projects_schema():
    spec = customer_schema()
    assert spec["required"] == list(schema.REQUIRED)
    assert set(spec["properties"]) == set(schema.REQUIRED)
    for name, allowed in schema.CATEGORIES.items():
        assert spec["properties"][name]["enum"] == list(allowed)
    for name in schema.INTEGERS:
        assert spec["properties"][name]["type"] == "integer"
    for name in schema.FLOATS:
        assert spec["properties"][name]["type"] == "number"
    assert spec["properties"]["Customer_Age"]["maximum"] == schema.BOUNDS["Customer_Age"][1]


def test_the_writer_is_one_thread(tmp_path):
    """SQLite connections belong to the thread that made them: the history is opened, written
    and closed in the writer's own thread."""
    seen: set[int] = set()

    class Watching(History):
        def __init__(self, *a, **k):
            seen.add(threading.get_ident())
            super().__init__(*a, **k)

        def record_decisions(self, *a, **k):
            seen.add(threading.get_ident())
            return super().record_decisions(*a, **k)

        def close(self):
            seen.add(threading.get_ident())
            super().close()

    writer = HistoryWriter(lambda: Watching(tmp_path / "h.sqlite"), linger=0.01).start()
    writer.add_decisions(_history_columns(["a"], [1]), None)
    writer.stop()
    assert len(seen) == 1 and threading.get_ident() not in seen


def test_checking_requests_together_equals_checking_each_alone():
    good = _customers(12, seed=9)
    a = [dict(c) for c in good[:5]]
    a[1]["Customer_Age"] = "old"
    a[3] = "not a customer"
    b = [dict(c) for c in good[5:7]]
    b[0]["Gender"] = "X"
    b[1]["Gender"] = "X"  # every customer of a request rejected
    c = [dict(c) for c in good[7:12]]
    c[4]["Avg_Utilization_Ratio"] = 0.99  # breaks the identity
    plain = [dict(x) if isinstance(x, dict) else dict(good[3]) for x in a]
    plain[3]["Credit_Limit"] = None
    # together (distinct numeric ids: one validator call), alone, and the fallbacks: a
    # request holding a non-object, and two requests sharing an id
    for requests in ([plain, b, c], [c], [b], [a, b, c], [plain, [dict(good[0])]]):
        clean, parts = check_batch(requests)
        assert len(parts) == len(requests)
        for request, part in zip(requests, parts, strict=True):
            alone = check_customers(request)
            assert part.rejected == alone.rejected
            assert part.positions.tolist() == alone.positions.tolist()
            lo, hi = part.rows
            assert clean.iloc[lo:hi].reset_index(drop=True).equals(alone.clean)


def test_a_writer_far_behind_refuses_more_instead_of_growing(tmp_path):
    release = threading.Event()

    class Slow(History):
        def record_decisions(self, *a, **k):
            release.wait(30)
            return super().record_decisions(*a, **k)

    writer = HistoryWriter(lambda: Slow(tmp_path / "h.sqlite"), linger=0.0, max_rows=5).start()
    writer.add_decisions(_history_columns(["a", "b", "c"], [1, 2, 3]), None)
    time.sleep(0.2)  # the writer took them and is stuck writing
    writer.add_decisions(_history_columns(["d", "e"], [4, 5]), None)
    with pytest.raises(queue.Full):
        writer.add_decisions(_history_columns(["f"], [6]), None)
    assert writer.queued == 5
    release.set()
    writer.stop()
    assert writer.written == 5 and writer.queued == 0


def test_the_frame_by_fields_equals_the_frame_customer_by_customer(monkeypatch):
    """Every customer has every field: one map per field (the fast path); the same frame as
    reading customer by customer (the path for a customer missing a field), whatever the
    values (text in a number field, null, a boolean, a nested value, a huge integer)."""
    import operator

    from nba.serve import decisions

    sent = _customers(6)
    sent[1]["Customer_Age"] = "forty"
    sent[2]["Credit_Limit"] = None
    sent[3]["Total_Trans_Ct"] = True
    sent[4]["Gender"] = {"nested": [1]}
    sent[5]["Months_on_book"] = 2**70
    fast, _ = customers_frame(sent)
    monkeypatch.setattr(decisions, "_GETTERS", [operator.itemgetter("not a field")])
    slow, _ = customers_frame(sent)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert fast["Customer_Age"].tolist()[1] == "forty"  # the validator quotes it
