"""`--workers 2` and a graceful stop: decisions made by both worker processes are all in the
history after SIGTERM (the writers flush on shutdown), /metrics adds up both workers, and the
command's own checks answer in one sentence with exit status 2."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pandas as pd
import pytest

from nba.campaigns.history import History
from nba.cli import main
from nba.data import synth
from nba.serve.server import Running, free_port

pytestmark = pytest.mark.slow


def records(df: pd.DataFrame) -> list[dict]:
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in df.to_dict("records")
    ]


def _decisions_metric(text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("nba_serve_decisions_total{")
    )


def test_two_workers_then_sigterm_lose_no_decision(serve_bundles, tmp_path):
    history = tmp_path / "history.sqlite"
    log = tmp_path / "serve.log"
    sent = records(synth.generate(200, 41))
    batches = [sent[i : i + 5] for i in range(0, len(sent), 5)]
    server = Running(
        serve_bundles[0],
        ["--workers", "2", "--history", str(history)],
        env={"NBA_API_KEY": ""},
        log=log,
    )
    with server:

        def post(batch: list[dict]) -> list[str]:
            r = httpx.post(f"{server.url}/v1/decisions", json={"customers": batch}, timeout=60)
            assert r.status_code == 200
            return [d["decision_id"] for d in r.json()["decisions"]]

        with ThreadPoolExecutor(8) as pool:
            ids = [i for chunk in pool.map(post, batches) for i in chunk]
        assert len(set(ids)) == len(sent)
        metrics = httpx.get(f"{server.url}/metrics").text
        assert _decisions_metric(metrics) == len(sent)  # both workers, added up
        status = server.stop()

    assert status == 0
    with History(history) as h:
        logged = h.decisions(["api"])
    assert sorted(logged["decision_id"]) == sorted(ids)
    events = [json.loads(x) for x in log.read_text().splitlines() if x.startswith('{"time"')]
    stopped = [e for e in events if e.get("event") == "stopped"]
    assert len(stopped) == 2 and len({e["pid"] for e in stopped}) == 2
    assert sum(e["history_written"] for e in stopped) == len(sent)
    assert all(e["history_lost"] == 0 for e in stopped)
    pids = {e["pid"] for e in events if e.get("event") == "started"}
    assert pids == {e["pid"] for e in stopped}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--workers", "0"], "--workers"),
        (["--challenger-share", "1.5", "--challenger", "{bundle}"], "--challenger-share"),
        (["--port", "70000"], "--port"),
        (["--challenger-share", "0.2"], "needs --challenger"),
        (["--bundle-missing"], None),
    ],
    ids=["workers", "share", "port", "share-alone", "unknown-option"],
)
def test_bad_options_are_one_sentence(serve_bundles, capsys, args, words):
    args = [a.replace("{bundle}", str(serve_bundles[1])) for a in args]
    if words is None:
        with pytest.raises(SystemExit) as exit_:
            main(["serve", "--bundle", str(serve_bundles[0]), *args])
        assert exit_.value.code == 2
        return
    assert main(["serve", "--bundle", str(serve_bundles[0]), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nba: error:") and words in err and "\n" not in err


def test_a_missing_bundle_or_a_busy_port_is_one_sentence(serve_bundles, tmp_path, capsys):
    assert main(["serve", "--bundle", str(tmp_path / "none.bundle")]) == 2
    assert "nba train" in capsys.readouterr().err
    import socket

    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        code = main(
            [
                "serve",
                "--bundle",
                str(serve_bundles[0]),
                "--port",
                str(port),
                "--history",
                str(tmp_path / "h.sqlite"),
            ]
        )
    assert code == 2
    err = capsys.readouterr().err
    assert f"Port {port}" in err and "in use" in err
