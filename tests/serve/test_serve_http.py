"""The decision service over real HTTP: `nba serve` runs in a subprocess on a free loopback
port and these tests drive it as a channel system would — good customers (decisions equal to
`nba score`), bad customers and bad requests of every kind, responses joined to decisions in the
history, metrics, the OpenAPI description and the access log."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from nba.campaigns.history import History
from nba.cli import main
from nba.data import schema
from nba.data.discover import write_synthetic
from nba.serve.decisions import MAX_BODY_BYTES, MAX_CUSTOMERS, bundle_id
from nba.serve.server import Running

from factories import json_records

pytestmark = pytest.mark.slow

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("served")


@pytest.fixture(scope="module")
def server(serve_bundles, folder):
    with Running(
        serve_bundles[0],
        ["--history", str(folder / "history.sqlite")],
        env={"NBA_API_KEY": ""},
        log=folder / "serve.log",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def customers_csv(folder) -> Path:
    return write_synthetic(folder / "customers.csv", 300, 21)


@pytest.fixture(scope="module")
def scored(customers_csv, serve_bundles, folder) -> pd.DataFrame:
    """`nba score` of the customers file, by CLIENTNUM."""
    out = folder / "scores.parquet"
    assert (
        main(["score", str(customers_csv), "--bundle", str(serve_bundles[0]), "--out", str(out)])
        == 0
    )
    return pd.read_parquet(out).set_index(schema.ID)


@pytest.fixture(scope="module")
def sent(customers_csv) -> list[dict]:
    """The same customers as a client sends them: the file's numbers parsed exactly."""
    return json_records(pd.read_csv(customers_csv))


def _assert_equal_to_scores(decisions: list[dict], scored: pd.DataFrame) -> None:
    """Every score column of every decision equals the `nba score` row of its customer:
    exactly (floats bit for bit; a missing number, NaN there and null here, equals itself)."""
    got = pd.DataFrame(decisions).set_index(schema.ID)
    want = scored.loc[got.index]
    for column in scored.columns:
        a, b = want[column].to_numpy(), got[column].to_numpy()
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            assert np.array_equal(a.astype(float), b.astype(float), equal_nan=True), column
        else:
            assert a.tolist() == b.tolist(), column


def test_health_names_the_bundle_and_its_data(client, serve_bundles, champion):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["bundle_id"] == bundle_id(champion, serve_bundles[0])
    assert body["synthetic"] is True
    assert body["data"]["sha256"] == champion.metadata["data"]["sha256"]
    assert body["challenger"] is None and body["api_key_required"] is False


def test_decisions_equal_nba_score_for_every_customer(client, sent, scored):
    r = client.post("/v1/decisions", json={"customers": sent})
    assert r.status_code == 200
    body = r.json()
    assert body["rejected"] == []
    decisions = body["decisions"]
    assert [d["index"] for d in decisions] == list(range(len(sent)))
    assert [d[schema.ID] for d in decisions] == [c[schema.ID] for c in sent]
    assert len({d["decision_id"] for d in decisions}) == len(sent)
    assert {d["variant"] for d in decisions} == {"champion"}
    assert set(scored.columns) <= set(decisions[0])
    _assert_equal_to_scores(decisions, scored)


def test_one_customer_requests_at_once_equal_nba_score(client, sent, scored):
    """Sixteen clients at once: requests are scored together (dynamic batching) and each still
    gets exactly its own customer's decision."""

    def one(customer: dict) -> dict:
        r = client.post("/v1/decisions", json={"customers": [customer]})
        assert r.status_code == 200
        (decision,) = r.json()["decisions"]
        return decision

    with ThreadPoolExecutor(16) as pool:
        decisions = list(pool.map(one, sent[:64]))
    assert [d[schema.ID] for d in decisions] == [c[schema.ID] for c in sent[:64]]
    _assert_equal_to_scores(decisions, scored)


def _odd_customers(good: list[dict]) -> tuple[list, dict[int, str]]:
    """Good customers mixed with odd ones; the field (or words) each odd one's reason names."""
    c = [dict(g) for g in good[:40]]
    expect: dict[int, str] = {}

    def odd(i: int, field: str, value, words: str | None = None) -> None:
        c[i][field] = value
        expect[i] = words or field

    odd(0, "Customer_Age", "forty")  # text in a number field
    odd(1, "Credit_Limit", None)  # null
    odd(2, "Total_Trans_Ct", {"count": 5})  # nested object
    odd(3, "Months_on_book", [36])  # list
    c[23]["Total_Revolving_Bal"] = json.loads("[" * 600 + "]" * 600)  # deeply nested
    expect[23] = "Total_Revolving_Bal"
    odd(24, "Marital_Status", "\ud800 lone surrogate")  # JSON can say it, UTF-8 cannot
    odd(4, "Customer_Age", True)  # boolean
    odd(5, "Total_Trans_Amt", 10**30)  # huge number
    odd(6, "Customer_Age", -3)  # negative
    odd(7, "Customer_Age", 45.5)  # not whole
    odd(8, "Gender", "Mâle 😀")  # unicode, not a category
    odd(9, "Gender", "")  # empty text
    odd(10, "Card_Category", 3)  # number in a text field
    odd(11, "Avg_Open_To_Buy", 1.0)  # breaks the identity
    del c[12]["Months_Inactive_12_mon"]  # missing field
    expect[12] = "Months_Inactive_12_mon"
    c[13] = 42  # not an object
    expect[13] = "not a JSON object"
    c[14] = None
    expect[14] = "not a JSON object"
    c[15] = ["a list"]
    expect[15] = "not a JSON object"
    c[16] = {}
    expect[16] = "CLIENTNUM is missing"
    # two customers with one id: the first is decided, the second rejected (rows count from 1)
    c[17][schema.ID] = c[18][schema.ID]
    expect[18] = "duplicates row 18"
    c[19][schema.ID] = "not-an-id"
    expect[19] = "CLIENTNUM"
    # accepted: extra fields, numbers as text, categories in another case with spaces
    c[20]["Attrition_Flag"] = "anything"
    c[20]["favourite_colour"] = {"nested": [1, 2]}
    c[21]["Customer_Age"] = str(c[21]["Customer_Age"])
    c[22]["Gender"] = f"  {c[22]['Gender'].lower()} "
    return c, expect


def test_bad_customers_are_rejected_one_by_one_and_the_rest_decided(client, sent, scored):
    customers, expect = _odd_customers(sent)
    body = json.dumps({"customers": customers}).encode()  # ASCII: "\ud800" stays an escape
    r = client.post("/v1/decisions", content=body, headers=JSON)
    assert r.status_code == 200
    body = r.json()
    rejected = {x["index"]: x["reason"] for x in body["rejected"]}
    assert len(body["decisions"]) + len(rejected) == len(customers)
    assert set(rejected) == set(expect)
    for i, words in expect.items():
        assert words in rejected[i], (i, rejected[i])
    decided = {d["index"] for d in body["decisions"]}
    assert {17, 20, 21, 22} <= decided
    # the accepted odd spellings decide exactly as the clean customer
    _assert_equal_to_scores([d for d in body["decisions"] if d["index"] in (20, 21, 22)], scored)


def test_non_standard_numbers_are_one_customers_reject(client, sent):
    """NaN, Infinity and numbers beyond float64 are not JSON; clients write them anyway. The
    customer holding one is rejected with the validator's reason, the others are decided."""
    body = json.dumps({"customers": sent[:4]})  # the literals below replace real values
    first, second, third = (json.dumps(sent[i]["Credit_Limit"]) for i in range(3))
    text = body.replace(f'"Credit_Limit": {first}', '"Credit_Limit": NaN', 1)
    text = text.replace(f'"Credit_Limit": {second}', '"Credit_Limit": Infinity', 1)
    text = text.replace(f'"Credit_Limit": {third}', '"Credit_Limit": -1e400', 1)
    assert text.count("NaN") == 1 and "Infinity" in text and "1e400" in text
    r = client.post("/v1/decisions", content=text.encode(), headers=JSON)
    assert r.status_code == 200
    body = r.json()
    assert [x["index"] for x in body["rejected"]] == [0, 1, 2]
    assert all("Credit_Limit" in x["reason"] for x in body["rejected"])
    assert [d["index"] for d in body["decisions"]] == [3]


def _too_many(sent: list[dict]) -> bytes:
    return json.dumps({"customers": (sent * 4)[: MAX_CUSTOMERS + 1]}).encode()


def _too_big(sent: list[dict]) -> bytes:
    padded = [{**sent[0], "note": "x" * 4096} for _ in range(MAX_BODY_BYTES // 4096 + 10)]
    return json.dumps({"customers": padded[:900]}).encode()


BAD_REQUESTS = [
    # (name, body or a function of the good customers, headers, status)
    ("not JSON", b"customers please", JSON, 400),
    ("truncated JSON", b'{"customers": [{"CLIENTNUM": 1', JSON, 400),
    ("not UTF-8", b'{"customers": ["\xff\xfe"]}', JSON, 400),
    ("empty body", b"", JSON, 400),
    ("a JSON list", b"[]", JSON, 400),
    ("a JSON string", b'"customers"', JSON, 400),
    ("JSON null", b"null", JSON, 400),
    ("no customers key", b'{"customer": []}', JSON, 400),
    ("customers an object", b'{"customers": {"CLIENTNUM": 1}}', JSON, 400),
    ("customers a string", b'{"customers": "all"}', JSON, 400),
    ("customers empty", b'{"customers": []}', JSON, 400),
    ("nested too deeply", b'{"customers": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", JSON, 400),
    ("text/plain", b'{"customers": []}', {"content-type": "text/plain"}, 415),
    ("form", b"customers=1", {"content-type": "application/x-www-form-urlencoded"}, 415),
    ("no content type", b'{"customers": []}', {}, 415),
    ("1,001 customers", _too_many, JSON, 413),
    ("over 2 MB", _too_big, JSON, 413),
]


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [pytest.param(b, h, s, id=n) for n, b, h, s in BAD_REQUESTS],
)
def test_a_bad_request_is_a_4xx_with_one_sentence(client, sent, body, headers, status):
    content = body(sent) if callable(body) else body
    r = client.post("/v1/decisions", content=content, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail.endswith(".") and "Traceback" not in detail
    assert "\n" not in detail
    assert client.get("/health").json()["status"] == "ok"


def test_unknown_paths_and_methods_answer_json(client):
    for method, path, status in (("GET", "/v2/decisions", 404), ("GET", "/v1/decisions", 405)):
        r = client.request(method, path)
        assert r.status_code == status
        assert path in r.json()["detail"]


def _metric(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{name}(?:{{(.*)}})? (\S+)$", line)
        if not m:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


def test_metrics_count_requests_latency_decisions_and_rejects(client, sent):
    before = client.get("/metrics").text
    customers = [*sent[100:107], {"CLIENTNUM": 5}, "nobody"]
    decisions = client.post("/v1/decisions", json={"customers": customers}).json()["decisions"]
    after = client.get("/metrics").text
    assert len(decisions) == 7

    def delta(name: str, **labels: str) -> float:
        return _metric(after, name, **labels) - _metric(before, name, **labels)

    assert delta("nba_serve_decisions_total") == 7
    for action in {d["action_1"] for d in decisions}:
        n = sum(d["action_1"] == action for d in decisions)
        assert delta("nba_serve_decisions_total", action=action, variant="champion") == n
    assert delta("nba_serve_rejected_total", kind="customer") == 2
    assert delta("nba_serve_requests_total", endpoint="/v1/decisions", status="200") == 1
    assert delta("nba_serve_request_seconds_count", endpoint="/v1/decisions") == 1
    assert (
        _metric(after, "nba_serve_request_seconds_bucket", endpoint="/v1/decisions", le="+Inf") > 0
    )


def test_responses_are_joined_to_their_decisions_in_the_history(client, server, sent, folder):
    made = client.post("/v1/decisions", json={"customers": sent[200:205]}).json()["decisions"]
    ids = [d["decision_id"] for d in made]
    responses = [
        {"decision_id": ids[0], "responded": 1, "retained": 1},
        {"decision_id": ids[1], "responded": 0, "retained": 0},
        {"decision_id": ids[2], "responded": True, "retained": False},
        {"decision_id": "no-such-decision", "responded": 1, "retained": 1},
        {"decision_id": ids[0], "responded": 1, "retained": 1},  # twice in one request
        {"decision_id": ids[3], "responded": 2, "retained": 1},
        {"decision_id": ids[4], "responded": "yes", "retained": 1},
        {"responded": 1, "retained": 1},
        "a response",
        {"decision_id": "\udc00", "responded": 1, "retained": 1},
    ]
    r = client.post("/v1/responses", content=json.dumps({"responses": responses}), headers=JSON)
    assert r.status_code == 200
    body = r.json()
    assert body["recorded"] == 3
    rejected = {x["index"]: x["reason"] for x in body["rejected"]}
    assert set(rejected) == {3, 4, 5, 6, 7, 8, 9}
    assert "unknown decision_id" in rejected[3] and "duplicate" in rejected[4]
    assert "responded" in rejected[5] and "responded" in rejected[6]
    assert "decision_id" in rejected[7] and "not a JSON object" in rejected[8]
    assert "not valid text" in rejected[9]

    # acknowledged means on disk, joined to the decision (and its customer)
    with History(folder / "history.sqlite") as history:
        joined = history.interactions(with_customers=True).set_index("decision_id")
    assert set(ids[:3]) <= set(joined.index)
    for d, (responded, retained) in zip(made[:3], ((1, 1), (0, 0), (1, 0)), strict=True):
        row = joined.loc[d["decision_id"]]
        assert (row["responded"], row["retained"]) == (responded, retained)
        assert row[schema.ID] == d[schema.ID] and row["action"] == d["action_1"]
        assert row["channel"] == "api" and row["propensity"] == 1.0
        assert row["bundle_id"] == d["bundle_id"]
        assert row["Customer_Age"] == sent[200 + d["index"]]["Customer_Age"]

    again = client.post("/v1/responses", json={"responses": responses[:1]}).json()
    assert again["recorded"] == 0 and "already recorded" in again["rejected"][0]["reason"]


def test_bad_response_requests_are_4xx(client):
    for content, headers, status in (
        (b"{", JSON, 400),
        (b'{"responses": {}}', JSON, 400),
        (b'{"responses": []}', {"content-type": "text/csv"}, 415),
    ):
        r = client.post("/v1/responses", content=content, headers=headers)
        assert r.status_code == status and r.json()["detail"].endswith(".")


def test_openapi_documents_every_status_code_and_the_schema(client):
    spec = client.get("/openapi.json").json()
    for path in ("/v1/decisions", "/v1/responses"):
        codes = set(spec["paths"][path]["post"]["responses"])
        assert {"200", "400", "401", "413", "415", "500", "503"} <= codes
        assert {str(s) for *_, s in BAD_REQUESTS} <= codes
    assert {"200", "503"} <= set(spec["paths"]["/health"]["get"]["responses"])
    customer = spec["components"]["schemas"]["Customer"]
    assert customer["required"] == list(schema.REQUIRED)
    for name, allowed in schema.CATEGORIES.items():
        assert customer["properties"][name]["enum"] == list(allowed)
    for name, (lo, hi) in schema.BOUNDS.items():
        assert (
            customer["properties"][name]["minimum"],
            customer["properties"][name]["maximum"],
        ) == (lo, hi)
    decision = spec["components"]["schemas"]["Decision"]["properties"]
    assert {"decision_id", "churn_probability", "action_1", "action_3_reason"} <= set(decision)
    assert (
        "2 MB" in spec["info"]["description"]
        and f"{MAX_CUSTOMERS:,}" in spec["info"]["description"]
    )


def test_the_access_log_names_each_decision(client, server, sent, folder):
    made = client.post("/v1/decisions", json={"customers": sent[250:253]}).json()["decisions"]
    ids = [d["decision_id"] for d in made]
    deadline = time.monotonic() + 10  # the line is written once the response has gone out
    while time.monotonic() < deadline:
        text = (folder / "serve.log").read_text()
        lines = [json.loads(x) for x in text.splitlines() if x.startswith("{")]
        mine = [x for x in lines if x.get("decision_ids") == ids]
        if mine:
            break
        time.sleep(0.1)
    assert len(mine) == 1
    assert mine[0]["status"] == 200 and mine[0]["path"] == "/v1/decisions"
    assert mine[0]["customers"] == 3 and mine[0]["rejected"] == 0 and mine[0]["ms"] > 0


def test_decisions_reach_the_history_with_their_customer(client, sent, folder):
    made = client.post("/v1/decisions", json={"customers": sent[260:262]}).json()["decisions"]
    ids = {d["decision_id"] for d in made}
    deadline = time.monotonic() + 30  # written off the request path, within moments
    while time.monotonic() < deadline:
        with History(folder / "history.sqlite") as history:
            found = history.decisions(["api"])
        if ids <= set(found["decision_id"]):
            break
        time.sleep(0.1)
    rows = found.set_index("decision_id").loc[sorted(ids)]
    assert (rows["campaign_id"] == "api").all() and (rows["group"] == "treatment").all()
    by_id = {d["decision_id"]: d for d in made}
    for did, row in rows.iterrows():
        assert row["churn_probability"] == by_id[did]["churn_probability"]
        assert row["expected_value"] == by_id[did]["action_1_value"]
        assert np.isclose(row["value_at_risk"], by_id[did]["value_at_risk"])


def _readme_section() -> str:
    from nba import config

    text = (config.ROOT / "README.md").read_text()
    start = text.index("## The decision service")
    end = text.index("\n## ", start + 3)
    return text[start:end]


def test_the_readmes_python_and_curl_examples_work(server, capsys):
    section = _readme_section()
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace("http://127.0.0.1:8000", server.url)
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the project's own example
    printed = capsys.readouterr().out
    assert "rejected" not in printed and len(printed.splitlines()) == 1

    import shutil
    import subprocess

    if shutil.which("curl") is None:
        return  # curl is a convenience of the README, not a dependency
    shell = re.search(r"```bash\n(curl .*?)```", section, re.S).group(1)
    commands = shell.replace("http://127.0.0.1:8000", server.url).split("\ncurl ")
    answers = [
        subprocess.run(
            "curl " + c.removeprefix("curl "), shell=True, capture_output=True, text=True
        ).stdout
        for c in commands
    ]
    assert json.loads(answers[0])["status"] == "ok"
    assert len(json.loads(answers[1])["decisions"]) == 1
    assert json.loads(answers[2])["rejected"][0]["reason"].startswith("unknown decision_id")


@pytest.mark.real_data
def test_every_real_customer_is_decided_as_nba_score_decides(
    client, serve_bundles, real_path, folder
):
    out = folder / "real-scores.parquet"
    assert (
        main(["score", str(real_path), "--bundle", str(serve_bundles[0]), "--out", str(out)]) == 0
    )
    scored = pd.read_parquet(out).set_index(schema.ID)
    customers = json_records(pd.read_csv(real_path))  # as a client sends them, every column
    decisions, rejected = [], 0
    for start in range(0, len(customers), MAX_CUSTOMERS):
        r = client.post(
            "/v1/decisions", json={"customers": customers[start : start + MAX_CUSTOMERS]}
        )
        assert r.status_code == 200
        decisions += r.json()["decisions"]
        rejected += len(r.json()["rejected"])
    assert len(decisions) + rejected == len(customers)
    assert sorted(d[schema.ID] for d in decisions) == sorted(scored.index)
    _assert_equal_to_scores(decisions, scored)
