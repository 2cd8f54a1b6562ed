"""The interaction history: schema, transactions, idempotent outcomes, two writers at once."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nba.campaigns.history import (
    CUSTOMER_COLUMNS,
    LEGACY_RECORDED_BY,
    OVERRIDE_COLUMNS,
    SCHEMA_VERSION,
    History,
    HistoryError,
    default_history_path,
)

from factories import make_customers


def _decisions(n: int, campaign: str = "c1", start: int = 0) -> pd.DataFrame:
    ids = np.arange(start, start + n)
    return pd.DataFrame(
        {
            "decision_id": [f"{campaign}:{i}" for i in ids],
            "CLIENTNUM": 1000 + ids,
            "campaign_id": campaign,
            "channel": "batch",
            "group": np.where(ids % 10 == 0, "control", "treatment"),
            "action": "retention_offer",
            "propensity": 0.9,
            "churn_probability": 0.3,
            "segment": "1",
            "expected_value": 12.5,
            "bundle_id": "b0",
        }
    )


def test_default_path_follows_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NBA_HISTORY", str(tmp_path / "h.sqlite"))
    assert default_history_path() == tmp_path / "h.sqlite"
    monkeypatch.delenv("NBA_HISTORY")
    assert default_history_path().name == "history.sqlite"
    assert default_history_path().parent.name == "data"


def test_schema_is_created_versioned_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "h.sqlite"
    with History(path) as h:
        assert h.version == SCHEMA_VERSION
        assert h.counts() == {"campaigns": 0, "decisions": 0, "customers": 0, "outcomes": 0}
        mode = h.conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert path.is_file()
    with History(path) as h:  # reopening migrates nothing and keeps the version
        assert h.version == SCHEMA_VERSION


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    History(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(HistoryError, match="upgrade nba"):
        History(path)


def test_a_file_that_is_not_sqlite_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    path.write_text("not a database at all, just text" * 100)
    with pytest.raises(HistoryError, match="not a usable nba history"):
        History(path)


def test_decisions_and_customers_round_trip(tmp_path: Path) -> None:
    customers = make_customers(20, seed=3)
    d = _decisions(20)
    with History(tmp_path / "h.sqlite") as h:
        assert h.record_decisions(d, customers) == 20
        assert h.campaign_ids() == ["c1"]
        back = h.decisions()
        assert back["decision_id"].tolist() == d["decision_id"].tolist()
        assert back["group"].tolist() == d["group"].tolist()
        assert h.counts()["customers"] == 20
        # interactions need outcomes: none yet
        assert h.interactions().empty


def test_decisions_already_in_the_history_write_nothing(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite") as h:
        h.record_decisions(_decisions(5))
        with pytest.raises(HistoryError, match="already in the history"):
            h.record_decisions(_decisions(10))  # 5 new, 5 clashing: all or nothing
        assert h.counts()["decisions"] == 5


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [("propensity", 0.0, "outside"), ("group", "holdout", "group"), ("channel", "sms", "channel")],
)
def test_bad_decisions_are_refused(tmp_path: Path, column: str, value: object, match: str) -> None:
    d = _decisions(4)
    d.loc[2, column] = value
    with History(tmp_path / "h.sqlite") as h:
        with pytest.raises(HistoryError, match=match):
            h.record_decisions(d)
        assert h.counts()["decisions"] == 0


def test_a_failed_transaction_leaves_the_history_as_before(tmp_path: Path) -> None:
    customers = make_customers(6, seed=1)
    with History(tmp_path / "h.sqlite") as h:
        h.record_decisions(_decisions(6), customers)
        before = h.counts()
        broken = customers.copy()
        broken = broken.drop(columns=[CUSTOMER_COLUMNS[3]])  # fails before any write
        with pytest.raises(HistoryError):
            h.record_decisions(_decisions(6, "c2"), broken)
        # a failure in the middle of the transaction: the campaign row and the customers'
        # records went in, then a decision fails; all of it must roll back
        h.conn.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON decisions WHEN NEW.CLIENTNUM = 1004 "
            "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )
        with pytest.raises(HistoryError, match="disk on fire"):
            h.record_decisions(_decisions(6, "c3"), customers)
        assert h.counts() == before
        assert h.campaign_ids() == ["c1"]


def test_writes_that_belong_together_commit_together_or_not_at_all(tmp_path: Path) -> None:
    """A decision, its override and its response in `transaction()`: an error after the
    decision was written leaves none of them; a refused write inside (its own savepoint)
    rolls back alone when the caller goes on; all of them land on success."""
    with History(tmp_path / "h.sqlite") as h:
        with pytest.raises(RuntimeError, match="after the decision"), h.transaction():
            h.record_decisions(_decisions(2))
            assert h.counts()["decisions"] == 2  # visible inside the transaction
            raise RuntimeError("something failed after the decision was written")
        assert h.counts()["decisions"] == 0
        with h.transaction():
            h.record_decisions(_decisions(2))
            with pytest.raises(HistoryError):  # a repeated campaign: refused, rolled back alone
                h.record_decisions(_decisions(2))
            h.record_overrides(
                pd.DataFrame(
                    {
                        "decision_id": ["c1:1"],
                        "recommended": ["no_action"],
                        "override_reason": ["customer asked for it"],
                    }
                )
            )
            h.record_responses(
                pd.DataFrame({"decision_id": ["c1:1"], "responded": [1], "retained": [1]})
            )
        counts = h.counts()
        assert counts["decisions"] == 2 and len(h.overrides()) == 1
        assert h.interactions()["decision_id"].tolist() == ["c1:1"]
    with History(tmp_path / "h.sqlite") as again:  # committed: another connection sees it
        assert again.counts()["decisions"] == 2 and len(again.overrides()) == 1


def test_responses_are_validated_and_idempotent(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite") as h:
        h.record_decisions(_decisions(5))
        responses = pd.DataFrame(
            {
                "decision_id": ["c1:0", "c1:1", "c1:1", "nope", "c1:2", "c1:3", ""],
                "responded": [1, 0, 0, 1, 2, "1", 0],
                "retained": [1, 1, 1, 1, 1, "0", 1],
            }
        )
        recorded, rejected = h.record_responses(responses)
        assert recorded == 3  # c1:0, c1:1 (first), c1:3 (text "1"/"0" are fine)
        assert recorded + len(rejected) == len(responses)
        reasons = dict(zip(rejected.index, rejected["reason"], strict=True))
        assert "duplicate" in reasons[2]
        assert "unknown decision_id" in reasons[3]
        assert "responded must be 0 or 1" in reasons[4]
        assert "empty" in reasons[6]
        # the same responses again: nothing added, and every recorded one says so
        again, rejected2 = h.record_responses(responses.iloc[[0, 1, 5]])
        assert again == 0
        assert rejected2["reason"].str.contains("already recorded").all()
        assert h.counts()["outcomes"] == 3
        # a different outcome for a recorded decision never overwrites it
        changed = pd.DataFrame({"decision_id": ["c1:0"], "responded": [0], "retained": [0]})
        n, rej = h.record_responses(changed)
        assert n == 0 and "never overwritten" in rej["reason"].iloc[0]
        got = h.interactions().set_index("decision_id")
        assert got.loc["c1:0", "retained"] == 1


def test_campaign_outcomes_join_on_campaign_and_customer(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite") as h:
        h.record_decisions(_decisions(5), make_customers(5, seed=2))
        outcomes = pd.DataFrame(
            {
                "CLIENTNUM": [1000, 1001, 1001, 9999, 1002, 1003],
                "campaign_id": ["c1", "c1", "c1", "c1", "zz", "c1"],
                "responded": [1, 0, 0, 0, 0, 0],
                "retained": [1, 0, 0, 1, 1, 5],
            }
        )
        recorded, rejected = h.record_outcomes(outcomes)
        assert recorded == 2
        assert recorded + len(rejected) == len(outcomes)
        reasons = rejected["reason"].tolist()
        assert any("duplicate" in r for r in reasons)
        assert any("never planned" in r for r in reasons)
        assert any("unknown campaign_id" in r for r in reasons)
        assert any("retained must be 0 or 1" in r for r in reasons)
        got = h.interactions(with_customers=True)
        assert got["CLIENTNUM"].tolist() == [1000, 1001]
        assert got["retained"].tolist() == [1, 0]
        assert got["Customer_Age"].notna().all()
        again, rej = h.record_outcomes(outcomes.iloc[:2])
        assert again == 0 and rej["reason"].str.contains("already recorded").all()


def _writer(path: str, campaign: str, n: int) -> None:
    with History(path) as h:
        for k in range(n):
            h.record_decisions(_decisions(50, campaign, start=k * 50))
            h.record_responses(
                pd.DataFrame(
                    {
                        "decision_id": [f"{campaign}:{k * 50 + i}" for i in range(50)],
                        "responded": 1,
                        "retained": 1,
                    }
                )
            )


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "h.sqlite")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, c, 20)) for c in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    with History(path) as h:
        counts = h.counts()
    assert counts["decisions"] == 2 * 20 * 50
    assert counts["outcomes"] == 2 * 20 * 50


def test_plan_form_decision_ids_answer_responses_too(tmp_path: Path) -> None:
    d = _decisions(4, "spring").assign(decision_id=lambda f: "spring:" + f["CLIENTNUM"].astype(str))
    with History(tmp_path / "h.sqlite") as h:
        h.record_decisions(d)
        assert h.decisions()["decision_id"].tolist() == d["decision_id"].tolist()
        n, rejected = h.record_responses(
            pd.DataFrame(
                {"decision_id": ["spring:1001", "spring:9"], "responded": 1, "retained": 1}
            )
        )
        assert n == 1 and "unknown decision_id" in rejected["reason"].iloc[0]
        with pytest.raises(HistoryError, match="already in the history"):
            h.record_decisions(d.iloc[:1])  # a campaign's plan is written once


def _app_decisions(actions: list[str]) -> pd.DataFrame:
    """Decisions as the app records them: its own ids, no control group."""
    d = _decisions(len(actions), "app-desk")
    return d.assign(
        decision_id=[f"app:{1000 + i}:x{i}" for i in range(len(actions))],
        channel="api",
        group="treatment",
        action=actions,
        propensity=1.0,
    )


def test_overrides_are_recorded_validated_and_read_back(tmp_path: Path) -> None:
    d = _app_decisions(["retention_offer", "service_call", "retention_offer"])
    with History(tmp_path / "h.sqlite") as h:
        h.record_decisions(d)
        overrides = pd.DataFrame(
            {
                "decision_id": ["app:1001:x1", "app:1001:x1", "app:1000:x0", "nope", "app:1002:x2"],
                "recommended": ["retention_offer"] * 5,
                "override_reason": ["asked for a call back", "again", "same", "x", "  "],
                "recorded_by": ["maria", "maria", "maria", "maria", "maria"],
            }
        )
        recorded, rejected = h.record_overrides(overrides)
        assert recorded == 1
        assert recorded + len(rejected) == len(overrides)
        reasons = dict(zip(rejected.index, rejected["reason"], strict=True))
        assert "duplicate" in reasons[1]
        assert "not an override" in reasons[2]  # the decision's action is the recommended one
        assert "unknown decision_id" in reasons[3]
        assert "override_reason is empty" in reasons[4]
        back = h.overrides()
        assert back.columns.tolist() == list(OVERRIDE_COLUMNS)
        row = back.iloc[0]
        assert (row["decision_id"], row["CLIENTNUM"], row["campaign_id"]) == (
            "app:1001:x1",
            1001,
            "app-desk",
        )
        assert (row["recommended"], row["action"]) == ("retention_offer", "service_call")
        assert (row["override_reason"], row["recorded_by"]) == ("asked for a call back", "maria")
        assert row["recorded"].startswith("20")
        assert h.overrides(["other"]).empty
        # never overwritten; the same one again adds nothing
        n, rej = h.record_overrides(overrides.iloc[[0]])
        assert n == 0 and "already recorded" in rej["reason"].iloc[0]
        changed = overrides.iloc[[0]].assign(override_reason="something else")
        n, rej = h.record_overrides(changed)
        assert n == 0 and "never overwritten" in rej["reason"].iloc[0]
        assert len(h.overrides()) == 1


def test_impact_and_learning_do_not_take_an_override_for_the_engines_decision(
    tmp_path: Path,
) -> None:
    from nba.campaigns.impact import impact_summary, impact_table

    d = _app_decisions(["retention_offer", "service_call", "retention_offer", "service_call"])
    d["group"] = ["treatment", "treatment", "control", "control"]
    with History(tmp_path / "h.sqlite") as h:
        h.record_decisions(d, make_customers(4, seed=4))
        h.record_responses(
            pd.DataFrame({"decision_id": d["decision_id"], "responded": 1, "retained": 1})
        )
        h.record_overrides(
            pd.DataFrame(
                {
                    "decision_id": ["app:1001:x1"],
                    "recommended": ["retention_offer"],
                    "override_reason": ["customer complained last week"],
                }
            )
        )
        plain = h.interactions()
        got = h.interactions_with_overrides()
        assert len(got) == len(plain) == 4
        assert got["overridden"].tolist() == [0, 1, 0, 0]
        assert got["recommended"].tolist() == [
            "retention_offer",
            "retention_offer",
            "retention_offer",
            "service_call",
        ]
        assert got["override_reason"].iloc[1] == "customer complained last week"
        # with a column selection (as learning reads) the join still works
        few = h.interactions_with_overrides(with_customers=True, columns=["action", "group"])
        assert few["overridden"].tolist() == [0, 1, 0, 0]
        assert few["Customer_Age"].notna().all()
    # the overridden treated row is not the policy's: it leaves service_call without treated
    by_action = impact_table(got).set_index("action")
    assert by_action.loc["service_call", "treated"] == 0
    assert impact_table(plain).set_index("action").loc["service_call", "treated"] == 1
    assert impact_summary(got, ["app-desk"])["overridden_left_out"] == 1


def test_a_version_1_history_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with History(path) as h:
        h.record_decisions(_decisions(3))
        h.conn.execute("DROP TABLE overrides")
        h.conn.execute("PRAGMA user_version = 1")
    with History(path) as h:
        assert h.version == SCHEMA_VERSION == 2
        assert h.counts()["decisions"] == 3
        assert h.overrides().empty


def test_the_apps_former_override_file_is_imported_once(tmp_path: Path) -> None:
    d = _app_decisions(["retention_offer", "service_call"])
    old = tmp_path / "history.decisions.csv"
    pd.DataFrame(
        {
            "decision_id": ["app:1000:x0", "app:1001:x1"],
            "CLIENTNUM": [1000, 1001],
            "recommended": ["retention_offer", "retention_offer"],
            "action": ["retention_offer", "service_call"],
            "override_reason": ["", "prefers a branch visit"],
            "result": ["not known yet", "reached; customer stayed"],
            "recorded": ["2026-11-30T10:00:00+00:00", "2026-11-30T10:05:00+00:00"],
        }
    ).to_csv(old, index=False)
    with History(tmp_path / "history.sqlite") as h:
        h.record_decisions(d)
        n, rejected = h.import_override_log(old)
        assert n == 1 and rejected.empty  # the accepted row has nothing to import
        back = h.overrides()
        assert back["override_reason"].tolist() == ["prefers a branch visit"]
        assert back["recorded"].tolist() == ["2026-11-30T10:05:00+00:00"]
        assert back["recorded_by"].tolist() == [LEGACY_RECORDED_BY]
        again, rejected = h.import_override_log(old)
        assert again == 0 and rejected["reason"].str.contains("already recorded").all()
        (tmp_path / "other.csv").write_text("a,b\n1,2\n")
        with pytest.raises(HistoryError, match="not an override log"):
            h.import_override_log(tmp_path / "other.csv")


@pytest.mark.parametrize("json_each", [True, False], ids=["json_each", "row by row"])
def test_mixed_batches_keep_their_order_across_blobs(
    tmp_path: Path, monkeypatch, json_each: bool
) -> None:
    """Plan-form ids of two campaigns interleaved with the service's own ids, over several
    blobs: every decision comes back in the order written, with its id and customer (with
    SQLite's json_each, and row by row as where SQLite lacks it)."""
    import nba.campaigns.history as history

    monkeypatch.setattr(history, "BLOB_ROWS", 4)
    monkeypatch.setattr(history, "_json_each_missing", not json_each)
    a = _decisions(5, "spring").assign(decision_id=lambda f: "spring:" + f["CLIENTNUM"].astype(str))
    b = _decisions(3, "api-1", start=50)  # its own ids ("api-1:50" is not "api-1:1050")
    c = _decisions(4, "autumn", start=10)
    c = c.assign(decision_id="autumn:" + c["CLIENTNUM"].astype(str))
    d = pd.concat([a.iloc[:2], b.iloc[:1], c.iloc[:3], a.iloc[2:], b.iloc[1:], c.iloc[3:]])
    d = d.assign(channel=np.where(d["campaign_id"].eq("api-1"), "api", "batch"))
    with History(tmp_path / "h.sqlite") as h:
        assert h.record_decisions(d, make_customers(len(d), seed=2)) == 12
        assert history._json_each_missing is not json_each  # the path meant was the one taken
        back = h.decisions()
        assert back["decision_id"].tolist() == d["decision_id"].tolist()
        assert back["CLIENTNUM"].tolist() == d["CLIENTNUM"].tolist()
        assert h.counts() == {"campaigns": 3, "decisions": 12, "customers": 12, "outcomes": 0}
        stored = h.conn.execute("SELECT COUNT(decision_id) FROM decisions").fetchone()[0]
        assert stored == 3  # only the service's ids are stored; plan ids are implicit
        n, rejected = h.record_responses(
            pd.DataFrame(
                {"decision_id": ["autumn:1013", "api-1:51"], "responded": 1, "retained": 0}
            )
        )
        assert (n, len(rejected)) == (2, 0)


def test_a_plan_naming_a_customer_twice_is_refused(tmp_path: Path) -> None:
    d = _decisions(5, "spring").assign(decision_id=lambda f: "spring:" + f["CLIENTNUM"].astype(str))
    d = pd.concat([d, d.iloc[[1]]], ignore_index=True)
    with History(tmp_path / "h.sqlite") as h:
        with pytest.raises(HistoryError, match=r"'spring:1001' appears twice \(row 6\)"):
            h.record_decisions(d)
        assert h.counts()["decisions"] == 0


@pytest.mark.parametrize(
    "ids",
    [
        ["7c1e-1", "7c1e-2", "7c1e-3"],  # the service's form: one json_each statement
        ['say "hi"', "back\\slash", "tab\there"],  # JSON would escape them: row by row
        ["café-1", "日本-2", "plain-3"],  # beyond ASCII: row by row
    ],
    ids=["plain", "escaped", "unicode"],
)
def test_stored_decision_ids_come_back_exactly(tmp_path: Path, ids: list[str]) -> None:
    """The service's own ids are written as a JSON array when JSON holds them unescaped, row
    by row otherwise: either way the very text given is stored, answers responses and is
    refused a second time."""
    d = _decisions(3, "api").assign(decision_id=ids, channel="api")
    with History(tmp_path / "h.sqlite") as h:
        assert h.record_decisions(d, make_customers(3, seed=4)) == 3
        stored = [r[0] for r in h.conn.execute("SELECT decision_id FROM decisions ORDER BY id")]
        assert stored == ids
        assert h.decisions()["decision_id"].tolist() == ids
        assert h.decisions()["CLIENTNUM"].tolist() == d["CLIENTNUM"].tolist()
        n, rejected = h.record_responses(
            pd.DataFrame({"decision_id": ids[1:], "responded": 1, "retained": 0})
        )
        assert (n, len(rejected)) == (2, 0)
        with pytest.raises(HistoryError, match="already in the history"):
            h.record_decisions(d.iloc[[2]])
        assert h.counts()["decisions"] == 3


def test_json_pairs_refuse_ids_json_would_escape() -> None:
    """Only ids JSON writes as they are go through json_each (so SQLite reads back the text)."""
    import pyarrow as pa

    from nba.campaigns.history import _json_pairs

    def pairs(ids: list[str | None]) -> str | None:
        return _json_pairs(np.arange(1, len(ids) + 1), pa.array(ids, pa.large_string()))

    assert pairs(["a-1", "b:2"]) == '[[1,"a-1"],[2,"b:2"]]'
    for bad in (['a"b'], ["a\\b"], ["é"], ["a\nb"], ["a", None]):
        assert pairs(bad) is None, bad
