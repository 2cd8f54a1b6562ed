"""The service with an API key and a challenger: 401 without the right Bearer token (the key is
compared in constant time), and a sticky share of customers decided by the second bundle, each
decision recording which bundle made it and the policy's propensity."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from nba.campaigns.history import History
from nba.data import schema, synth
from nba.data.validate import validate
from nba.serve.decisions import bundle_id, challenger_mask
from nba.serve.server import Running

from factories import json_records

pytestmark = pytest.mark.slow

KEY = "s3cret-key-for-tests"
SHARE = 0.3
SEED = 42  # Settings().seed: what `nba serve` hashes with


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("keyed")


@pytest.fixture(scope="module")
def server(serve_bundles, folder):
    args = ["--history", str(folder / "history.sqlite")]
    args += ["--challenger", str(serve_bundles[1]), "--challenger-share", str(SHARE)]
    with Running(serve_bundles[0], args, env={"NBA_API_KEY": KEY}, log=folder / "serve.log") as s:
        yield s


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return synth.generate(400, 31)


def _post(server, path: str, body: dict, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, headers=headers or {}, timeout=60)


AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {KEY}x"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": KEY},
        {"Authorization": "Bearer"},
    ],
    ids=["none", "wrong", "longer", "basic", "no-scheme", "empty"],
)
def test_without_the_right_key_it_is_401(server, customers, headers):
    for path, body in (
        ("/v1/decisions", {"customers": json_records(customers.head(1))}),
        ("/v1/responses", {"responses": [{"decision_id": "x", "responded": 1, "retained": 1}]}),
    ):
        r = _post(server, path, body, headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in r.json()["detail"]


def test_health_and_docs_stay_open_and_say_a_key_is_needed(server, serve_bundles, challenger):
    health = httpx.get(f"{server.url}/health").json()
    assert health["api_key_required"] is True
    assert health["challenger"]["bundle_id"] == bundle_id(challenger, serve_bundles[1])
    assert health["challenger"]["share"] == SHARE
    assert httpx.get(f"{server.url}/openapi.json").status_code == 200
    assert httpx.get(f"{server.url}/metrics").status_code == 200


def test_the_challenger_decides_for_a_sticky_share(
    server, customers, champion, challenger, serve_bundles, folder
):
    sent = json_records(customers)
    r = _post(server, "/v1/decisions", {"customers": sent}, AUTH)
    assert r.status_code == 200
    decisions = r.json()["decisions"]
    assert len(decisions) == len(sent)
    ids = np.array([d[schema.ID] for d in decisions])
    expected = challenger_mask(ids, SHARE, SEED)
    got = np.array([d["variant"] == "challenger" for d in decisions])
    assert (got == expected).all()
    # about the share (binomial: 120 expected of 400, sd 9)
    assert 80 < got.sum() < 160

    # each decision equals the batch score of the bundle that made it
    clean = validate(customers[list(schema.REQUIRED)]).clean
    by_bundle = {
        bundle_id(champion, serve_bundles[0]): champion.score(clean).set_index(schema.ID),
        bundle_id(challenger, serve_bundles[1]): challenger.score(clean).set_index(schema.ID),
    }
    assert len(by_bundle) == 2
    for d in decisions:
        row = by_bundle[d["bundle_id"]].loc[d[schema.ID]]
        for column in (
            "churn_probability",
            "segment",
            "segment_name",
            "action_1",
            "action_1_value",
        ):
            assert row[column] == d[column], (d[schema.ID], column)

    # sticky: alone, in another order, the same customers get the same side
    again = [_post(server, "/v1/decisions", {"customers": [c]}, AUTH) for c in sent[::-7][:30]]
    side = {d[schema.ID]: d["variant"] for d in decisions}
    for r in again:
        (d,) = r.json()["decisions"]
        assert d["variant"] == side[d[schema.ID]]

    # the history records which bundle decided and the policy's propensity
    want = {d["decision_id"]: d for d in decisions}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with History(folder / "history.sqlite") as history:
            logged = history.decisions(["api"]).set_index("decision_id")
        if set(want) <= set(logged.index):
            break
        time.sleep(0.1)
    logged = logged.loc[list(want)]
    assert (logged["bundle_id"] == [want[i]["bundle_id"] for i in logged.index]).all()
    champ_action = by_bundle[bundle_id(champion, serve_bundles[0])]["action_1"]
    chal_action = by_bundle[bundle_id(challenger, serve_bundles[1])]["action_1"]
    for did, row in logged.iterrows():
        client = want[did][schema.ID]
        agree = champ_action.loc[client] == chal_action.loc[client]
        share = SHARE if want[did]["variant"] == "challenger" else 1 - SHARE
        assert row["propensity"] == pytest.approx(1.0 if agree else share)


def test_a_response_with_the_key_is_recorded(server, customers):
    made = _post(server, "/v1/decisions", {"customers": json_records(customers.tail(1))}, AUTH)
    (d,) = made.json()["decisions"]
    body = {"responses": [{"decision_id": d["decision_id"], "responded": 0, "retained": 1}]}
    r = _post(server, "/v1/responses", body, AUTH)
    assert r.status_code == 200 and r.json() == {"recorded": 1, "rejected": []}
