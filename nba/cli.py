"""The `nba` command: thin, calls the modules. Exit 0 success, 2 unusable input (one line)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from nba import config
from nba.errors import NbaError

log = logging.getLogger("nba")

EXIT_OK = 0
EXIT_FAILED = 1  # a step of the run failed (e.g. a notebook)
EXIT_UNUSABLE = 2
EXIT_DRIFT = 1  # `nba monitor`: some item past its act threshold


def _app(args: argparse.Namespace) -> int:
    from nba.app import serve

    return serve(args.port, args.host, args.bundle, args.data)


def _serve(args: argparse.Namespace) -> int:
    from nba.serve.app import ServeConfig
    from nba.serve.server import serve

    if args.challenger_share is not None and not args.challenger:
        raise NbaError("--challenger-share needs --challenger (the bundle to share with).")
    options = ServeConfig(
        bundle=args.bundle,
        history=args.history,
        challenger=args.challenger,
        challenger_share=0.1 if args.challenger_share is None else args.challenger_share,
        seed=config.Settings().seed,  # the one seed: also what makes the split sticky
        host=args.host,
        port=args.port,
        workers=args.workers,
    )
    return serve(options)


def _data_download(args: argparse.Namespace) -> int:
    from nba.data.download import download

    path = download(Path(args.out) if args.out else None)
    print(f"Saved the Kaggle dataset to {path}")
    return EXIT_OK


def _data_synth(args: argparse.Namespace) -> int:
    from nba.data.discover import SYNTHETIC_WARNING, write_synthetic

    if args.rows < 1:
        raise NbaError(f"--rows must be a positive number of customers, got {args.rows}.")
    path = write_synthetic(Path(args.out), args.rows, args.seed)
    print(f"Wrote {args.rows:,} synthetic customers (seed {args.seed}) to {path}")
    print(SYNTHETIC_WARNING, file=sys.stderr)
    return EXIT_OK


def _report_validation(path: Path, origin: str, rejects_out: str | None = None) -> int:
    """Print the source banner and what validation found; exit 2 when no row is usable."""
    from nba.data import io
    from nba.data.discover import describe
    from nba.data.validate import validate

    result = validate(io.read_table(path))
    print(describe(path, origin, rows=result.n_in).banner)
    n_bad = len(result.rejects)
    print(f"{result.n_in:,} rows: {len(result.clean):,} valid, {n_bad:,} rejected")
    for line in result.problems:
        print(f"  {line}")
    if rejects_out and n_bad:
        io.write_table(result.rejects, Path(rejects_out))
        print(f"Rejected rows with reasons written to {rejects_out}")
    if result.clean.empty:
        print(f"nba: error: no usable row in {path}", file=sys.stderr)
        return EXIT_UNUSABLE
    return EXIT_OK


def _data_validate(args: argparse.Namespace) -> int:
    return _report_validation(Path(args.path), "argument", args.rejects)


def _data_discover(args: argparse.Namespace) -> int:
    from nba.data.discover import discover

    source = discover(args.data)
    return _report_validation(Path(source.path), source.origin)


def _data_calibrate(args: argparse.Namespace) -> int:
    import pandas as pd

    from nba.data import io, schema, synth
    from nba.data.validate import validate

    raw = io.read_table(Path(args.path), required=(*schema.REQUIRED, *schema.KAGGLE_EXTRA))
    result = validate(raw)
    if not result.ok:
        raise NbaError(f"{args.path} has invalid rows; calibrate only on a clean, labelled file.")
    # the leakage columns are dropped from clean data but the generator reproduces them too
    real = result.clean.assign(**{c: pd.to_numeric(raw[c]) for c in schema.LEAKAGE})
    synth.save_calibration(synth.calibrate(real), Path(args.out))
    print(f"Calibration statistics of {args.path} written to {args.out} (statistics only)")
    return EXIT_OK


def _data_fidelity(args: argparse.Namespace) -> int:
    from nba.data import fidelity, io, synth

    real = io.load(Path(args.real))
    if "churn" not in real.columns:
        raise NbaError(f"{args.real} has no Attrition_Flag column; the comparison needs labels.")
    figures = fidelity.summary(synth.generate(args.rows, args.seed), real, args.seed)
    for name, value in figures.items():
        print(f"{name:32s} {value:,.4f}" if isinstance(value, float) else f"{name:32s} {value:,}")
    return EXIT_OK


def _parse_overrides(pairs: list[list[str]] | None) -> dict[str, str]:
    return {key: value for key, value in (pairs or [])}


def _pipeline(args: argparse.Namespace) -> int:
    from nba import pipeline

    overrides = _parse_overrides(args.param)
    params_file = Path(args.params) if args.params else None
    if args.prepare_only:
        written = pipeline.prepare(
            Path(args.prepare_only),
            data_path=args.data,
            params_file=params_file,
            overrides=overrides,
            reports_dir=Path(args.reports_dir) if args.reports_dir else None,
        )
        print(f"Prepared {len(written)} notebooks in {args.prepare_only}")
        return EXIT_OK
    summary = pipeline.run(
        data_path=args.data,
        params_file=params_file,
        overrides=overrides,
        reports_dir=Path(args.reports_dir) if args.reports_dir else None,
        progress=not args.quiet,
    )
    data = summary.data
    flag = "SYNTHETIC DATA" if data["synthetic"] else "real data"
    print(f"Ran {len(summary.notebooks)} notebooks in {summary.seconds:.1f} s on {flag}")
    for nb in summary.notebooks:
        print(f"  {nb.name:32s} {nb.seconds:6.1f} s")
    print(f"Reports in {summary.reports_dir}")
    return EXIT_OK


def _train(args: argparse.Namespace) -> int:
    from nba import lineage
    from nba.bundle import save_bundle
    from nba.churn import TrainOptions, feature_set_exclusions
    from nba.data.discover import discover
    from nba.data.io import load_with_rejects
    from nba.train import train

    try:  # `-p churn_features early_warning` trains the early-warning variant
        settings = config.Settings().with_overrides(**_parse_overrides(args.param))
        feature_set_exclusions(settings.churn_features)
    except ValueError as exc:
        raise NbaError(f"{exc}.") from None
    choices = lineage.read_choices(args.choices) if args.choices else None
    source = discover(args.data, settings)
    print(source.banner, file=sys.stderr)
    df, rejects = load_with_rejects(source.path)
    if len(rejects):
        print(
            f"{len(rejects):,} of {source.rows:,} rows are invalid and not used for training "
            f"(see `nba data validate {source.path}`)",
            file=sys.stderr,
        )
    options = TrainOptions() if args.full else None
    bundle, metrics = train(df, source, settings, options, refit=args.refit, choices=choices)
    path = save_bundle(bundle, Path(args.out))
    churn = bundle.metadata["metrics"]["churn"]
    seg = bundle.metadata["metrics"]["segments"]
    print(f"Choices: {bundle.metadata['lineage']['origin']}", file=sys.stderr)
    print(
        f"Bundle written to {path}: churn ROC-AUC {churn['roc_auc']:.4f}, PR-AUC "
        f"{churn['pr_auc']:.4f}, F1 {churn['f1']:.4f} (held-out), threshold "
        f"{churn['threshold']:.3f}; {seg['k']} segments, silhouette {seg['silhouette']:.3f}; "
        f"trained in {metrics['train_seconds']:.0f} s"
    )
    return EXIT_OK


def _monitor(args: argparse.Namespace) -> int:
    from nba.monitor import load_thresholds, monitor_file

    thresholds = load_thresholds(args.thresholds)
    result, html_path, json_path = monitor_file(args.bundle, args.input, args.out, thresholds)
    if result.synthetic:
        print("SYNTHETIC DATA: the bundle learnt from generated customers.", file=sys.stderr)
    acted, watched = result.items_at("act"), result.items_at("watch")
    print(
        f"{result.rows_in:,} rows: {result.rows_scored:,} scored, {result.rows_rejected:,} "
        f"rejected; status {result.status}"
        + (f"; act: {', '.join(acted)}" if acted else "")
        + (f"; watch: {', '.join(watched)}" if watched else "")
    )
    print(f"Report written to {html_path} (summary {json_path})")
    return EXIT_DRIFT if acted else EXIT_OK


def _score(args: argparse.Namespace) -> int:
    import os

    from nba.bundle import load_bundle

    # INPUT, --out and --rejects may be paths or fsspec URLs (file://, memory://, s3://…)
    engine = args.engine or ("dask" if args.cluster else "pandas")
    if args.cluster and engine != "dask":
        raise NbaError("--cluster runs the dask engine; drop --engine pandas or --cluster.")
    # $NBA_DASK_CLUSTER is where the dask engine runs unless --cluster says otherwise
    cluster = (args.cluster or os.environ.get("NBA_DASK_CLUSTER")) if engine == "dask" else None
    bundle = load_bundle(Path(args.bundle))
    where = ""
    if engine == "dask":
        from nba.scoring_dask import connect, score_file_dask

        if cluster:
            with connect(cluster, timeout=args.cluster_timeout) as client:
                result = score_file_dask(bundle, args.input, args.out, args.rejects, client=client)
            parts, n = sum(result.workers.values()), len(result.workers)
            where = (
                f"; {parts:,} partition{'s' * (parts != 1)} on {n} worker{'s' * (n != 1)} "
                f"of {cluster}"
            )
        else:
            result = score_file_dask(bundle, args.input, args.out, args.rejects)
    else:
        from nba.scoring import score_file

        result = score_file(bundle, args.input, args.out, args.rejects)
    loud = "; the bundle learnt from SYNTHETIC DATA" if bundle.metadata.get("synthetic") else ""
    print(f"nba score: {result.summary}; scores in {result.output}{where}{loud}", file=sys.stderr)
    return EXIT_OK


def _history(args: argparse.Namespace):  # noqa: ANN202 - a History, imported lazily
    from nba.campaigns.history import History

    return History(Path(args.history) if args.history else None)


def _campaign_plan(args: argparse.Namespace) -> int:
    import contextlib
    import os

    from nba.campaigns.plan import PlanOptions, plan_file

    options = PlanOptions(
        control=args.control,
        explore=args.explore,
        budget=args.budget,
        seed=args.seed,
        method=args.explore_method,
    )
    try:
        options.check()
    except ValueError as exc:
        raise NbaError(str(exc)) from None
    from nba.scoring_dask import CLUSTER_ENV, connect

    # $NBA_DASK_CLUSTER is where the engine scores unless --cluster says otherwise
    cluster = args.cluster or os.environ.get(CLUSTER_ENV)
    with contextlib.ExitStack() as stack:
        client = None
        if cluster:  # first: a scheduler that does not answer fails before anything is written
            client = stack.enter_context(connect(cluster, timeout=args.cluster_timeout))
        history = stack.enter_context(_history(args))
        r = plan_file(args.bundle, args.input, args.out, history, options, args.campaign_id, client)
    s = r.summary
    where = f"; rejected rows in {r.rejects}" if r.rejects else ""
    if r.workers:
        parts, n = sum(r.workers.values()), len(r.workers)
        where += (
            f"; scored as {parts:,} part{'s' * (parts != 1)} on {n} worker{'s' * (n != 1)} "
            f"of {cluster}"
        )
    print(
        f"nba campaign plan: {r.rows_in:,} rows in: {r.planned:,} planned, {r.rejected:,} "
        f"rejected{where}. Campaign {r.campaign_id}: {s['control']:,} control, "
        f"{s['explored']:,} explored, {s['contacted']:,} to contact at ${s['cost']:,.0f}, "
        f"expected net value ${s['expected_net_value']:,.0f}; plan in {r.output}, decisions "
        f"in {history.path}",
        file=sys.stderr,
    )
    # a warning, not a failure: the plan is written and valid, only its proof is weak
    for line in r.warnings:
        print(f"nba campaign plan: warning: {line}", file=sys.stderr)
    return EXIT_OK


def _campaign_record(args: argparse.Namespace) -> int:
    from nba.campaigns.outcomes import record_file

    with _history(args) as history:
        result = record_file(args.outcomes, history, args.rejects)
        print(f"nba campaign record: {result.summary}; history {history.path}", file=sys.stderr)
    return EXIT_OK


def _campaign_impact(args: argparse.Namespace) -> int:
    from nba.campaigns.impact import impact_report

    ids = [args.campaign_id] if args.campaign_id else None
    with _history(args) as history:
        summary, html_path, json_path = impact_report(history, Path(args.out), ids)
    for a in summary["actions"]:
        lift = "no control" if a["lift"] is None else f"lift {a['lift'] * 100:+.1f} pts"
        value = "" if a["net_value"] is None else f", net ${a['net_value']:,.0f} per treated"
        print(
            f"  {a['action']:24s} treated {a['treated']:>8,} control {a['control']:>7,}  "
            f"{lift}{value}"
        )
    print(f"Impact report written to {html_path} (summary {json_path})")
    return EXIT_OK


def _campaign_learn(args: argparse.Namespace) -> int:
    from nba.campaigns.learn import learn_file

    with _history(args) as history:
        result = learn_file(args.bundle, history, Path(args.out))
    off = result.off_policy["difference"]
    lineage = result.lineage
    print(
        f"Learnt from {lineage['outcomes']:,} outcomes of {len(lineage['campaigns'])} "
        f"campaign(s); new bundle {lineage['bundle_id']} (parent {lineage['parent_bundle']}) "
        f"written to {args.out}"
    )
    for e in result.effects.to_dict(orient="records"):
        flag = "  HURTS some customers" if e["hurts_share"] > 0 else ""
        print(
            f"  {e['action']:24s} outcomes {e['outcomes']:>8,}  effect on retention "
            f"assumed {e['assumed_effect'] * 100:+.1f} pts, learnt {e['learned_effect'] * 100:+.1f}"
            f" [{e['learned_low'] * 100:+.1f}, {e['learned_high'] * 100:+.1f}]{flag}"
        )
    print(
        f"Off-policy value, new vs parent, $ per customer: DR {off['dr']:+,.2f} "
        f"[{off['dr_low']:+,.2f}, {off['dr_high']:+,.2f}], IPS {off['ips']:+,.2f} "
        f"[{off['ips_low']:+,.2f}, {off['ips_high']:+,.2f}]"
    )
    return EXIT_OK


def _campaign_simulate(args: argparse.Namespace) -> int:
    from nba.campaigns.simulator import simulate_file

    outcomes, value, oracle = simulate_file(
        args.plan, args.customers, args.bundle, args.out, args.world, args.seed
    )
    world = args.world or "params/world.yaml"
    print(
        f"Simulated outcomes for {len(outcomes):,} planned customers ({world}): "
        f"{outcomes['retained'].mean():.1%} retained; written to {args.out}. The plan's true net "
        f"value is ${value:,.0f}, {value / oracle:.1%} of the oracle's ${oracle:,.0f}"
    )
    return EXIT_OK


def _calibration_path() -> Path:
    return Path(__file__).resolve().parent / "data" / "calibration.json"


def _param_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """`-p KEY VALUE` / `--param KEY VALUE`, repeatable: one setting overridden."""
    parser.add_argument(
        "-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"), help=help_text
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nba",
        description="Next best action for credit-card customers: churn risk, segments, actions.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="download, generate or validate customer data")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    dl = data_commands.add_parser("download", help="the Kaggle dataset via kagglehub")
    dl.add_argument("--out", help="folder to save into (default data/raw/)")
    dl.set_defaults(func=_data_download)

    synth = data_commands.add_parser("synth", help="generate calibrated synthetic customers")
    synth.add_argument("--rows", type=int, default=config.SYNTHETIC_ROWS, help="customers")
    synth.add_argument("--seed", type=int, default=config.Settings().seed, help="random seed")
    synth.add_argument("--out", required=True, help="output .csv or .parquet")
    synth.set_defaults(func=_data_synth)

    val = data_commands.add_parser("validate", help="report problems; exit 2 if unusable")
    val.add_argument("path", help="a .csv or .parquet file in the BankChurners format")
    val.add_argument("--rejects", help="write rejected rows with a reason column here")
    val.set_defaults(func=_data_validate)

    cal = data_commands.add_parser(
        "calibrate", help="(maintainers) recompute the synthetic generator's statistics"
    )
    cal.add_argument("path", help="the real labelled Kaggle file")
    cal.add_argument("--out", default=str(_calibration_path()), help="where to write the JSON")
    cal.set_defaults(func=_data_calibrate)

    fid = data_commands.add_parser(
        "fidelity", help="measure the synthetic generator against a real labelled file"
    )
    fid.add_argument("real", help="the real labelled Kaggle file")
    fid.add_argument("--rows", type=int, default=20_000, help="synthetic customers to draw")
    fid.add_argument("--seed", type=int, default=config.Settings().seed, help="random seed")
    fid.set_defaults(func=_data_fidelity)

    disc = data_commands.add_parser(
        "discover", help="which data the project would use (generating the synthetic default)"
    )
    disc.add_argument("--data", help="explicit data file (overrides NBA_DATA and data/raw/)")
    disc.set_defaults(func=_data_discover)
    tr = commands.add_parser("train", help="train churn model and segments into one bundle")
    tr.add_argument("--data", help="labelled data file (overrides NBA_DATA and data/raw/)")
    tr.add_argument("--out", required=True, help="bundle file to write, e.g. models/nba.bundle")
    tr.add_argument(
        "--choices",
        help="lineage record of notebooks 04-05 (reports/artifacts/choices.json after `nba "
        "pipeline`); without it, the committed default choice (nba.lineage.default_choices)",
    )
    tr.add_argument(
        "--full",
        action="store_true",
        help="re-run stage 1's candidate comparison, feature selection and search (minutes) "
        "instead of using a recorded choice",
    )
    tr.add_argument(
        "--refit",
        action="store_true",
        help="refit the chosen configuration on every customer after evaluation (the metadata "
        "then labels the promised metrics as the evaluated configuration's)",
    )
    _param_option(tr, "override one setting (repeatable), e.g. -p churn_features early_warning")
    tr.set_defaults(func=_train)

    sc = commands.add_parser("score", help="score customers: churn, segment, top-3 actions")
    sc.add_argument(
        "input", help="customers as .csv or .parquet (BankChurners columns); a path or a URL"
    )
    sc.add_argument("--bundle", required=True, help="trained bundle (nba train --out …)")
    sc.add_argument(
        "--out", required=True, help="scores to write, .csv or .parquet; a path or a URL"
    )
    sc.add_argument("--rejects", help="rejected rows with a reason (default OUT.rejects.csv)")
    sc.add_argument(
        "--engine",
        choices=("pandas", "dask"),
        help="pandas (default) or dask: partition by partition, for inputs larger than memory",
    )
    sc.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="an existing Dask scheduler (tcp://HOST:PORT or a scheduler file) for the dask "
        "engine; default $NBA_DASK_CLUSTER, else a local cluster for the run",
    )
    sc.add_argument(
        "--cluster-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the scheduler to answer (default 10)",
    )
    sc.set_defaults(func=_score)

    pipe = commands.add_parser("pipeline", help="re-run the numbered notebooks with papermill")
    pipe.add_argument("--data", help="data file (overrides NBA_DATA and data/raw/)")
    pipe.add_argument("--params", help="parameters YAML (default params/default.yaml)")
    _param_option(pipe, "override one parameter (repeatable)")
    pipe.add_argument("--reports-dir", help="where reports go (default reports/)")
    pipe.add_argument(
        "--prepare-only", metavar="DIR", help="write parameterised notebooks to DIR, run nothing"
    )
    pipe.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    pipe.set_defaults(func=_pipeline)

    mon = commands.add_parser("monitor", help="drift of a new batch against the bundle's reference")
    mon.add_argument("input", help="a .csv or .parquet batch in the BankChurners format")
    mon.add_argument("--bundle", required=True, help="the bundle the batch is scored with")
    mon.add_argument(
        "--out",
        default=str(config.REPORTS_DIR / "monitor.html"),
        help="HTML report (a .json summary is written beside it)",
    )
    mon.add_argument("--thresholds", help="thresholds YAML (default params/monitor.yaml)")
    mon.set_defaults(func=_monitor)

    app = commands.add_parser("app", help="serve the user-acceptance app (Voila)")
    app.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    app.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine)"
    )
    app.add_argument(
        "--bundle", help="bundle to serve (default NBA_BUNDLE, else models/nba.bundle)"
    )
    app.add_argument("--data", help="customers to look up (default: the bundle's own data)")
    app.set_defaults(func=_app)

    camp = commands.add_parser(
        "campaign", help="campaigns with control groups: plan, record outcomes, impact, learn"
    )
    camp_commands = camp.add_subparsers(dest="campaign_command", required=True, metavar="ACTION")
    history_help = "interaction history (default NBA_HISTORY, else data/history.sqlite)"

    cp = camp_commands.add_parser("plan", help="plan a campaign: control group, exploration")
    cp.add_argument("input", help="customers as .csv or .parquet (BankChurners columns)")
    cp.add_argument("--bundle", required=True, help="bundle whose engine chooses the actions")
    cp.add_argument("--out", required=True, help="plan to write, .csv or .parquet")
    cp.add_argument("--history", help=history_help)
    cp.add_argument("--campaign-id", help="id of the campaign (default: derived from the input)")
    cp.add_argument("--control", type=float, default=0.10, help="control share (default 0.10)")
    cp.add_argument("--explore", type=float, default=0.10, help="exploration share (default 0.10)")
    cp.add_argument(
        "--explore-method",
        choices=("thompson", "uniform"),
        default="thompson",
        help="how explored customers' actions are drawn (default thompson)",
    )
    cp.add_argument("--budget", type=float, help="total cost the campaign may spend ($)")
    cp.add_argument("--seed", type=int, default=config.Settings().seed, help="random seed")
    cp.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="score the customers on an existing Dask scheduler (tcp://HOST:PORT or a "
        "scheduler file); default $NBA_DASK_CLUSTER, else here. The plan is the same",
    )
    cp.add_argument(
        "--cluster-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the scheduler to answer (default 10)",
    )
    cp.set_defaults(func=_campaign_plan)

    cr = camp_commands.add_parser("record", help="record a campaign's outcomes")
    cr.add_argument("outcomes", help="CLIENTNUM, campaign_id, responded, retained (.csv/.parquet)")
    cr.add_argument("--history", help=history_help)
    cr.add_argument("--rejects", help="rejected rows with a reason (default OUTCOMES.rejects.csv)")
    cr.set_defaults(func=_campaign_record)

    ci = camp_commands.add_parser("impact", help="incremental retention and value vs control")
    ci.add_argument("--history", help=history_help)
    ci.add_argument("--campaign-id", help="one campaign (default: all recorded)")
    ci.add_argument(
        "--out",
        default=str(config.REPORTS_DIR / "impact.html"),
        help="HTML report (a .json summary is written beside it)",
    )
    ci.set_defaults(func=_campaign_impact)

    cl = camp_commands.add_parser("learn", help="learn what actions do; write a new bundle")
    cl.add_argument("--bundle", required=True, help="the parent bundle")
    cl.add_argument("--history", help=history_help)
    cl.add_argument("--out", required=True, help="the new bundle to write")
    cl.set_defaults(func=_campaign_learn)

    cs = camp_commands.add_parser(
        "simulate", help="answer a plan with the response simulator (to try the loop)"
    )
    cs.add_argument("plan", help="a plan written by `nba campaign plan`")
    cs.add_argument("--customers", required=True, help="the customers file that was planned")
    cs.add_argument("--bundle", required=True, help="the bundle that planned it")
    cs.add_argument("--out", required=True, help="outcomes file to write, .csv or .parquet")
    cs.add_argument("--world", help="the world's ground truth (default params/world.yaml)")
    cs.add_argument("--seed", type=int, default=config.Settings().seed, help="random seed")
    cs.set_defaults(func=_campaign_simulate)

    srv = commands.add_parser("serve", help="the real-time decision service (HTTP, JSON)")
    srv.add_argument("--bundle", required=True, help="the champion bundle to decide with")
    srv.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine)"
    )
    srv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    srv.add_argument(
        "--history", help="interaction history (default NBA_HISTORY, else data/history.sqlite)"
    )
    srv.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    srv.add_argument("--challenger", help="a second bundle deciding for a share of customers")
    srv.add_argument(
        "--challenger-share",
        type=float,
        help="share of customers (sticky by CLIENTNUM) the challenger decides for (default 0.1)",
    )
    srv.set_defaults(func=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from nba.pipeline import PipelineError

    try:
        return args.func(args)
    except PipelineError as exc:
        print(f"nba: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except NbaError as exc:
        print(f"nba: error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        print("nba: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
